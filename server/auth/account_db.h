// Accounts in the database: users and their credentials (browser sessions and API tokens).
//
// Plain functions over a store::Db, so callers decide the transaction: writes run inside
// Store::submit_write / write (already in BEGIN IMMEDIATE), reads inside Store::read.
// Times are SysTime; the INTEGER columns hold Unix seconds (converted when rows are read and
// written here, so times read back in whole seconds); the API layer formats them.
// Secrets never reach this layer: only their SHA-256 hashes (auth::hash_secret) are stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/store/sqlite.h"

namespace atelier::auth {

struct User {
  int64_t id = 0;
  std::string username;  // normalized (lower-case)
  bool is_admin = false;
  bool disabled = false;
  SysTime created_at;
};

struct UserWithHash {
  User user;
  std::string password_hash;
};

// A browser session (cookie, from login/register) or an API token (Bearer, from POST /tokens).
enum class CredentialKind { kSession, kApiToken };
// What a credential may do. Sessions always carry kAdmin (everything the user may do); API tokens
// carry the scope chosen at creation: read < submit < admin.
enum class Scope { kRead = 1, kSubmit = 2, kAdmin = 3 };

std::string_view scope_name(Scope scope);            // "read" | "submit" | "admin"
std::optional<Scope> parse_scope(std::string_view);  // inverse of scope_name

// Who is asking: the user behind a valid (unexpired, unrevoked) credential of an enabled user.
struct Principal {
  User user;
  int64_t credential_id = 0;
  CredentialKind kind = CredentialKind::kSession;
  Scope scope = Scope::kAdmin;
  std::optional<SysTime> last_used_at;  // when the credential was last recorded in use
};

struct ApiTokenInfo {
  int64_t id = 0;
  std::string name;
  Scope scope = Scope::kRead;
  SysTime created_at;
  std::optional<SysTime> expires_at;
  std::optional<SysTime> last_used_at;
};

namespace account_db {

Result<int64_t> count_users(store::Db& db);
// kAlreadyExists when the (normalized) username is taken.
Result<User> insert_user(store::Db& db, const std::string& username,
                         const std::string& password_hash, bool is_admin, SysTime now);
// kNotFound ("no user named '<username>'") when there is none. The login path must not pass
// this on: it answers an unknown name exactly as a wrong password.
Result<UserWithHash> find_user_by_username(store::Db& db, const std::string& username);
// kNotFound ("no such user") when there is none.
Result<User> find_user(store::Db& db, int64_t user_id);
// At most `limit` users with id < `before` (all when nullopt), newest first (descending id).
Result<std::vector<User>> list_users_page(store::Db& db, int64_t limit,
                                          std::optional<int64_t> before);
// kNotFound when no such user.
Status set_password_hash(store::Db& db, int64_t user_id, const std::string& password_hash);
Status set_disabled(store::Db& db, int64_t user_id, bool disabled);

// Stores a credential; returns its id. `expires_at` nullopt = never.
Result<int64_t> insert_credential(store::Db& db, int64_t user_id, CredentialKind kind,
                                  const std::string& name, Scope scope,
                                  const std::string& secret_hash, SysTime now,
                                  std::optional<SysTime> expires_at);
// The principal for a credential hash, or nullopt when unknown, revoked, expired at `now`, or
// its user is disabled. Optional rather than kNotFound: for its callers no principal is an
// answer (the request goes on anonymous, the socket is told to sign in again), never a 404.
Result<std::optional<Principal>> find_principal(store::Db& db, const std::string& secret_hash,
                                                SysTime now);
// Records that a credential was used at `now` (kNotFound for an unknown id).
Status touch_credential(store::Db& db, int64_t credential_id, SysTime now);
// Revokes one credential of `user_id` (kNotFound if it is not theirs or does not exist).
Status revoke_credential(store::Db& db, int64_t user_id, int64_t credential_id, SysTime now);
// Revokes every credential of a user (disabling, password reset).
Status revoke_all_credentials(store::Db& db, int64_t user_id, SysTime now);
// The user's unrevoked API tokens (not sessions), newest first.
Result<std::vector<ApiTokenInfo>> list_api_tokens(store::Db& db, int64_t user_id, SysTime now);
// How many of the user's API tokens are usable at `now` (unrevoked, unexpired).
Result<int64_t> count_api_tokens(store::Db& db, int64_t user_id, SysTime now);

}  // namespace account_db
}  // namespace atelier::auth
