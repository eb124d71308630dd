// Projects (the shared rooms), their members, invites and the per-project event log, in the
// database. Plain functions over a store::Db; callers choose the transaction (writes inside
// Store::write/submit_write, reads inside Store::read). Times are SysTime; the columns hold Unix
// seconds (converted when rows are read and written here), so they keep whole seconds.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/store/sqlite.h"
#include "server/store/store.h"

namespace atelier::projects {

// Ordered: a higher role can do everything a lower one can.
enum class Role { kViewer = 1, kEditor = 2, kOwner = 3 };
std::string_view role_name(Role role);             // "viewer" | "editor" | "owner"
std::optional<Role> parse_role(std::string_view);  // inverse of role_name

struct Project {
  int64_t id = 0;
  std::string name;
  std::string description;
  int64_t created_by = 0;
  SysTime created_at;
  SysTime updated_at;
};

struct ProjectWithRole {
  Project project;
  Role role = Role::kViewer;
};

struct Member {
  int64_t user_id = 0;
  std::string username;
  Role role = Role::kViewer;
  SysTime added_at;
};

struct Invite {
  int64_t id = 0;
  int64_t project_id = 0;
  Role role = Role::kViewer;
  int64_t max_uses = 1;
  int64_t uses = 0;
  SysTime expires_at;
  int64_t created_by = 0;
  bool revoked = false;
};

struct Event {
  int64_t project_id = 0;
  int64_t seq = 0;
  std::string type;       // "member.joined", "project.updated", ...
  int64_t actor = 0;      // user id (0 = system)
  std::string data_json;  // a JSON object, serialized
  SysTime ts;
};

namespace project_db {

// Creates the project with `owner` as its first member (role owner).
Result<Project> insert_project(store::Db& db, const std::string& name,
                               const std::string& description, int64_t owner, SysTime now);
// kNotFound ("no such project") when it does not exist.
Result<Project> find_project(store::Db& db, int64_t project_id);
// One page of them, newest first (by descending id): at most `limit` (none when <= 0), only ids
// below `before` when given. Reads at most `limit` rows (the members_by_user index).
Result<std::vector<ProjectWithRole>> list_projects_page(store::Db& db, int64_t user_id,
                                                        int64_t limit,
                                                        std::optional<int64_t> before);
// How many projects `user_id` is an owner of (the per-user project limit counts these).
Result<int64_t> count_owned_projects(store::Db& db, int64_t user_id);
// kNotFound when the project does not exist.
Status update_project(store::Db& db, int64_t project_id, const std::optional<std::string>& name,
                      const std::optional<std::string>& description, SysTime now);
// Deletes the project and everything in it (members, invites, events).
Status delete_project(store::Db& db, int64_t project_id);
// Bytes of the image files the project's images use, each distinct file once (kept up to date
// in the project row by triggers, migrations/0006; thumbnails are not counted). kNotFound
// ("no such project") when it does not exist.
Result<int64_t> disk_bytes(store::Db& db, int64_t project_id);

// nullopt when `user_id` is not a member (or the project does not exist): an answer, not an
// error, since most callers go on either way (joining, adding, the owner check); the API's
// project_role() is where it becomes "no such project".
Result<std::optional<Role>> member_role(store::Db& db, int64_t project_id, int64_t user_id);
// One page of the members, by descending user id: at most `limit` (none when <= 0), only user
// ids below `before` when given. Reads at most `limit` rows (the primary key).
Result<std::vector<Member>> list_members_page(store::Db& db, int64_t project_id, int64_t limit,
                                              std::optional<int64_t> before);
// kNotFound ("not a member of this project") when `user_id` is not a member.
Result<Member> find_member(store::Db& db, int64_t project_id, int64_t user_id);
// Adds or changes a membership.
Status upsert_member(store::Db& db, int64_t project_id, int64_t user_id, Role role, SysTime now);
// kNotFound when `user_id` is not a member.
Status remove_member(store::Db& db, int64_t project_id, int64_t user_id);
Result<int64_t> count_owners(store::Db& db, int64_t project_id);

// Stores an invite (only the code's hash); returns its id.
Result<int64_t> insert_invite(store::Db& db, int64_t project_id, const std::string& code_hash,
                              Role role, int64_t max_uses, SysTime expires_at, int64_t created_by,
                              SysTime now);
// kNotFound ("no such invite") for an unknown hash. Revoked, expired and used-up invites are
// found: those checks are the caller's.
Result<Invite> find_invite(store::Db& db, const std::string& code_hash);
Status record_invite_use(store::Db& db, int64_t invite_id);

// Appends to the project's event log with the next gap-free seq (1, 2, 3, ...); call inside
// the same write transaction as the change it records. Returns the seq. The server appends
// through events::EventLog, which also publishes the event after the commit.
Result<int64_t> append_event(store::Db& db, int64_t project_id, const std::string& type,
                             int64_t actor, const std::string& data_json, SysTime now);
// Events with seq > after_seq, ascending, at most `limit`.
Result<std::vector<Event>> list_events(store::Db& db, int64_t project_id, int64_t after_seq,
                                       int64_t limit);
Result<int64_t> head_seq(store::Db& db, int64_t project_id);  // 0 when none

}  // namespace project_db
}  // namespace atelier::projects
