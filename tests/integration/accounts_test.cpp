// Accounts over REST against a real in-process server: registration (modes, validation, the first
// admin), sessions and API tokens (revocation takes effect on the next request), and disabling
// users. Each test gets a fresh data dir, so "first user" and the login limiter start clean.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/api_test_helpers.h"

namespace atelier::apitest {
namespace {

using testing::TempDir;

class AccountsTest : public ::testing::Test {
 protected:
  uint16_t start(const std::string& registration = "open", int64_t session_ttl_s = 3600) {
    ServerConfig c = test_config(dir_);
    c.registration = registration;
    c.session_ttl_s = session_ttl_s;
    server_ = std::make_unique<TestServer>(c);
    return server_->port();
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(AccountsTest, FirstUserBecomesAdminAndLaterOnesDoNot) {
  uint16_t port = start();
  auto first = try_register(port, "Ada");
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.json["user"]["username"], "ada");  // stored lower-cased
  EXPECT_TRUE(first.json["user"]["is_admin"].get<bool>());
  EXPECT_FALSE(first.json["user"]["disabled"].get<bool>());
  // The session arrives both as a body field (for scripts) and as an HttpOnly cookie.
  std::string set_cookie = first.header("set-cookie");
  EXPECT_NE(set_cookie.find("atelier_session=" + first.json["token"].get<std::string>()),
            std::string::npos)
      << set_cookie;
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos);
  EXPECT_EQ(first.header("cache-control"), "no-store");

  Account second = register_account(port, "grace");
  EXPECT_FALSE(second.is_admin);

  auto me = call(port, "GET", "/api/v1/me", "", bearer(second.token));
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json["user"]["username"], "grace");
  EXPECT_FALSE(me.json["user"]["is_admin"].get<bool>());
  EXPECT_EQ(me.json["credential"]["kind"], "session");
  EXPECT_EQ(me.json["credential"]["scope"], "admin");

