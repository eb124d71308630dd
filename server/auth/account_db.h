// Accounts in the database: users and their credentials (browser sessions and API tokens).
//
// Plain functions over a store::Db, so callers decide the transaction: writes run inside
// Store::submit_write / write (already in BEGIN IMMEDIATE), reads inside Store::read.
// Times are Unix seconds (INTEGER columns); the API layer formats them.
// Secrets never reach this layer: only their SHA-256 hashes (auth::hash_secret) are stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/store/sqlite.h"

namespace atelier::auth {

struct User {
  int64_t id = 0;
  std::string username;  // normalized (lower-case)
  bool is_admin = false;
  bool disabled = false;
  int64_t created_at = 0;
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
  std::optional<int64_t> last_used_at;  // when the credential was last recorded in use
};

struct ApiTokenInfo {
  int64_t id = 0;
  std::string name;
  Scope scope = Scope::kRead;
  int64_t created_at = 0;
  std::optional<int64_t> expires_at;
  std::optional<int64_t> last_used_at;
};

namespace account_db {

Result<int64_t> count_users(store::Db& db);
// kAlreadyExists when the (normalized) username is taken.
Result<User> insert_user(store::Db& db, const std::string& username,
                         const std::string& password_hash, bool is_admin, int64_t now);
Result<std::optional<UserWithHash>> find_user_by_username(store::Db& db,
                                                          const std::string& username);
Result<std::optional<User>> find_user(store::Db& db, int64_t user_id);
Result<std::vector<User>> list_users(store::Db& db);  // ordered by id
// kNotFound when no such user.
Status set_password_hash(store::Db& db, int64_t user_id, const std::string& password_hash);
Status set_disabled(store::Db& db, int64_t user_id, bool disabled);

// Stores a credential; returns its id. `expires_at` nullopt = never.
Result<int64_t> insert_credential(store::Db& db, int64_t user_id, CredentialKind kind,
                                  const std::string& name, Scope scope,
                                  const std::string& secret_hash, int64_t now,
                                  std::optional<int64_t> expires_at);
// The principal for a credential hash, or nullopt when unknown, revoked, expired at `now`, or
// its user is disabled.
Result<std::optional<Principal>> find_principal(store::Db& db, const std::string& secret_hash,
                                                int64_t now);
// Records that a credential was used at `now` (kNotFound for an unknown id).
Status touch_credential(store::Db& db, int64_t credential_id, int64_t now);
// Revokes one credential of `user_id` (kNotFound if it is not theirs or does not exist).
Status revoke_credential(store::Db& db, int64_t user_id, int64_t credential_id, int64_t now);
// Revokes every credential of a user (disabling, password reset).
Status revoke_all_credentials(store::Db& db, int64_t user_id, int64_t now);
// The user's unrevoked API tokens (not sessions), newest first.
Result<std::vector<ApiTokenInfo>> list_api_tokens(store::Db& db, int64_t user_id, int64_t now);

}  // namespace account_db
}  // namespace atelier::auth
