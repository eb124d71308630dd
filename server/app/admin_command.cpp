#include "server/app/admin_command.h"

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "common/clock.h"
#include "server/auth/account_db.h"
#include "server/auth/password.h"
#include "server/auth/username.h"
#include "server/store/store.h"

namespace atelier::app {

namespace {

int fail(const Status& st) {
  std::fprintf(stderr, "atelier admin: %s\n", st.message().c_str());
  return 1;
}

Result<std::unique_ptr<store::Store>> open_store(const ServerConfig& config) {
  return store::Store::open({.path = config.data_dir / "atelier.db", .reader_count = 1});
}

// What both commands check and derive before their one write transaction.
struct PasswordChange {
  std::string username;  // normalized
  std::string password_hash;
  std::unique_ptr<store::Store> store;
};

// Checks the input and hashes the password before opening the store, so that a rejected name or
// password never touches the data dir.
Result<PasswordChange> prepare_password_change(const ServerConfig& config,
                                               const std::string& username,
                                               const std::string& password) {
  auto name = auth::normalize_username(username);
  if (!name.is_ok()) return name.status();
  ATELIER_RETURN_IF_ERROR(auth::validate_password(password, *name));
  auto hash = auth::hash_password(password, auth::PasswordCost::interactive());
  if (!hash.is_ok()) return hash.status();
  auto store = open_store(config);
  if (!store.is_ok()) return store.status();
  return PasswordChange{std::move(*name), std::move(*hash), std::move(*store)};
}

}  // namespace

int admin_create_user(const ServerConfig& config, const std::string& username,
                      const std::string& password, bool make_admin) {
  auto change = prepare_password_change(config, username, password);
  if (!change.is_ok()) return fail(change.status());
  const std::string& name = change->username;
  const std::string& hash = change->password_hash;
  store::Store& store = *change->store;
  auth::User created;
  Status st = store.write([&](store::Db& db) -> Status {
    auto count = auth::account_db::count_users(db);
    if (!count.is_ok()) return count.status();
    auto user = auth::account_db::insert_user(db, name, hash, make_admin || *count == 0, sys_now());
    if (!user.is_ok()) return user.status();
    created = *user;
    return Status::ok();
  });
  store.close();
  if (!st.is_ok()) return fail(st);
  std::printf("created user '%s' (id %lld)%s\n", created.username.c_str(),
              static_cast<long long>(created.id), created.is_admin ? " as instance admin" : "");
  return 0;
}

int admin_reset_password(const ServerConfig& config, const std::string& username,
                         const std::string& password) {
  auto change = prepare_password_change(config, username, password);
  if (!change.is_ok()) return fail(change.status());
  const std::string& name = change->username;
  const std::string& hash = change->password_hash;
  store::Store& store = *change->store;
  Status st = store.write([&](store::Db& db) -> Status {
    // kNotFound "no user named '<name>'" when there is none.
    ATELIER_ASSIGN_OR_RETURN(const auth::UserWithHash user,
                             auth::account_db::find_user_by_username(db, name));
    ATELIER_RETURN_IF_ERROR(auth::account_db::set_password_hash(db, user.user.id, hash));
    return auth::account_db::revoke_all_credentials(db, user.user.id, sys_now());
  });
  store.close();
  if (!st.is_ok()) return fail(st);
  std::printf("password of '%s' reset; all of its sessions and tokens are revoked\n", name.c_str());
  return 0;
}

}  // namespace atelier::app
