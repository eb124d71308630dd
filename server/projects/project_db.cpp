#include "server/projects/project_db.h"

#include <cstdint>
#include <string_view>
#include <utility>

#include "server/store/sql_bind.h"

namespace atelier::projects {

namespace {

using store::Db;
using store::prepare_bound;
using store::run;
using store::Statement;

// Runs a query whose first row's column 0 is an integer (counts, MAX).
template <typename... Args>
Result<int64_t> query_int(Db& db, std::string_view sql, const Args&... args) {
  Result<Statement> stmt = prepare_bound(db, sql, args...);
  if (!stmt.is_ok()) return stmt.status();
  Result<bool> row = stmt->step();
  if (!row.is_ok()) return row.status();
  if (!*row) return Status::internal("query returned no row: " + std::string(sql));
  return stmt->column_int64(0);
}

// The schema's CHECKs keep role columns valid, so a value we cannot parse means the file was
// changed behind our back.
Result<Role> read_role(const Statement& stmt, int column) {
  std::string text = stmt.column_text(column);
  std::optional<Role> role = parse_role(text);
  if (!role) return Status::corruption("unknown role '" + text + "' in the database");
  return *role;
}

// A time as its column will read it back: whole seconds (the columns hold Unix seconds).
SysTime as_stored(SysTime t) {
  return from_unix_s(to_unix_s(t));
}

// The columns every project query selects (prefixed with `p.`), in read_project()'s order.
constexpr std::string_view kProjectColumns =
    "p.id, p.name, p.description, p.created_by, p.created_at, p.updated_at";

Project read_project(const Statement& stmt) {
  Project p;
  p.id = stmt.column_int64(0);
  p.name = stmt.column_text(1);
  p.description = stmt.column_text(2);
  p.created_by = stmt.column_int64(3);  // NULL (creator deleted) reads as 0
  p.created_at = from_unix_s(stmt.column_int64(4));
  p.updated_at = from_unix_s(stmt.column_int64(5));
  return p;
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kEditor:
      return "editor";
    case Role::kOwner:
      return "owner";
  }
  return "viewer";  // unreachable for valid enum values; the least privilege if it ever is
}

std::optional<Role> parse_role(std::string_view text) {
  if (text == "viewer") return Role::kViewer;
  if (text == "editor") return Role::kEditor;
  if (text == "owner") return Role::kOwner;
  return std::nullopt;
}

namespace project_db {

// ---------------------------------------------------------------------------------------------
// Projects

Result<Project> insert_project(Db& db, const std::string& name, const std::string& description,
                               int64_t owner, SysTime now) {
  const int64_t now_s = to_unix_s(now);
  ATELIER_RETURN_IF_ERROR(run(db,
                              "INSERT INTO projects (name, description, created_by, created_at, "
                              "updated_at) VALUES (?, ?, ?, ?, ?)",
                              std::string_view(name), std::string_view(description), owner, now_s,
                              now_s));
  Project project;
  project.id = db.last_insert_rowid();
  project.name = name;
  project.description = description;
  project.created_by = owner;
  project.created_at = as_stored(now);
  project.updated_at = as_stored(now);
  ATELIER_RETURN_IF_ERROR(upsert_member(db, project.id, owner, Role::kOwner, now));
  return project;
}

Result<Project> find_project(Db& db, int64_t project_id) {
  const std::string sql =
      "SELECT " + std::string(kProjectColumns) + " FROM projects p WHERE p.id = ?";
  ATELIER_ASSIGN_OR_RETURN(Statement stmt, prepare_bound(db, sql, project_id));
  ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return Status::not_found("no such project");
  return read_project(stmt);
}

namespace {

// Steps a query that selects kProjectColumns and then m.role to the end.
Result<std::vector<ProjectWithRole>> read_projects_with_role(Statement& stmt) {
  std::vector<ProjectWithRole> out;
  for (;;) {
    ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) break;
    ATELIER_ASSIGN_OR_RETURN(const Role role, read_role(stmt, 6));
    out.push_back(ProjectWithRole{read_project(stmt), role});
  }
  return out;
}

}  // namespace

Result<std::vector<ProjectWithRole>> list_projects_page(Db& db, int64_t user_id, int64_t limit,
                                                        std::optional<int64_t> before) {
  // SQLite reads a negative LIMIT as "no limit"; here it means nothing is wanted.
  if (limit <= 0) return std::vector<ProjectWithRole>();
  // Ordered and bounded on m.project_id (not p.id, the same value) so that the walk stays on
  // members_by_user, whose entries are (user_id, project_id): a page reads `limit` rows.
  ATELIER_ASSIGN_OR_RETURN(
      Statement stmt,
      prepare_bound(db,
                    "SELECT " + std::string(kProjectColumns) +
                        ", m.role FROM members m JOIN projects p ON p.id = m.project_id "
                        "WHERE m.user_id = ? AND m.project_id < ? "
                        "ORDER BY m.project_id DESC LIMIT ?",
                    user_id, before.value_or(INT64_MAX), limit));
  return read_projects_with_role(stmt);
}

Result<int64_t> count_owned_projects(Db& db, int64_t user_id) {
  return query_int(db, "SELECT count(*) FROM members WHERE user_id = ? AND role = 'owner'",
                   user_id);
}

Status update_project(Db& db, int64_t project_id, const std::optional<std::string>& name,
                      const std::optional<std::string>& description, SysTime now) {
  // A NULL parameter keeps the column as it is, so one statement serves every partial update.
  ATELIER_RETURN_IF_ERROR(run(db,
                              "UPDATE projects SET name = COALESCE(?, name), "
                              "description = COALESCE(?, description), updated_at = ? "
                              "WHERE id = ?",
                              name, description, to_unix_s(now), project_id));
  if (db.changes() == 0) return Status::not_found("no such project");
  return Status::ok();
}

Status delete_project(Db& db, int64_t project_id) {
  // Members, invites and events go with it through ON DELETE CASCADE.
  ATELIER_RETURN_IF_ERROR(run(db, "DELETE FROM projects WHERE id = ?", project_id));
  if (db.changes() == 0) return Status::not_found("no such project");
  return Status::ok();
}

Result<int64_t> disk_bytes(Db& db, int64_t project_id) {
  ATELIER_ASSIGN_OR_RETURN(
      Statement stmt,
      prepare_bound(db, "SELECT disk_bytes FROM projects WHERE id = ?", project_id));
  ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return Status::not_found("no such project");
  return stmt.column_int64(0);
}

// ---------------------------------------------------------------------------------------------
// Members

Result<std::optional<Role>> member_role(Db& db, int64_t project_id, int64_t user_id) {
  Result<Statement> stmt = prepare_bound(
      db, "SELECT role FROM members WHERE project_id = ? AND user_id = ?", project_id, user_id);
  if (!stmt.is_ok()) return stmt.status();
  Result<bool> row = stmt->step();
  if (!row.is_ok()) return row.status();
  if (!*row) return std::optional<Role>();
  Result<Role> role = read_role(*stmt, 0);
  if (!role.is_ok()) return role.status();
  return std::optional<Role>(*role);
}

namespace {

// The columns every member query selects, in read_members()' order.
constexpr std::string_view kMemberColumns = "m.user_id, u.username, m.role, m.added_at";

// Steps a query that selects kMemberColumns to the end.
Result<std::vector<Member>> read_members(Statement& stmt) {
  std::vector<Member> out;
  for (;;) {
    ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) break;
    Member m;
    m.user_id = stmt.column_int64(0);
    m.username = stmt.column_text(1);
    ATELIER_ASSIGN_OR_RETURN(m.role, read_role(stmt, 2));
    m.added_at = from_unix_s(stmt.column_int64(3));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

Result<std::vector<Member>> list_members_page(Db& db, int64_t project_id, int64_t limit,
                                              std::optional<int64_t> before) {
  if (limit <= 0) return std::vector<Member>();  // SQLite's negative LIMIT would mean "all"
  ATELIER_ASSIGN_OR_RETURN(Statement stmt,
                           prepare_bound(db,
                                         "SELECT " + std::string(kMemberColumns) +
                                             " FROM members m JOIN users u ON u.id = m.user_id "
                                             "WHERE m.project_id = ? AND m.user_id < ? "
                                             "ORDER BY m.user_id DESC LIMIT ?",
                                         project_id, before.value_or(INT64_MAX), limit));
  return read_members(stmt);
}

Result<Member> find_member(Db& db, int64_t project_id, int64_t user_id) {
  ATELIER_ASSIGN_OR_RETURN(Statement stmt,
                           prepare_bound(db,
                                         "SELECT " + std::string(kMemberColumns) +
                                             " FROM members m JOIN users u ON u.id = m.user_id "
                                             "WHERE m.project_id = ? AND m.user_id = ?",
                                         project_id, user_id));
  ATELIER_ASSIGN_OR_RETURN(std::vector<Member> found, read_members(stmt));
  if (found.empty()) return Status::not_found("not a member of this project");
  return std::move(found.front());
}

Status upsert_member(Db& db, int64_t project_id, int64_t user_id, Role role, SysTime now) {
  // A role change keeps added_at: it records when the person joined, not when they were promoted.
  // A missing project or user fails the foreign key (kFailedPrecondition).
  return run(db,
             "INSERT INTO members (project_id, user_id, role, added_at) VALUES (?, ?, ?, ?) "
             "ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
             project_id, user_id, role_name(role), to_unix_s(now));
}

Status remove_member(Db& db, int64_t project_id, int64_t user_id) {
  ATELIER_RETURN_IF_ERROR(
      run(db, "DELETE FROM members WHERE project_id = ? AND user_id = ?", project_id, user_id));
  if (db.changes() == 0) return Status::not_found("not a member of this project");
  return Status::ok();
}

Result<int64_t> count_owners(Db& db, int64_t project_id) {
  return query_int(db, "SELECT count(*) FROM members WHERE project_id = ? AND role = 'owner'",
                   project_id);
}

// ---------------------------------------------------------------------------------------------
// Invites

Result<int64_t> insert_invite(Db& db, int64_t project_id, const std::string& code_hash, Role role,
                              int64_t max_uses, SysTime expires_at, int64_t created_by,
                              SysTime now) {
  // max_uses < 1 fails the schema's CHECK (kFailedPrecondition); the API validates it first.
  ATELIER_RETURN_IF_ERROR(run(db,
                              "INSERT INTO invites (project_id, code_hash, role, max_uses, uses, "
                              "expires_at, created_by, created_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                              project_id, std::string_view(code_hash), role_name(role), max_uses,
                              to_unix_s(expires_at), created_by, to_unix_s(now)));
  return db.last_insert_rowid();
}

Result<Invite> find_invite(Db& db, const std::string& code_hash) {
  ATELIER_ASSIGN_OR_RETURN(Statement stmt,
                           prepare_bound(db,
                                         "SELECT id, project_id, role, max_uses, uses, expires_at, "
                                         "created_by, revoked_at IS NOT NULL FROM invites "
                                         "WHERE code_hash = ?",
                                         std::string_view(code_hash)));
  ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return Status::not_found("no such invite");
  Invite inv;
  inv.id = stmt.column_int64(0);
  inv.project_id = stmt.column_int64(1);
  ATELIER_ASSIGN_OR_RETURN(inv.role, read_role(stmt, 2));
  inv.max_uses = stmt.column_int64(3);
  inv.uses = stmt.column_int64(4);
  inv.expires_at = from_unix_s(stmt.column_int64(5));
  inv.created_by = stmt.column_int64(6);
  inv.revoked = stmt.column_int64(7) != 0;
  return inv;
}

// kNotFound when there is no such invite; kGone when it is already used up. Expiry and
// revocation are the caller's checks (it has just read the invite in the same transaction).
Status record_invite_use(Db& db, int64_t invite_id) {
  ATELIER_RETURN_IF_ERROR(
      run(db, "UPDATE invites SET uses = uses + 1 WHERE id = ? AND uses < max_uses", invite_id));
  if (db.changes() > 0) return Status::ok();
  Result<int64_t> exists = query_int(db, "SELECT count(*) FROM invites WHERE id = ?", invite_id);
  if (!exists.is_ok()) return exists.status();
  if (*exists == 0) return Status::not_found("no such invite");
  return Status(StatusCode::kGone, "this invite has been used up");
}

// ---------------------------------------------------------------------------------------------
// Events

Result<int64_t> append_event(Db& db, int64_t project_id, const std::string& type, int64_t actor,
                             const std::string& data_json, SysTime now) {
  // MAX + 1 is gap-free and race-free only because every write runs on the Store's one writer
  // connection inside BEGIN IMMEDIATE; outside a transaction the event could also commit apart
  // from the change it records, so refuse that outright.
  if (!db.in_transaction()) {
    return Status::internal("append_event must run inside the write transaction it records");
  }
  Result<int64_t> seq = query_int(
      db, "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE project_id = ?", project_id);
  if (!seq.is_ok()) return seq.status();
  ATELIER_RETURN_IF_ERROR(run(db,
                              "INSERT INTO events (project_id, seq, type, actor, data, ts) "
                              "VALUES (?, ?, ?, ?, ?, ?)",
                              project_id, *seq, std::string_view(type), actor,
                              std::string_view(data_json), to_unix_s(now)));
  return *seq;
}

Result<std::vector<Event>> list_events(Db& db, int64_t project_id, int64_t after_seq,
                                       int64_t limit) {
  std::vector<Event> out;
  // SQLite reads a negative LIMIT as "no limit"; here it means nothing is wanted.
  if (limit <= 0) return out;
  Result<Statement> stmt = prepare_bound(db,
                                         "SELECT seq, type, actor, data, ts FROM events "
                                         "WHERE project_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                                         project_id, after_seq, limit);
  if (!stmt.is_ok()) return stmt.status();
  for (;;) {
    Result<bool> row = stmt->step();
    if (!row.is_ok()) return row.status();
    if (!*row) break;
    Event e;
    e.project_id = project_id;
    e.seq = stmt->column_int64(0);
    e.type = stmt->column_text(1);
    e.actor = stmt->column_int64(2);
    e.data_json = stmt->column_text(3);
    e.ts = from_unix_s(stmt->column_int64(4));
    out.push_back(std::move(e));
  }
  return out;
}

Result<int64_t> head_seq(Db& db, int64_t project_id) {
  return query_int(db, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE project_id = ?", project_id);
}

}  // namespace project_db
}  // namespace atelier::projects