  // Only the admin sees the user list, and it holds both accounts.
  auto users = call(port, "GET", "/api/v1/admin/users", "", bearer(first.json["token"]));
  ASSERT_EQ(users.status, 200) << users.body;
  EXPECT_EQ(users.json["users"].size(), 2u);
  EXPECT_EQ(call(port, "GET", "/api/v1/admin/users", "", bearer(second.token)).status, 403);
}

TEST_F(AccountsTest, OpenRegistrationNeedsNoInvite) {
  uint16_t port = start("open");
  register_account(port, "ada");
  EXPECT_EQ(try_register(port, "grace").status, 201);
}

TEST_F(AccountsTest, InviteRegistrationNeedsAValidCodeAndJoinsTheProject) {
  uint16_t port = start("invite");
  // The very first account needs no invite: someone has to be able to start the instance.
  Account ada = register_account(port, "ada");
  EXPECT_TRUE(ada.is_admin);

  auto without = try_register(port, "grace");
  EXPECT_EQ(without.status, 400) << without.body;
  EXPECT_EQ(without.error_field(), "invite");

  int64_t project = create_project(port, ada.token, "Murals");
  std::string code = create_invite(port, ada.token, project, "editor", {{"max_uses", 5}});

  // An unknown code fails the whole registration: no half-made account is left behind.
  auto bogus = try_register(port, "grace", kPassword, std::string("atl_i_not-a-real-code"));
  EXPECT_EQ(bogus.status, 404) << bogus.body;

  auto joined = try_register(port, "grace", kPassword, code);
  ASSERT_EQ(joined.status, 201) << joined.body;
  Account grace = account_from(joined);
  EXPECT_FALSE(grace.is_admin);
  auto projects = call(port, "GET", "/api/v1/projects", "", bearer(grace.token));
  ASSERT_EQ(projects.status, 200) << projects.body;
  ASSERT_EQ(projects.json["projects"].size(), 1u) << projects.body;
  EXPECT_EQ(projects.json["projects"][0]["id"], project);
  EXPECT_EQ(projects.json["projects"][0]["role"], "editor");
}

TEST_F(AccountsTest, ClosedRegistrationRefusesAllButTheFirstAccount) {
  uint16_t port = start("closed");
  Account ada = register_account(port, "ada");  // the first account is always allowed
  EXPECT_TRUE(ada.is_admin);
  auto refused = try_register(port, "grace");
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(refused.error_code(), "forbidden");
  // An invite does not open a closed server either.
  int64_t project = create_project(port, ada.token);
  std::string code = create_invite(port, ada.token, project, "viewer");
  EXPECT_EQ(try_register(port, "grace", kPassword, code).status, 403);
  EXPECT_EQ(try_login(port, "grace").status, 401);  // nothing was created
}

TEST_F(AccountsTest, InvalidUsernamesAndPasswordsAre400NamingTheField) {
  uint16_t port = start();
  struct Case {
    nlohmann::json body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{{"username", "ab"}, {"password", kPassword}}, "username"},  // too short
      {{{"username", std::string(33, 'a')}, {"password", kPassword}}, "username"},
      {{{"username", "has space"}, {"password", kPassword}}, "username"},
      {{{"username", " ada"}, {"password", kPassword}}, "username"},        // never trimmed
      {{{"username", "ad\xC3\xA5"}, {"password", kPassword}}, "username"},  // non-ASCII
      {{{"password", kPassword}}, "username"},                              // missing
      {{{"username", 42}, {"password", kPassword}}, "username"},            // wrong type
      {{{"username", "ada"}, {"password", "short"}}, "password"},           // under 8 characters
      {{{"username", "ada"}, {"password", ""}}, "password"},
      {{{"username", "ada"}}, "password"},
      {{{"username", "ada"}, {"password", std::string(1025, 'x')}}, "password"},
  };
  for (const auto& c : cases) {
    auto r = call(port, "POST", "/api/v1/auth/register", c.body.dump());
    EXPECT_EQ(r.status, 400) << c.body.dump() << " -> " << r.body;
    EXPECT_EQ(r.error_field(), c.field) << c.body.dump() << " -> " << r.body;
  }
  // None of them created anything: the next registration is still the first (the admin).
  EXPECT_TRUE(register_account(port, "ada").is_admin);
}

TEST_F(AccountsTest, DuplicateUsernameIs409CaseInsensitively) {
  uint16_t port = start();
  register_account(port, "ada");
  auto again = try_register(port, "ada", "another password 123");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(again.error_code(), "conflict");
  EXPECT_EQ(try_register(port, "ADA").status, 409);
  // The original password still works: the failed attempt changed nothing.
  EXPECT_EQ(try_login(port, "ada").status, 200);
}

TEST_F(AccountsTest, LoginChecksThePassword) {
  uint16_t port = start();
  register_account(port, "ada");
  auto wrong = try_login(port, "ada", "not the password");
  EXPECT_EQ(wrong.status, 401) << wrong.body;
  EXPECT_EQ(wrong.error_code(), "unauthenticated");
  // The same answer for an unknown user: the response does not tell who exists.
  auto unknown = try_login(port, "nobody", "not the password");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.json["error"]["message"], wrong.json["error"]["message"]);

  auto ok = try_login(port, "ADA");  // usernames match case-insensitively
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json["user"]["username"], "ada");
  EXPECT_NE(ok.header("set-cookie").find("atelier_session="), std::string::npos);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(ok.json["token"])).status, 200);
}

