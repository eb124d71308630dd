#include "server/auth/account_db.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "server/store/store.h"
#include "tests/support/store_fixture.h"

namespace atelier::auth {
namespace {

using store::Db;
namespace adb = account_db;
using namespace std::chrono_literals;

constexpr SysTime kNow{std::chrono::seconds{1'700'000'000}};

class AccountDbTest : public testing::StoreFixture {
 protected:
  AccountDbTest() : StoreFixture("atelier-account-db-test") {}

  User add_user(const std::string& name, bool is_admin = false) {
    Result<User> user = in_write(
        [&](Db& db) { return adb::insert_user(db, name, "hash-" + name, is_admin, kNow); });
    EXPECT_TRUE(user.is_ok()) << user.status().to_string();
    return user.is_ok() ? *user : User{};
  }

  int64_t add_credential(int64_t user_id, CredentialKind kind, Scope scope,
                         const std::string& secret_hash, SysTime created_at = kNow,
                         std::optional<SysTime> expires_at = std::nullopt,
                         const std::string& name = "cred") {
    Result<int64_t> id = in_write([&](Db& db) {
      return adb::insert_credential(db, user_id, kind, name, scope, secret_hash, created_at,
                                    expires_at);
    });
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return id.is_ok() ? *id : 0;
  }

  std::optional<Principal> principal(const std::string& secret_hash, SysTime now = kNow) {
    Result<std::optional<Principal>> p =
        in_read([&](Db& db) { return adb::find_principal(db, secret_hash, now); });
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    return p.is_ok() ? *p : std::nullopt;
  }
};

TEST(ScopeNameTest, RoundTripsAndRejectsUnknown) {
  for (Scope s : {Scope::kRead, Scope::kSubmit, Scope::kAdmin}) {
    EXPECT_EQ(parse_scope(scope_name(s)), s);
  }
  EXPECT_EQ(scope_name(Scope::kSubmit), "submit");
  EXPECT_EQ(parse_scope("ADMIN"), std::nullopt);
  EXPECT_EQ(parse_scope(""), std::nullopt);
}

TEST_F(AccountDbTest, InsertsAndFindsUsers) {
  User alice = add_user("alice", /*is_admin=*/true);
  EXPECT_GT(alice.id, 0);
  EXPECT_EQ(alice.username, "alice");
  EXPECT_TRUE(alice.is_admin);
  EXPECT_FALSE(alice.disabled);
  EXPECT_EQ(alice.created_at, kNow);

  auto by_name = in_read([](Db& db) { return adb::find_user_by_username(db, "alice"); });
  ASSERT_TRUE(by_name.is_ok()) << by_name.status().to_string();
  EXPECT_EQ(by_name->user.id, alice.id);
  EXPECT_EQ(by_name->user.username, "alice");
  EXPECT_TRUE(by_name->user.is_admin);
  EXPECT_EQ(by_name->user.created_at, kNow);
  EXPECT_EQ(by_name->password_hash, "hash-alice");

  auto by_id = in_read([&](Db& db) { return adb::find_user(db, alice.id); });
  ASSERT_TRUE(by_id.is_ok());
  EXPECT_EQ(by_id->username, "alice");

  auto missing_id = in_read([](Db& db) { return adb::find_user(db, 9999); });
  EXPECT_EQ(missing_id.status().code(), StatusCode::kNotFound);
  auto missing_name = in_read([](Db& db) { return adb::find_user_by_username(db, "nobody"); });
  EXPECT_EQ(missing_name.status().code(), StatusCode::kNotFound);
}

TEST_F(AccountDbTest, StoresUsernamesAsGiven) {
  // Normalization is the caller's job; this layer compares bytes.
  User bob = add_user("Bob");
  EXPECT_EQ(bob.username, "Bob");
  auto exact = in_read([](Db& db) { return adb::find_user_by_username(db, "Bob"); });
  ASSERT_TRUE(exact.is_ok());
  EXPECT_EQ(exact->user.username, "Bob");
  auto lower = in_read([](Db& db) { return adb::find_user_by_username(db, "bob"); });
  EXPECT_EQ(lower.status().code(), StatusCode::kNotFound);
}

TEST_F(AccountDbTest, DuplicateUsernameIsAlreadyExistsOnUsername) {
  add_user("alice");
  Result<User> dup =
      in_write([](Db& db) { return adb::insert_user(db, "alice", "other", false, kNow); });
  ASSERT_FALSE(dup.is_ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.status().field(), "username");
  EXPECT_EQ(dup.status().message(), "username is taken");
  EXPECT_EQ(*in_read([](Db& db) { return adb::count_users(db); }), 1);
}

TEST_F(AccountDbTest, CountsAndListsUsersNewestFirstByPage) {
  EXPECT_EQ(*in_read([](Db& db) { return adb::count_users(db); }), 0);
  User c = add_user("carol");
  User a = add_user("alice");
  User b = add_user("bob");
  EXPECT_EQ(*in_read([](Db& db) { return adb::count_users(db); }), 3);
  auto first = in_read([](Db& db) { return adb::list_users_page(db, 2, std::nullopt); });
  ASSERT_TRUE(first.is_ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, b.id);
  EXPECT_EQ((*first)[0].username, "bob");
  EXPECT_EQ((*first)[1].id, a.id);
  auto rest = in_read([&](Db& db) { return adb::list_users_page(db, 2, a.id); });
  ASSERT_TRUE(rest.is_ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id, c.id);
  EXPECT_TRUE(in_read([](Db& db) { return adb::list_users_page(db, 0, std::nullopt); })->empty());
}

TEST_F(AccountDbTest, SetsDisabledAndPasswordHash) {
  User alice = add_user("alice");
  ASSERT_TRUE(in_write([&](Db& db) { return adb::set_disabled(db, alice.id, true); }).is_ok());
  auto found = in_read([&](Db& db) { return adb::find_user(db, alice.id); });
  ASSERT_TRUE(found.is_ok());
  EXPECT_TRUE(found->disabled);
  // Setting the same value again still finds the user (not kNotFound).
  EXPECT_TRUE(in_write([&](Db& db) { return adb::set_disabled(db, alice.id, true); }).is_ok());
  ASSERT_TRUE(in_write([&](Db& db) { return adb::set_disabled(db, alice.id, false); }).is_ok());
  found = in_read([&](Db& db) { return adb::find_user(db, alice.id); });
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(found->disabled);

  ASSERT_TRUE(
      in_write([&](Db& db) { return adb::set_password_hash(db, alice.id, "new-hash"); }).is_ok());
  auto with_hash = in_read([](Db& db) { return adb::find_user_by_username(db, "alice"); });
  ASSERT_TRUE(with_hash.is_ok());
  EXPECT_EQ(with_hash->password_hash, "new-hash");

  EXPECT_EQ(in_write([](Db& db) { return adb::set_disabled(db, 9999, true); }).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(in_write([](Db& db) { return adb::set_password_hash(db, 9999, "x"); }).code(),
            StatusCode::kNotFound);
}

TEST_F(AccountDbTest, FindsPrincipalForValidCredential) {
  User alice = add_user("alice", /*is_admin=*/true);
  int64_t session = add_credential(alice.id, CredentialKind::kSession, Scope::kAdmin, "h-session");
  int64_t token = add_credential(alice.id, CredentialKind::kApiToken, Scope::kSubmit, "h-token",
                                 kNow, kNow + 100s);
  EXPECT_NE(session, token);

  std::optional<Principal> p = principal("h-session");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->credential_id, session);
  EXPECT_EQ(p->kind, CredentialKind::kSession);
  EXPECT_EQ(p->scope, Scope::kAdmin);
  EXPECT_EQ(p->user.id, alice.id);
  EXPECT_EQ(p->user.username, "alice");
  EXPECT_TRUE(p->user.is_admin);
  EXPECT_FALSE(p->user.disabled);
  EXPECT_EQ(p->user.created_at, kNow);

  p = principal("h-token", kNow + 99s);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->credential_id, token);
  EXPECT_EQ(p->kind, CredentialKind::kApiToken);
  EXPECT_EQ(p->scope, Scope::kSubmit);

  EXPECT_FALSE(principal("unknown-hash").has_value());
}

TEST_F(AccountDbTest, TouchRecordsLastUse) {
  User alice = add_user("alice");
  int64_t token = add_credential(alice.id, CredentialKind::kApiToken, Scope::kRead, "h-t");
  ASSERT_TRUE(principal("h-t").has_value());
  EXPECT_EQ(principal("h-t")->last_used_at, std::nullopt);
  ASSERT_TRUE(
      in_write([&](Db& db) { return adb::touch_credential(db, token, kNow + 5s); }).is_ok());
  EXPECT_EQ(principal("h-t")->last_used_at, kNow + 5s);
  auto listed = in_read([&](Db& db) { return adb::list_api_tokens(db, alice.id, kNow); });
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].last_used_at, kNow + 5s);
  EXPECT_EQ(in_write([&](Db& db) { return adb::touch_credential(db, 9999, kNow); }).code(),
            StatusCode::kNotFound);
}

TEST_F(AccountDbTest, CredentialExpiresExactlyAtExpiresAt) {
  User alice = add_user("alice");
  add_credential(alice.id, CredentialKind::kApiToken, Scope::kRead, "h", kNow, kNow + 10s);
  EXPECT_TRUE(principal("h", kNow + 9s).has_value());
  EXPECT_FALSE(principal("h", kNow + 10s).has_value());
  EXPECT_FALSE(principal("h", kNow + 11s).has_value());
}

TEST_F(AccountDbTest, RevokedCredentialIsNotAPrincipal) {
  User alice = add_user("alice");
  int64_t id = add_credential(alice.id, CredentialKind::kSession, Scope::kAdmin, "h");
  ASSERT_TRUE(principal("h").has_value());
  ASSERT_TRUE(
      in_write([&](Db& db) { return adb::revoke_credential(db, alice.id, id, kNow); }).is_ok());
  EXPECT_FALSE(principal("h").has_value());
  // A second revoke finds nothing left to revoke.
  EXPECT_EQ(in_write([&](Db& db) { return adb::revoke_credential(db, alice.id, id, kNow); }).code(),
            StatusCode::kNotFound);
}

TEST_F(AccountDbTest, DisabledUserIsNotAPrincipal) {
  User alice = add_user("alice");
  add_credential(alice.id, CredentialKind::kSession, Scope::kAdmin, "h");
  ASSERT_TRUE(in_write([&](Db& db) { return adb::set_disabled(db, alice.id, true); }).is_ok());
  EXPECT_FALSE(principal("h").has_value());
  // Re-enabling brings unrevoked credentials back (disabling callers also revoke_all).
  ASSERT_TRUE(in_write([&](Db& db) { return adb::set_disabled(db, alice.id, false); }).is_ok());
  EXPECT_TRUE(principal("h").has_value());
}

TEST_F(AccountDbTest, RevokingSomeoneElsesCredentialIsNotFound) {
  User alice = add_user("alice");
  User mallory = add_user("mallory");
  int64_t id = add_credential(alice.id, CredentialKind::kApiToken, Scope::kAdmin, "h");
  Status st = in_write([&](Db& db) { return adb::revoke_credential(db, mallory.id, id, kNow); });
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_TRUE(principal("h").has_value());
  st = in_write([&](Db& db) { return adb::revoke_credential(db, alice.id, id + 1000, kNow); });
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
}

TEST_F(AccountDbTest, RevokeAllRevokesOnlyThatUsersCredentials) {
  User alice = add_user("alice");
  User bob = add_user("bob");
  add_credential(alice.id, CredentialKind::kSession, Scope::kAdmin, "a1");
  add_credential(alice.id, CredentialKind::kApiToken, Scope::kRead, "a2");
  add_credential(bob.id, CredentialKind::kSession, Scope::kAdmin, "b1");
  ASSERT_TRUE(
      in_write([&](Db& db) { return adb::revoke_all_credentials(db, alice.id, kNow); }).is_ok());
  EXPECT_FALSE(principal("a1").has_value());
  EXPECT_FALSE(principal("a2").has_value());
  EXPECT_TRUE(principal("b1").has_value());
  // Nothing left to revoke is still fine.
  EXPECT_TRUE(
      in_write([&](Db& db) { return adb::revoke_all_credentials(db, alice.id, kNow); }).is_ok());
}

TEST_F(AccountDbTest, ListsUnrevokedApiTokensNewestFirst) {
  User alice = add_user("alice");
  User bob = add_user("bob");
  add_credential(alice.id, CredentialKind::kSession, Scope::kAdmin, "session", kNow);
  int64_t old_token = add_credential(alice.id, CredentialKind::kApiToken, Scope::kRead, "t1",
                                     kNow - 100s, std::nullopt, "old");
  int64_t new_token = add_credential(alice.id, CredentialKind::kApiToken, Scope::kSubmit, "t2",
                                     kNow - 10s, kNow + 3600s, "new");
  int64_t revoked = add_credential(alice.id, CredentialKind::kApiToken, Scope::kAdmin, "t3",
                                   kNow - 5s, std::nullopt, "revoked");
  add_credential(alice.id, CredentialKind::kApiToken, Scope::kAdmin, "t4", kNow - 50s, kNow,
                 "expired");
  add_credential(bob.id, CredentialKind::kApiToken, Scope::kAdmin, "t5", kNow, std::nullopt,
                 "bob's");
  ASSERT_TRUE(in_write([&](Db& db) {
                return adb::revoke_credential(db, alice.id, revoked, kNow);
              }).is_ok());

  auto tokens = in_read([&](Db& db) { return adb::list_api_tokens(db, alice.id, kNow); });
  ASSERT_TRUE(tokens.is_ok()) << tokens.status().to_string();
  ASSERT_EQ(tokens->size(), 2u);
  const ApiTokenInfo& first = (*tokens)[0];
  EXPECT_EQ(first.id, new_token);
  EXPECT_EQ(first.name, "new");
  EXPECT_EQ(first.scope, Scope::kSubmit);
  EXPECT_EQ(first.created_at, kNow - 10s);
  EXPECT_EQ(first.expires_at, std::optional<SysTime>(kNow + 3600s));
  EXPECT_EQ(first.last_used_at, std::nullopt);
  const ApiTokenInfo& second = (*tokens)[1];
  EXPECT_EQ(second.id, old_token);
  EXPECT_EQ(second.name, "old");
  EXPECT_EQ(second.scope, Scope::kRead);
  EXPECT_EQ(second.expires_at, std::nullopt);
}

TEST_F(AccountDbTest, CredentialForUnknownUserFailsForeignKey) {
  Result<int64_t> id = in_write([](Db& db) {
    return adb::insert_credential(db, 9999, CredentialKind::kSession, "s", Scope::kAdmin, "h", kNow,
                                  std::nullopt);
  });
  ASSERT_FALSE(id.is_ok());
  EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(AccountDbTest, DuplicateSecretHashIsRefused) {
  User alice = add_user("alice");
  add_credential(alice.id, CredentialKind::kSession, Scope::kAdmin, "same");
  Result<int64_t> dup = in_write([&](Db& db) {
    return adb::insert_credential(db, alice.id, CredentialKind::kApiToken, "t", Scope::kRead,
                                  "same", kNow, std::nullopt);
  });
  ASSERT_FALSE(dup.is_ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(AccountDbTest, DeletingAUserDeletesTheirCredentials) {
  User alice = add_user("alice");
  User bob = add_user("bob");
  add_credential(alice.id, CredentialKind::kSession, Scope::kAdmin, "a1");
  add_credential(bob.id, CredentialKind::kSession, Scope::kAdmin, "b1");
  Status st = in_write([&](Db& db) -> Status {
    auto stmt = db.prepare("DELETE FROM users WHERE id = ?");
    if (!stmt.is_ok()) return stmt.status();
    ATELIER_RETURN_IF_ERROR(stmt->bind_int64(1, alice.id));
    return stmt->step().status();
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  auto left = in_read([](Db& db) { return db.query_int64("SELECT count(*) FROM credentials"); });
  ASSERT_TRUE(left.is_ok());
  EXPECT_EQ(*left, 1);
  EXPECT_FALSE(principal("a1").has_value());
  EXPECT_TRUE(principal("b1").has_value());
}

}  // namespace
}  // namespace atelier::auth
