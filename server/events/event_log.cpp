#include "server/events/event_log.h"

#include <memory>
#include <utility>

#include "server/projects/project_db.h"

namespace atelier::events {

namespace {

// Publishes `event` on `bus` once the transaction of `db` commits (never for a rollback).
void publish_after_commit(store::Db& db, EventBus& bus, CommittedEvent event) {
  db.after_commit([&bus, committed = std::make_shared<const CommittedEvent>(std::move(event))] {
    bus.publish(*committed);
  });
}

}  // namespace

Result<int64_t> EventLog::append(store::Db& db, int64_t project_id, int64_t actor,
                                 DomainEvent event, SysTime at) const {
  if (std::holds_alternative<ProjectDeleted>(event)) {
    return Status::invalid_argument("project.deleted is announced, not logged");
  }
  auto data = std::make_shared<const std::string>(encode_(event));
  ATELIER_ASSIGN_OR_RETURN(const int64_t seq,
                           projects::project_db::append_event(
                               db, project_id, std::string(event_type(event)), actor, *data, at));
  publish_after_commit(
      db, bus_, CommittedEvent{project_id, seq, actor, at, std::move(event), std::move(data)});
  return seq;
}

void EventLog::announce(store::Db& db, int64_t project_id, int64_t actor, DomainEvent event,
                        SysTime at) const {
  auto data = std::make_shared<const std::string>(encode_(event));
  publish_after_commit(db, bus_,
                       CommittedEvent{project_id, 0, actor, at, std::move(event), std::move(data)});
}

}  // namespace atelier::events