TEST_F(AccountsTest, DeletingATokenRevokesItAtOnce) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  Account grace = register_account(port, "grace");
  ApiToken token = create_api_token(port, ada.token, "read", "ci");

  auto me = call(port, "GET", "/api/v1/me", "", bearer(token.secret));
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json["credential"]["kind"], "api_token");
  EXPECT_EQ(me.json["credential"]["scope"], "read");

  auto listed = call(port, "GET", "/api/v1/tokens", "", bearer(ada.token));
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_EQ(listed.json["tokens"].size(), 1u);
  EXPECT_EQ(listed.json["tokens"][0]["id"], token.id);
  EXPECT_EQ(listed.json["tokens"][0]["name"], "ci");
  EXPECT_FALSE(listed.json["tokens"][0].contains("token"));  // the secret is shown only once

  std::string path = "/api/v1/tokens/" + std::to_string(token.id);
  // Someone else's token is not theirs to revoke, and they cannot tell it exists.
  EXPECT_EQ(call(port, "DELETE", path, "", bearer(grace.token)).status, 404);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(token.secret)).status, 200);

  EXPECT_EQ(call(port, "DELETE", path, "", bearer(ada.token)).status, 204);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(token.secret)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/projects", "", bearer(token.secret)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/tokens", "", bearer(ada.token)).json["tokens"].size(), 0u);
  EXPECT_EQ(call(port, "DELETE", path, "", bearer(ada.token)).status, 404);  // already gone
}

TEST_F(AccountsTest, TokenListShowsWhenATokenWasLastUsed) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  ApiToken token = create_api_token(port, ada.token, "read", "ci");
  auto before = call(port, "GET", "/api/v1/tokens", "", bearer(ada.token));
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_TRUE(before.json["tokens"][0]["last_used_at"].is_null());

  ASSERT_EQ(call(port, "GET", "/api/v1/projects", "", bearer(token.secret)).status, 200);
  // The use is recorded by a write nobody waits for; it lands within moments.
  nlohmann::json last_used;
  for (int i = 0; i < 100 && (last_used.is_null()); ++i) {
    auto after = call(port, "GET", "/api/v1/tokens", "", bearer(ada.token));
    ASSERT_EQ(after.status, 200) << after.body;
    last_used = after.json["tokens"][0]["last_used_at"];
    if (last_used.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(last_used.is_string());
  EXPECT_EQ(last_used.get<std::string>().size(), 20u);  // 2026-11-26T07:22:45Z
}

TEST_F(AccountsTest, TokenScopeLimitsWhatATokenMayDo) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  ApiToken read = create_api_token(port, ada.token, "read");
  // A token cannot mint tokens (that would escalate its own scope), nor create projects.
  auto mint =
      call(port, "POST", "/api/v1/tokens", R"({"name":"x","scope":"admin"})", bearer(read.secret));
  EXPECT_EQ(mint.status, 403) << mint.body;
  EXPECT_EQ(call(port, "POST", "/api/v1/projects", R"({"name":"x"})", bearer(read.secret)).status,
            403);
  EXPECT_EQ(call(port, "GET", "/api/v1/projects", "", bearer(read.secret)).status, 200);

  auto bad_scope =
      call(port, "POST", "/api/v1/tokens", R"({"name":"x","scope":"root"})", bearer(ada.token));
  EXPECT_EQ(bad_scope.status, 400);
  EXPECT_EQ(bad_scope.error_field(), "scope");
  auto too_short = call(port, "POST", "/api/v1/tokens",
                        R"({"name":"x","scope":"read","expires_in_s":59})", bearer(ada.token));
  EXPECT_EQ(too_short.status, 400);
  EXPECT_EQ(too_short.error_field(), "expires_in_s");
}

TEST_F(AccountsTest, LogoutRevokesTheSession) {
  uint16_t port = start();
  register_account(port, "ada");
  Account bearer_session = login(port, "ada");
  Account cookie_session = login(port, "ada");

  auto out = call(port, "POST", "/api/v1/auth/logout", "", bearer(bearer_session.token));
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);  // clears the cookie
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(bearer_session.token)).status, 401);
  EXPECT_EQ(call(port, "POST", "/api/v1/auth/logout", "", bearer(bearer_session.token)).status,
            401);

  // Logging out one session leaves the others alone; a browser logs out with its cookie.
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", cookie(cookie_session.token)).status, 200);
  auto cookie_out = call(port, "POST", "/api/v1/auth/logout", "",
                         header_lines({cookie(cookie_session.token), "Origin: http://127.0.0.1"}));
  EXPECT_EQ(cookie_out.status, 204) << cookie_out.body;
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", cookie(cookie_session.token)).status, 401);
}

