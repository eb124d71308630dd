// The defences around accounts, against a real in-process server: login throttling (per
// username and per client address, under concurrency too), the registration throttle, the Origin
// check on cookie-authenticated writes, and strict request bodies (unknown fields, malformed
// JSON, oversized bodies write nothing).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <latch>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "tests/integration/api_test_helpers.h"

namespace atelier::apitest {
namespace {

using testing::TempDir;

int login_from(const std::string& ip, uint16_t port, const std::string& username,
               const std::string& password, Reply* out = nullptr) {
  nlohmann::json body = {{"username", username}, {"password", password}};
  auto r = call_from(ip, port, "POST", "/api/v1/auth/login", body.dump());
  if (!r) return 0;
  if (out) *out = *r;
  return r->status;
}

class AccountsSecurityTest : public ::testing::Test {
 protected:
  uint16_t start(int64_t max_body_bytes = 1 << 20) {
    ServerConfig c = test_config(dir_);
    c.max_body_bytes = max_body_bytes;
    return start(c);
  }
  uint16_t start(const ServerConfig& c) {
    server_ = std::make_unique<TestServer>(c);
    return server_->port();
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

// `longest`: the limiter's lockout (15 minutes for logins, an hour for registrations).
void expect_retry_after(const Reply& r, int longest = 15 * 60) {
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.error_code(), "rate_limited");
  std::string retry = r.header("retry-after");
  ASSERT_FALSE(retry.empty()) << "429 without Retry-After";
  int seconds = std::stoi(retry);
  EXPECT_GE(seconds, 1);
  EXPECT_LE(seconds, longest);
}

// atelier_password_verifications_total from /metrics: how many passwords logins have checked.
double password_verifications(uint16_t port) {
  const std::string name = "\natelier_password_verifications_total ";
  Reply r = call(port, "GET", "/metrics");
  size_t at = r.body.find(name);
  if (at == std::string::npos) throw std::runtime_error("no " + name.substr(1) + "in /metrics");
  return std::stod(r.body.substr(at + name.size()));
}

// Sends `n` logins for `username` with wrong passwords at once (each on its own connection, all
// released together), from `source_ip(i)` (empty: the shared client's 127.0.0.1). Returns how
// many got each status; 0 counts requests that got no answer.
std::map<int, int> concurrent_wrong_logins(uint16_t port, const std::string& username, int n,
                                           const std::function<std::string(int)>& source_ip,
                                           std::vector<Reply>* refusals) {
  std::vector<Reply> replies(static_cast<size_t>(n));
  std::latch go(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      nlohmann::json body = {{"username", username},
                             {"password", "wrong guess " + std::to_string(i)}};
      go.arrive_and_wait();
      Reply& out = replies[static_cast<size_t>(i)];
      const std::string ip = source_ip ? source_ip(i) : std::string();
      if (!ip.empty()) {
        if (auto r = call_from(ip, port, "POST", "/api/v1/auth/login", body.dump())) out = *r;
        return;
      }
      if (auto r = testing::http_request(port, "POST", "/api/v1/auth/login", body.dump())) {
        out.status = r->status;
        out.body = r->body;
        out.headers = r->headers;
        out.json = nlohmann::json::parse(r->body, nullptr, false);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::map<int, int> counts;
  for (const Reply& r : replies) {
    ++counts[r.status];
    if (r.status == 429 && refusals) refusals->push_back(r);
  }
  return counts;
}

TEST_F(AccountsSecurityTest, FiveFailuresForOneUsernameLockItFromEveryAddress) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  register_account(port, "grace");
  if (login_from("127.0.0.2", port, "grace", kPassword) != 200) {
    GTEST_SKIP() << "cannot connect from 127.0.0.2 here";
  }
  // Five wrong passwords, spread over two addresses so that neither address reaches five.
  const char* ips[] = {"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"};
  for (const char* ip : ips) EXPECT_EQ(login_from(ip, port, "ada", "wrong password"), 401);

  // The username is locked everywhere, even for the right password (it is not even checked).
  Reply locked;
  login_from("127.0.0.4", port, "ada", kPassword, &locked);
  expect_retry_after(locked);
  login_from("127.0.0.4", port, "ADA", kPassword, &locked);  // the normalized name is the key
  expect_retry_after(locked);
  // Other users, from the same addresses, are not affected.
  EXPECT_EQ(login_from("127.0.0.2", port, "grace", kPassword), 200);
  EXPECT_EQ(login_from("127.0.0.4", port, "grace", kPassword), 200);
  // Sessions that already exist keep working: the lock is about guessing, not about the account.
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(ada.token)).status, 200);
}

TEST_F(AccountsSecurityTest, FiveFailuresFromOneAddressLockItForEveryUsername) {
  uint16_t port = start();
  register_account(port, "ada");
  if (login_from("127.0.0.5", port, "ada", kPassword) != 200) {
    GTEST_SKIP() << "cannot connect from 127.0.0.5 here";
  }
  // Five different usernames (existing or not): no username reaches five, the address does.
  for (const char* name : {"ada", "bob", "carol", "dave", "erin"}) {
    EXPECT_EQ(login_from("127.0.0.5", port, name, "wrong password"), 401) << name;
  }
  Reply locked;
  login_from("127.0.0.5", port, "ada", kPassword, &locked);
  expect_retry_after(locked);
  login_from("127.0.0.5", port, "frank", "anything at all", &locked);
  expect_retry_after(locked);
  // The same user from another address is fine.
  EXPECT_EQ(login_from("127.0.0.6", port, "ada", kPassword), 200);
}

TEST_F(AccountsSecurityTest, LoginIsLimitedAfterFiveFailuresFromTheDefaultClient) {
  // The plain 127.0.0.1 client, as every other suite uses it: the sixth attempt is refused.
  uint16_t port = start();
  register_account(port, "ada");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(try_login(port, "ada", "wrong password").status, 401) << "attempt " << i + 1;
  }
  expect_retry_after(try_login(port, "ada"));
}

TEST_F(AccountsSecurityTest, ASuccessfulLoginResetsTheUsernameCount) {
  uint16_t port = start();
  register_account(port, "ada");
  if (login_from("127.0.0.7", port, "ada", kPassword) != 200) {
    GTEST_SKIP() << "cannot connect from 127.0.0.7 here";
  }
  // Four failures, a success, four more (from other addresses, so no address reaches five):
  // without the reset the username would have eight and be locked.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(login_from("127.0.0.8", port, "ada", "wrong pw!"), 401);
  EXPECT_EQ(login_from("127.0.0.9", port, "ada", kPassword), 200);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(login_from("127.0.0.10", port, "ada", "wrong pw!"), 401);
  EXPECT_EQ(login_from("127.0.0.11", port, "ada", kPassword), 200);
}

// Finding 1 of issue 19: the lock was checked before the hash and the failure recorded after it,
// so every guess already in the hash pool got checked (about 66, then 503s). Attempts are now
// reserved before the hash: exactly five passwords are checked, the rest are 429, none is 503.
TEST_F(AccountsSecurityTest, TwoHundredConcurrentWrongLoginsCheckAtMostFivePasswords) {
  uint16_t port = start();
  register_account(port, "ada");
  const double before = password_verifications(port);

  std::vector<Reply> refusals;
  auto counts = concurrent_wrong_logins(port, "ada", 200, nullptr, &refusals);
  EXPECT_EQ(password_verifications(port) - before, 5);
  EXPECT_EQ(counts[401], 5);
  EXPECT_EQ(counts[429], 195);
  EXPECT_EQ(counts[503], 0);
  EXPECT_EQ(counts[0], 0) << "requests without an answer";
  for (const Reply& r : refusals) expect_retry_after(r);

  // The username is locked now, even for the right password, and nothing more is checked.
  expect_retry_after(try_login(port, "ada"));
  EXPECT_EQ(password_verifications(port) - before, 5);
}

// The same guesses spread over 40 source addresses: no address comes near its own limit, the
// username still admits five.
TEST_F(AccountsSecurityTest, ConcurrentWrongLoginsFromManyAddressesCheckAtMostFive) {
  uint16_t port = start();
  register_account(port, "ada");
  register_account(port, "grace");
  if (login_from("127.0.1.1", port, "grace", kPassword) != 200) {
    GTEST_SKIP() << "cannot connect from 127.0.1.1 here";
  }
  const double before = password_verifications(port);
  auto counts = concurrent_wrong_logins(
      port, "ada", 200, [](int i) { return "127.0.1." + std::to_string(1 + i % 40); }, nullptr);
  EXPECT_EQ(password_verifications(port) - before, 5);
  EXPECT_EQ(counts[401], 5);
  EXPECT_EQ(counts[429], 195);
  EXPECT_EQ(counts[503], 0);
  // The addresses are not locked for other users: each has at most one failure.
  EXPECT_EQ(login_from("127.0.1.1", port, "grace", kPassword), 200);
}

TEST_F(AccountsSecurityTest, RegistrationsPerAddressAreLimited) {
  ServerConfig c = test_config(dir_);
  c.registrations_per_ip_per_hour = 3;
  c.registrations_per_hour = 1000;
  uint16_t port = start(c);
  // Refused input never reaches the hash and does not count.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(try_register(port, "ada", "short").status, 400);
    EXPECT_EQ(try_register(port, "bad name", kPassword).status, 400);
    EXPECT_EQ(try_register(port, "ada", "password123").status, 400);
  }
  register_account(port, "ada");
  register_account(port, "bob");
  EXPECT_EQ(try_register(port, "ADA").status, 409);  // hashed, so it counts
  Reply refused = try_register(port, "carol");
  expect_retry_after(refused, 3600);
  EXPECT_NE(refused.body.find("from this address"), std::string::npos) << refused.body;
  EXPECT_EQ(try_login(port, "carol").status, 401);  // not created
  EXPECT_EQ(try_login(port, "ada").status, 200);    // logins are not affected

