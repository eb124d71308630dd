// Events in JSON, written here only (proto/websocket.md, "Event types"; openapi.yaml: Event):
// the `data` object stored in the project's log, the Event object that GET
// /projects/{id}/events lists and WebSocket replay sends, and the live event's wire form, which
// is built from the stored `data` so that live and replayed events are the same bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "server/events/domain_event.h"
#include "server/projects/project_db.h"

namespace atelier::api {

// The `data` object of `event`, serialized (the EventLog's encoder).
std::string event_data_json(const events::DomainEvent& event);
// The Event object of a stored event: seq, type, ts, actor (null for the system), data.
nlohmann::json event_json(const projects::Event& event);
// The same object for an event the bus delivers, serialized.
std::string committed_event_json(const events::CommittedEvent& event);

}  // namespace atelier::api
