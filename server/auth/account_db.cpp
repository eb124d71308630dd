#include "server/auth/account_db.h"

#include <cstdint>
#include <string_view>
#include <utility>

#include "server/store/sql_bind.h"

namespace atelier::auth {

namespace {

using store::Db;
using store::prepare_bound;
using store::run;
using store::Statement;

std::string_view kind_name(CredentialKind kind) {
  return kind == CredentialKind::kSession ? "session" : "api";
}

std::optional<CredentialKind> parse_kind(std::string_view text) {
  if (text == "session") return CredentialKind::kSession;
  if (text == "api") return CredentialKind::kApiToken;
  return std::nullopt;
}

// A time as its column will read it back: whole seconds (the columns hold Unix seconds).
SysTime as_stored(SysTime t) {
  return from_unix_s(to_unix_s(t));
}

// A nullable time column.
std::optional<SysTime> optional_time(const Statement& stmt, int column) {
  if (stmt.column_is_null(column)) return std::nullopt;
  return from_unix_s(stmt.column_int64(column));
}

// The columns every user query selects, in the order read_user() expects.
constexpr std::string_view kUserColumns = "id, username, is_admin, disabled, created_at";

User read_user(const Statement& stmt, int first) {
  User user;
  user.id = stmt.column_int64(first);
  user.username = stmt.column_text(first + 1);
  user.is_admin = stmt.column_int64(first + 2) != 0;
  user.disabled = stmt.column_int64(first + 3) != 0;
  user.created_at = from_unix_s(stmt.column_int64(first + 4));
  return user;
}

// The schema's CHECKs keep these columns valid, so a value we cannot parse means the file was
// changed behind our back.
Result<Scope> read_scope(const Statement& stmt, int column) {
  std::string text = stmt.column_text(column);
  std::optional<Scope> scope = parse_scope(text);
  if (!scope) return Status::corruption("credential has an unknown scope '" + text + "'");
  return *scope;
}

}  // namespace

std::string_view scope_name(Scope scope) {
  switch (scope) {
    case Scope::kRead:
      return "read";
    case Scope::kSubmit:
      return "submit";
    case Scope::kAdmin:
      return "admin";
  }
  return "read";  // unreachable for valid enum values; the least privilege if it ever is
}

std::optional<Scope> parse_scope(std::string_view text) {
  if (text == "read") return Scope::kRead;
  if (text == "submit") return Scope::kSubmit;
  if (text == "admin") return Scope::kAdmin;
  return std::nullopt;
}

namespace account_db {

Result<int64_t> count_users(Db& db) {
  return db.query_int64("SELECT count(*) FROM users");
}

Result<User> insert_user(Db& db, const std::string& username, const std::string& password_hash,
                         bool is_admin, SysTime now) {
  Status st = run(db,
                  "INSERT INTO users (username, password_hash, is_admin, disabled, created_at) "
                  "VALUES (?, ?, ?, 0, ?)",
                  std::string_view(username), std::string_view(password_hash),
                  int64_t{is_admin ? 1 : 0}, to_unix_s(now));
  // The only UNIQUE column a new row can collide on is username (id is AUTOINCREMENT); say so in
  // words the API can show, with the field the form should highlight.
  if (st.code() == StatusCode::kAlreadyExists) {
    return Status(StatusCode::kAlreadyExists, "username is taken", "username");
  }
  if (!st.is_ok()) return st;
  User user;
  user.id = db.last_insert_rowid();
  user.username = username;
  user.is_admin = is_admin;
  user.disabled = false;
  user.created_at = as_stored(now);
  return user;
}

Result<UserWithHash> find_user_by_username(Db& db, const std::string& username) {
  const std::string sql =
      "SELECT " + std::string(kUserColumns) + ", password_hash FROM users WHERE username = ?";
  ATELIER_ASSIGN_OR_RETURN(Statement stmt, prepare_bound(db, sql, std::string_view(username)));
  ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return Status::not_found("no user named '" + username + "'");
  return UserWithHash{read_user(stmt, 0), stmt.column_text(5)};
}

Result<User> find_user(Db& db, int64_t user_id) {
  const std::string sql = "SELECT " + std::string(kUserColumns) + " FROM users WHERE id = ?";
  ATELIER_ASSIGN_OR_RETURN(Statement stmt, prepare_bound(db, sql, user_id));
  ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return Status::not_found("no such user");
  return read_user(stmt, 0);
}

Result<std::vector<User>> list_users_page(Db& db, int64_t limit, std::optional<int64_t> before) {
  // SQLite reads a negative LIMIT as "no limit"; here it means nothing is wanted.
  if (limit <= 0) return std::vector<User>();
  ATELIER_ASSIGN_OR_RETURN(Statement stmt,
                           prepare_bound(db,
                                         "SELECT " + std::string(kUserColumns) +
                                             " FROM users WHERE id < ? ORDER BY id DESC LIMIT ?",
                                         before.value_or(INT64_MAX), limit));
  std::vector<User> users;
  for (;;) {
    ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) break;
    users.push_back(read_user(stmt, 0));
  }
  return users;
}

Status set_password_hash(Db& db, int64_t user_id, const std::string& password_hash) {
  ATELIER_RETURN_IF_ERROR(run(db, "UPDATE users SET password_hash = ? WHERE id = ?",
                              std::string_view(password_hash), user_id));
  // SQLite counts a matched row as changed even when the value is the same, so zero means no
  // such user.
  if (db.changes() == 0) return Status::not_found("no such user");
  return Status::ok();
}

Status set_disabled(Db& db, int64_t user_id, bool disabled) {
  ATELIER_RETURN_IF_ERROR(
      run(db, "UPDATE users SET disabled = ? WHERE id = ?", int64_t{disabled ? 1 : 0}, user_id));
  if (db.changes() == 0) return Status::not_found("no such user");
  return Status::ok();
}

Result<int64_t> insert_credential(Db& db, int64_t user_id, CredentialKind kind,
                                  const std::string& name, Scope scope,
                                  const std::string& secret_hash, SysTime now,
                                  std::optional<SysTime> expires_at) {
  std::optional<int64_t> expires_at_s;
  if (expires_at) expires_at_s = to_unix_s(*expires_at);
  ATELIER_RETURN_IF_ERROR(run(db,
                              "INSERT INTO credentials (user_id, kind, name, scope, secret_hash, "
                              "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              user_id, kind_name(kind), std::string_view(name), scope_name(scope),
                              std::string_view(secret_hash), to_unix_s(now), expires_at_s));
  return db.last_insert_rowid();
}

// last_used_at is not touched here: this runs inside Store::read (a read-only connection), so it
// cannot write. Recording use belongs to a later write path (e.g. a batched, throttled update
// from the API layer) so that every authenticated request does not cost a write transaction.
Result<std::optional<Principal>> find_principal(Db& db, const std::string& secret_hash,
                                                SysTime now) {
  Result<Statement> stmt = prepare_bound(
      db,
      "SELECT c.id, c.kind, c.scope, u.id, u.username, u.is_admin, u.disabled, u.created_at, "
      "c.last_used_at "
      "FROM credentials c JOIN users u ON u.id = c.user_id "
      "WHERE c.secret_hash = ? AND c.revoked_at IS NULL "
      "AND (c.expires_at IS NULL OR c.expires_at > ?) AND u.disabled = 0",
      std::string_view(secret_hash), to_unix_s(now));
  if (!stmt.is_ok()) return stmt.status();
  Result<bool> row = stmt->step();
  if (!row.is_ok()) return row.status();
  if (!*row) return std::optional<Principal>();

  Principal principal;
  principal.credential_id = stmt->column_int64(0);
  std::string kind_text = stmt->column_text(1);
  std::optional<CredentialKind> kind = parse_kind(kind_text);
  if (!kind) return Status::corruption("credential has an unknown kind '" + kind_text + "'");
  principal.kind = *kind;
  Result<Scope> scope = read_scope(*stmt, 2);
  if (!scope.is_ok()) return scope.status();
  principal.scope = *scope;
  principal.user = read_user(*stmt, 3);
  principal.last_used_at = optional_time(*stmt, 8);
  return std::optional<Principal>(std::move(principal));
}

Status touch_credential(Db& db, int64_t credential_id, SysTime now) {
  ATELIER_RETURN_IF_ERROR(run(db, "UPDATE credentials SET last_used_at = ? WHERE id = ?",
                              to_unix_s(now), credential_id));
  if (db.changes() == 0) return Status::not_found("no such credential");
  return Status::ok();
}

Status revoke_credential(Db& db, int64_t user_id, int64_t credential_id, SysTime now) {
  // An already revoked credential counts as not found: it has vanished from every listing, and
  // keeping the first revoked_at keeps the record of when it really stopped working.
  ATELIER_RETURN_IF_ERROR(run(db,
                              "UPDATE credentials SET revoked_at = ? "
                              "WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                              to_unix_s(now), credential_id, user_id));
  if (db.changes() == 0) return Status::not_found("no such credential");
  return Status::ok();
}

Status revoke_all_credentials(Db& db, int64_t user_id, SysTime now) {
  // Nothing to revoke is fine: the outcome (no valid credential left) holds either way.
  return run(db, "UPDATE credentials SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
             to_unix_s(now), user_id);
}

Result<int64_t> count_api_tokens(Db& db, int64_t user_id, SysTime now) {
  ATELIER_ASSIGN_OR_RETURN(
      Statement stmt,
      prepare_bound(db,
                    "SELECT count(*) FROM credentials WHERE user_id = ? AND kind = 'api' "
                    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                    user_id, to_unix_s(now)));
  ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
  return row ? stmt.column_int64(0) : 0;
}

Result<std::vector<ApiTokenInfo>> list_api_tokens(Db& db, int64_t user_id, SysTime now) {
  // Expired tokens are left out too: like revoked ones they can no longer be used, and `now` is
  // passed for exactly this.
  Result<Statement> stmt =
      prepare_bound(db,
                    "SELECT id, name, scope, created_at, expires_at, last_used_at FROM credentials "
                    "WHERE user_id = ? AND kind = 'api' AND revoked_at IS NULL "
                    "AND (expires_at IS NULL OR expires_at > ?) "
                    "ORDER BY created_at DESC, id DESC",
                    user_id, to_unix_s(now));
  if (!stmt.is_ok()) return stmt.status();
  std::vector<ApiTokenInfo> tokens;
  for (;;) {
    Result<bool> row = stmt->step();
    if (!row.is_ok()) return row.status();
    if (!*row) break;
    ApiTokenInfo info;
    info.id = stmt->column_int64(0);
    info.name = stmt->column_text(1);
    Result<Scope> scope = read_scope(*stmt, 2);
    if (!scope.is_ok()) return scope.status();
    info.scope = *scope;
    info.created_at = from_unix_s(stmt->column_int64(3));
    info.expires_at = optional_time(*stmt, 4);
    info.last_used_at = optional_time(*stmt, 5);
    tokens.push_back(std::move(info));
  }
  return tokens;
}

}  // namespace account_db
}  // namespace atelier::auth