  // Another address has its own allowance.
  nlohmann::json body = {{"username", "carol"}, {"password", kPassword}};
  auto other = call_from("127.0.0.12", port, "POST", "/api/v1/auth/register", body.dump());
  if (!other) GTEST_SKIP() << "cannot connect from 127.0.0.12 here";
  EXPECT_EQ(other->status, 201) << other->body;
}

TEST_F(AccountsSecurityTest, RegistrationsAreLimitedInstanceWide) {
  ServerConfig c = test_config(dir_);
  c.registrations_per_ip_per_hour = 1000;
  c.registrations_per_hour = 3;
  uint16_t port = start(c);
  register_account(port, "ada");
  register_account(port, "bob");
  register_account(port, "carol");
  Reply refused = try_register(port, "dave");
  expect_retry_after(refused, 3600);
  EXPECT_NE(refused.body.find("on this server"), std::string::npos) << refused.body;

  nlohmann::json body = {{"username", "erin"}, {"password", kPassword}};
  auto other = call_from("127.0.0.13", port, "POST", "/api/v1/auth/register", body.dump());
  if (!other) GTEST_SKIP() << "cannot connect from 127.0.0.13 here";
  EXPECT_EQ(other->status, 429) << "a fresh address is still over the instance's limit";
}

TEST_F(AccountsSecurityTest, InviteRegistrationsCountToo) {
  ServerConfig c = test_config(dir_);
  c.registration = "invite";
  c.registrations_per_ip_per_hour = 2;
  uint16_t port = start(c);
  register_account(port, "admin");  // the first account needs no invite; it counts
  // Guessing invite codes costs a hash each: it counts.
  Reply guess = try_register(port, "bob", kPassword, "not-a-real-invite");
  EXPECT_NE(guess.status, 201) << guess.body;
  EXPECT_NE(guess.status, 429) << guess.body;
  expect_retry_after(try_register(port, "carol", kPassword, "another-guess"), 3600);
}

