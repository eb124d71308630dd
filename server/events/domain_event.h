// Domain events: what changed in a project, as C++ types. The code that changes the state makes
// one, EventLog (event_log.h) stores it in the same transaction and EventBus (event_bus.h)
// publishes it once that transaction has committed; every consumer (live rooms, SSE, later
// webhooks and remote workers) subscribes to the bus and reads these types. Nothing here knows
// JSON: server/api/event_json.h writes the stored and wire forms (proto/websocket.md, "Event
// types").
//
// A new kind of event is a new alternative of DomainEvent with its type name in event_type();
// consumers that do not care about it need no change (they visit with a catch-all).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/clock.h"
#include "common/image.h"
#include "server/jobs/job.h"
#include "server/projects/project_db.h"

namespace atelier::events {

struct ProjectCreated {
  std::string name;
};
struct ProjectUpdated {  // only the fields that changed
  std::optional<std::string> name;
  std::optional<std::string> description;
};
// Not in the log (it goes with the project): announced with seq 0 after the deleting commit.
struct ProjectDeleted {};

struct MemberChanged {
  enum class Kind { kAdded, kJoined, kRoleChanged, kLeft, kRemoved };
  Kind kind = Kind::kAdded;
  int64_t user_id = 0;
  std::string username;                // added, joined, role_changed
  std::optional<projects::Role> role;  // added, joined, role_changed
  std::optional<std::string> via;      // joined: how ("invite")
  // Whether the user stopped being a member (their subscriptions end at once).
  bool ends_membership() const { return kind == Kind::kLeft || kind == Kind::kRemoved; }
};

// A job moved to a new state; `job` is the committed row (with its queue position when queued).
// The type name follows the state: job.queued, job.started (running), job.done, ...
struct JobChanged {
  jobs::Job job;
};

struct ReactionChanged {
  bool set = true;  // reaction.set; false: reaction.clear
  int64_t image = 0;
  int64_t user = 0;
  std::string emoji;
  std::map<std::string, int64_t> counts;  // the image's counts after the change
};

// A member uploaded an image (image.uploaded); `image` is the committed row (source kUpload).
struct ImageUploaded {
  jobs::ImageRecord image;
};

using DomainEvent = std::variant<ProjectCreated, ProjectUpdated, ProjectDeleted, MemberChanged,
                                 JobChanged, ReactionChanged, ImageUploaded>;

// "project.created", "member.removed", "job.done", ... (proto/websocket.md).
std::string_view event_type(const DomainEvent& event);

// A durable event after its commit, as the bus delivers it.
struct CommittedEvent {
  int64_t project_id = 0;
  int64_t seq = 0;    // gap-free per project; 0 for ProjectDeleted (not logged)
  int64_t actor = 0;  // user id; 0: the system
  SysTime at;
  DomainEvent event;
  // The `data` object as the log stores it (written once by the API's encoder), so that the live
  // event is the replayed one, byte for byte.
  std::shared_ptr<const std::string> data_json;
};

// A running job advanced one step. Ephemeral: never logged, may be dropped or coalesced.
struct JobProgress {
  const jobs::Job* job = nullptr;  // the run's job (params, attempt); valid during the call only
  int step = 0;
  int steps = 0;
  std::chrono::system_clock::time_point at;  // when the worker reported it
  // Set only when the bus's preview demand asked for one at this step; valid during the call.
  const image::Image* preview = nullptr;
};

// std::visit helper: overloaded{[](const A&) {...}, [](const auto&) {}}.
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

}  // namespace atelier::events