TEST_F(AccountsTest, SessionsExpireAfterTheirTtl) {
  // 3 s: the session must still be valid for the token below even on a loaded machine.
  uint16_t port = start("open", /*session_ttl_s=*/3);
  auto r = try_register(port, "ada");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_NE(r.header("set-cookie").find("Max-Age=3;"), std::string::npos) << r.header("set-cookie");
  const std::string token = r.json["token"].get<std::string>();
  ApiToken api = create_api_token(port, token, "read");  // tokens live on (no expires_in_s)
  std::this_thread::sleep_for(std::chrono::milliseconds(4100));
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(token)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", cookie(token)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(api.secret)).status, 200);
}

TEST_F(AccountsTest, BadCredentialsLeaveTheRequestAnonymous) {
  uint16_t port = start();
  register_account(port, "ada");
  EXPECT_EQ(call(port, "GET", "/api/v1/me").status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer("atl_s_made-up")).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", cookie("atl_s_made-up")).status, 401);
  auto malformed = call(port, "GET", "/api/v1/me", "", "Authorization: Basic YWRhOnB3");
  EXPECT_EQ(malformed.status, 401);
  EXPECT_EQ(malformed.error_field(), "Authorization");
  // Public routes stay public even with a broken credential.
  EXPECT_EQ(call(port, "GET", "/api/v1/info", "", bearer("atl_s_made-up")).status, 200);
}

TEST_F(AccountsTest, DisablingAUserLocksThemOutAtOnce) {
  uint16_t port = start();
  Account admin = register_account(port, "root");
  Account ada = register_account(port, "ada");
  ApiToken token = create_api_token(port, ada.token, "submit");
  ASSERT_EQ(call(port, "GET", "/api/v1/me", "", bearer(token.secret)).status, 200);

  std::string path = "/api/v1/admin/users/" + std::to_string(ada.id);
  auto off = call(port, "PATCH", path, R"({"disabled":true})", bearer(admin.token));
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_TRUE(off.json["user"]["disabled"].get<bool>());

  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(ada.token)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(token.secret)).status, 401);
  auto refused = try_login(port, "ada");
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_FALSE(refused.json.contains("token"));

  // Enabling again allows logging in, but the revoked credentials stay revoked.
  auto on = call(port, "PATCH", path, R"({"disabled":false})", bearer(admin.token));
  ASSERT_EQ(on.status, 200) << on.body;
  EXPECT_FALSE(on.json["user"]["disabled"].get<bool>());
  EXPECT_EQ(try_login(port, "ada").status, 200);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(token.secret)).status, 401);
}

TEST_F(AccountsTest, AdminUserPatchRules) {
  uint16_t port = start();
  Account admin = register_account(port, "root");
  Account ada = register_account(port, "ada");
  std::string self = "/api/v1/admin/users/" + std::to_string(admin.id);
  // Locking yourself out would leave the instance without a working admin.
  auto own = call(port, "PATCH", self, R"({"disabled":true})", bearer(admin.token));
  EXPECT_EQ(own.status, 409) << own.body;
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(admin.token)).status, 200);

  EXPECT_EQ(
      call(port, "PATCH", "/api/v1/admin/users/999999", R"({"disabled":true})", bearer(admin.token))
          .status,
      404);
  // Only "disabled" may be set here: no promoting anyone to admin through this endpoint.
  auto promote = call(port, "PATCH", "/api/v1/admin/users/" + std::to_string(ada.id),
                      R"({"disabled":false,"is_admin":true})", bearer(admin.token));
  EXPECT_EQ(promote.status, 400) << promote.body;
  EXPECT_EQ(promote.error_field(), "is_admin");
  EXPECT_FALSE(login(port, "ada").is_admin);
}

}  // namespace
}  // namespace atelier::apitest
