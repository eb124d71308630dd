// EventLog: records a domain event in the project's durable log (project_db::append_event) inside
// the caller's write transaction, and publishes it on the bus once that transaction commits
// (Db::after_commit: on the writer thread, in commit order; nothing for a rollback).
//
// The stored `data` is written by the encoder the API layer injects (server/api/event_json.h),
// so this library, like jobs/ and rooms/, never builds API JSON.
//
// Thread-safety: append() and announce() run on the store's writer thread (inside a write
// transaction); the object is immutable after construction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "server/events/domain_event.h"
#include "server/events/event_bus.h"
#include "server/store/sqlite.h"

namespace atelier::events {

class EventLog {
 public:
  // The event's `data` object, serialized (proto/websocket.md, "Event types").
  using Encoder = std::function<std::string(const DomainEvent&)>;

  EventLog(EventBus& bus, Encoder encode_data) : bus_(bus), encode_(std::move(encode_data)) {}

  // Appends `event` with the project's next seq and publishes it after the commit. Returns the
  // seq. kInvalidArgument for ProjectDeleted (use announce()).
  Result<int64_t> append(store::Db& db, int64_t project_id, int64_t actor, DomainEvent event,
                         SysTime at) const;
  // Publishes `event` after the commit without logging it (ProjectDeleted: the log goes with
  // the project). Its seq is 0.
  void announce(store::Db& db, int64_t project_id, int64_t actor, DomainEvent event,
                SysTime at) const;

  EventBus& bus() const { return bus_; }

 private:
  EventBus& bus_;
  const Encoder encode_;
};

}  // namespace atelier::events
