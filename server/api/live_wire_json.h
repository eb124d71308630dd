// The WebSocket messages of the live rooms in JSON (proto/websocket.md, "Server to client"),
// written here only: the rooms decide what to say and hand it to LiveWireJson (their
// rooms::LiveWire), and WebSocket replay wraps logged events with event_message(), so that a
// replayed event is the same bytes as the live one.
//
// The bytes are those nlohmann::json wrote for these messages before this file existed (keys in
// alphabetical order, except the event wrapper's), so clients and tests see no change.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "server/rooms/live_wire.h"

namespace atelier::api {

// `{"type":"event","project":P,"event":<event_json>}`, with the event's serialized object (as
// GET /projects/{id}/events lists it) spliced in as it is.
std::string event_message(int64_t project, std::string_view event_json);

class LiveWireJson final : public rooms::LiveWire {
 public:
  std::string event(int64_t project, std::string_view event_json) const override;
  // `{"at_us":..,"job":..,"project":..,"step":..,"steps":..,"type":"progress"}`; `at` in whole
  // microseconds.
  std::string progress(int64_t project, int64_t job, int step, int steps,
                       rooms::StepTime at) const override;
  // `{"members":[{"sessions":..,"state":{..},"user":..,"username":".."}..],"project":..,
  // "type":"presence"}`. A state is written as it was set (the API's own compact text of an
  // object, see LiveSession's presence message); an empty state, or one that is not the text of
  // a JSON object, is written as `{}`.
  std::string presence(int64_t project,
                       std::span<const rooms::PresenceMember> members) const override;
  // `{"project":..,"reason":"..","type":"unsubscribed"}`.
  std::string unsubscribed(int64_t project, std::string_view reason) const override;
};

}  // namespace atelier::api