TEST_F(AccountsSecurityTest, CommonPasswordsAreRefusedAtRegistration) {
  uint16_t port = start();
  for (const char* common : {"password", "password123", "123456789", "qwertyuiop"}) {
    Reply r = try_register(port, "ada", common);
    EXPECT_EQ(r.status, 400) << common << " -> " << r.body;
    EXPECT_EQ(r.error_field(), "password") << common;
    EXPECT_NE(r.body.find("too common or too simple"), std::string::npos) << r.body;
  }
  // Made from the username (cracklib's username rules).
  EXPECT_EQ(try_register(port, "adalovelace", "Adalovelace1").status, 400);
  EXPECT_TRUE(register_account(port, "ada").is_admin);  // none of the refusals created anything
}

// A browser attaches cookies to cross-site requests; the Origin check is what stops a page on
// another site from acting with them.
TEST_F(AccountsSecurityTest, CookieAuthenticatedWritesNeedASameOriginOrigin) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  const std::string body = R"({"name":"Room"})";
  auto projects = [&] {
    return call(port, "GET", "/api/v1/projects", "", bearer(ada.token)).json["projects"].size();
  };

  auto foreign = call(port, "POST", "/api/v1/projects", body,
                      header_lines({cookie(ada.token), "Origin: http://evil.example"}));
  EXPECT_EQ(foreign.status, 403) << foreign.body;
  EXPECT_EQ(foreign.error_field(), "Origin");
  // Same host, other port: another origin.
  EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                 header_lines({cookie(ada.token), "Origin: http://127.0.0.1:1"}))
                .status,
            403);
  EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                 header_lines({cookie(ada.token), "Origin: null"}))
                .status,
            403);
  auto missing = call(port, "POST", "/api/v1/projects", body, cookie(ada.token));
  EXPECT_EQ(missing.status, 403) << missing.body;
  EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                 header_lines({cookie(ada.token), "Referer: http://evil.example/p/1"}))
                .status,
            403);
  EXPECT_EQ(projects(), 0u);  // none of the refused requests wrote anything

  // The client sends "Host: 127.0.0.1", so that is this server's own origin.
  auto same = call(port, "POST", "/api/v1/projects", body,
                   header_lines({cookie(ada.token), "Origin: http://127.0.0.1"}));
  EXPECT_EQ(same.status, 201) << same.body;
  auto referer = call(port, "POST", "/api/v1/projects", body,
                      header_lines({cookie(ada.token), "Referer: http://127.0.0.1/p/1?x=2"}));
  EXPECT_EQ(referer.status, 201) << referer.body;
  EXPECT_EQ(projects(), 2u);

  // Safe methods need no Origin: reading cannot change anything.
  EXPECT_EQ(call(port, "GET", "/api/v1/projects", "",
                 header_lines({cookie(ada.token), "Origin: http://evil.example"}))
                .status,
            200);
  // Bearer tokens are never attached by a browser on its own, so no Origin check applies.
  auto scripted = call(port, "POST", "/api/v1/projects", body,
                       header_lines({bearer(ada.token), "Origin: http://evil.example"}));
  EXPECT_EQ(scripted.status, 201) << scripted.body;
  EXPECT_EQ(call(port, "POST", "/api/v1/projects", body, bearer(ada.token)).status, 201);
}

