#include "server/events/event_log.h"

#include <memory>
#include <utility>

#include "server/projects/project_db.h"

namespace atelier::events {

Result<int64_t> EventLog::append(store::Db& db, int64_t project_id, int64_t actor,
                                 DomainEvent event, SysTime at) const {
  if (std::holds_alternative<ProjectDeleted>(event)) {
    return Status::invalid_argument("project.deleted is announced, not logged");
  }
  auto data = std::make_shared<const std::string>(encode_(event));
  ATELIER_ASSIGN_OR_RETURN(const int64_t seq, projects::project_db::append_event(
                                                  db, project_id, std::string(event_type(event)),
                                                  actor, *data, to_unix_s(at)));
  db.after_commit([bus = &bus_, committed = std::make_shared<const CommittedEvent>(CommittedEvent{
                                    project_id, seq, actor, at, std::move(event), data})] {
    bus->publish(*committed);
  });
  return seq;
}

void EventLog::announce(store::Db& db, int64_t project_id, int64_t actor, DomainEvent event,
                        SysTime at) const {
  auto data = std::make_shared<const std::string>(encode_(event));
  db.after_commit([bus = &bus_, committed = std::make_shared<const CommittedEvent>(CommittedEvent{
                                    project_id, 0, actor, at, std::move(event), data})] {
    bus->publish(*committed);
  });
}

}  // namespace atelier::events
