#include "server/app/admin_command.h"

#include <chrono>
#include <cstdio>

#include "server/auth/account_db.h"
#include "server/auth/password.h"
#include "server/auth/username.h"
#include "server/store/store.h"

namespace atelier::app {

namespace {

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int fail(const Status& st) {
  std::fprintf(stderr, "atelier admin: %s\n", st.message().c_str());
  return 1;
}

Result<std::unique_ptr<store::Store>> open_store(const ServerConfig& config) {
  return store::Store::open({.path = config.data_dir / "atelier.db", .reader_count = 1});
}

}  // namespace

int admin_create_user(const ServerConfig& config, const std::string& username,
                      const std::string& password, bool make_admin) {
  auto name = auth::normalize_username(username);
  if (!name.is_ok()) return fail(name.status());
  if (Status st = auth::validate_password(password); !st.is_ok()) return fail(st);
  auto hash = auth::hash_password(password, auth::PasswordCost::interactive());
  if (!hash.is_ok()) return fail(hash.status());
  auto store = open_store(config);
  if (!store.is_ok()) return fail(store.status());
  auth::User created;
  Status st = (*store)->write([&](store::Db& db) -> Status {
    auto count = auth::account_db::count_users(db);
    if (!count.is_ok()) return count.status();
    auto user = auth::account_db::insert_user(db, *name, *hash, make_admin || *count == 0, now_s());
    if (!user.is_ok()) return user.status();
    created = *user;
    return Status::ok();
  });
  (*store)->close();
  if (!st.is_ok()) return fail(st);
  std::printf("created user '%s' (id %lld)%s\n", created.username.c_str(),
              static_cast<long long>(created.id), created.is_admin ? " as instance admin" : "");
  return 0;
}

int admin_reset_password(const ServerConfig& config, const std::string& username,
                         const std::string& password) {
  auto name = auth::normalize_username(username);
  if (!name.is_ok()) return fail(name.status());
  if (Status st = auth::validate_password(password); !st.is_ok()) return fail(st);
  auto hash = auth::hash_password(password, auth::PasswordCost::interactive());
  if (!hash.is_ok()) return fail(hash.status());
  auto store = open_store(config);
  if (!store.is_ok()) return fail(store.status());
  Status st = (*store)->write([&](store::Db& db) -> Status {
    auto user = auth::account_db::find_user_by_username(db, *name);
    if (!user.is_ok()) return user.status();
    if (!*user) return Status::not_found("no user named '" + *name + "'");
    ATELIER_RETURN_IF_ERROR(auth::account_db::set_password_hash(db, (*user)->user.id, *hash));
    return auth::account_db::revoke_all_credentials(db, (*user)->user.id, now_s());
  });
  (*store)->close();
  if (!st.is_ok()) return fail(st);
  std::printf("password of '%s' reset; all of its sessions and tokens are revoked\n",
              name->c_str());
  return 0;
}

}  // namespace atelier::app