TEST_F(AccountsSecurityTest, UnknownBodyFieldsAre400AndWriteNothing) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");

  auto owner =
      call(port, "POST", "/api/v1/projects", R"({"name":"Room","owner_id":5})", bearer(ada.token));
  EXPECT_EQ(owner.status, 400) << owner.body;
  EXPECT_EQ(owner.error_field(), "owner_id");
  auto list = call(port, "GET", "/api/v1/projects", "", bearer(ada.token));
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(list.json["projects"].empty()) << list.body;

  // Registration cannot make an admin (ada is the first account, so mallory would not be one).
  auto sneaky = call(port, "POST", "/api/v1/auth/register",
                     R"({"username":"mallory","password":"correct horse 1","is_admin":true})");
  EXPECT_EQ(sneaky.status, 400) << sneaky.body;
  EXPECT_EQ(sneaky.error_field(), "is_admin");
  EXPECT_EQ(try_login(port, "mallory", "correct horse 1").status, 401);  // not created

  int64_t project = create_project(port, ada.token);
  auto role = call(port, "PATCH", project_path(project), R"({"name":"New","role":"owner"})",
                   bearer(ada.token));
  EXPECT_EQ(role.status, 400) << role.body;
  EXPECT_EQ(role.error_field(), "role");
  auto after = call(port, "GET", project_path(project), "", bearer(ada.token));
  EXPECT_EQ(after.json["name"], "Room");  // the known field was not applied either
}

TEST_F(AccountsSecurityTest, MalformedBodiesAre400) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  for (const std::string& body :
       {std::string(R"({"name":)"), std::string(R"({"name":"a"} x)"), std::string("[1,2]"),
        std::string("{'name':'a'}"), std::string("\xff\xfe")}) {
    auto r = call(port, "POST", "/api/v1/projects", body, bearer(ada.token));
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_EQ(r.error_field(), "body") << body;
    EXPECT_EQ(r.error_code(), "invalid_argument");
  }
  // A repeated key is refused too (parsers disagree on which copy wins), naming the key.
  auto twice =
      call(port, "POST", "/api/v1/projects", R"({"name":"a","name":"b"})", bearer(ada.token));
  EXPECT_EQ(twice.status, 400) << twice.body;
  EXPECT_EQ(twice.error_field(), "name");
  auto empty = call(port, "POST", "/api/v1/projects", "", bearer(ada.token));
  EXPECT_EQ(empty.status, 400) << empty.body;
  auto wrong_type = call(port, "POST", "/api/v1/projects", R"({"name":"a"})",
                         header_lines({bearer(ada.token), "Content-Type: text/plain"}));
  EXPECT_EQ(wrong_type.status, 415) << wrong_type.body;
  EXPECT_EQ(call(port, "POST", "/api/v1/auth/login", "not json").status, 400);
  EXPECT_TRUE(
      call(port, "GET", "/api/v1/projects", "", bearer(ada.token)).json["projects"].empty());
}

TEST_F(AccountsSecurityTest, OversizedBodiesAre413) {
  uint16_t port = start(/*max_body_bytes=*/256);
  Account ada = register_account(port, "ada");
  nlohmann::json big = {{"name", "Room"}, {"description", std::string(1000, 'x')}};
  auto r = call(port, "POST", "/api/v1/projects", big.dump(), bearer(ada.token));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_FALSE(r.error_code().empty()) << "413 must be a JSON error too: " << r.body;
  nlohmann::json login_big = {{"username", "ada"}, {"password", std::string(1000, 'p')}};
  EXPECT_EQ(call(port, "POST", "/api/v1/auth/login", login_big.dump()).status, 413);
  EXPECT_TRUE(
      call(port, "GET", "/api/v1/projects", "", bearer(ada.token)).json["projects"].empty());
  // Under the limit everything works as usual.
  EXPECT_EQ(call(port, "POST", "/api/v1/projects", R"({"name":"Room"})", bearer(ada.token)).status,
            201);
}

}  // namespace
}  // namespace atelier::apitest
