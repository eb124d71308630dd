// The `atelier` binary's account side: `atelier admin create-user|reset-password` against a data
// dir (with the server running on it), and a served instance whose logs must never contain a
// password or a session secret, whatever the request did.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "tests/integration/api_test_helpers.h"
#include "tests/support/process.h"

namespace atelier::apitest {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::parse_listening_port;
using testing::run_program;
using testing::TempDir;

const std::string kBin = ATELIER_BIN;

class AdminCliTest : public ::testing::Test {
 protected:
  // Runs `atelier admin <command> --data-dir <dir>/data <args>`; returns {exit code, output}.
  std::pair<int, std::string> admin(const std::string& command, std::vector<std::string> args) {
    std::vector<std::string> argv = {kBin, "admin", command, "--data-dir",
                                     (dir_ / "data").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_program(argv, dir_ / ("admin-" + std::to_string(++runs_) + ".txt"));
  }

  TempDir dir_;
  int runs_ = 0;
};

TEST_F(AdminCliTest, CreateUserMakesTheFirstAccountAnAdmin) {
  auto [code, out] = admin("create-user", {"--username", "Root", "--password", "first password"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("created user 'root'"), std::string::npos) << out;
  EXPECT_NE(out.find("as instance admin"), std::string::npos) << out;

  std::tie(code, out) = admin("create-user", {"--username", "ada", "--password", kPassword});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("as instance admin"), std::string::npos) << out;
  std::tie(code, out) =
      admin("create-user", {"--username", "boss", "--password", kPassword, "--admin"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("as instance admin"), std::string::npos) << out;

  // Refusals exit non-zero, say why, and never echo the password.
  std::tie(code, out) = admin("create-user", {"--username", "ADA", "--password", kPassword});
  EXPECT_NE(code, 0) << out;
  std::tie(code, out) = admin("create-user", {"--username", "x", "--password", kPassword});
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("atelier admin:"), std::string::npos) << out;
  std::tie(code, out) = admin("create-user", {"--username", "carol", "--password", "Sh0rt!"});
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(out.find("Sh0rt!"), std::string::npos) << out;
  std::tie(code, out) = admin("create-user", {"--username", "carol"});
  EXPECT_NE(code, 0) << "no password given: " << out;

  // The accounts are real: a server on the same data dir lets them log in.
  TestServer server(test_config(dir_));
  EXPECT_TRUE(login(server.port(), "root", "first password").is_admin);
  EXPECT_FALSE(login(server.port(), "ada").is_admin);
  EXPECT_TRUE(login(server.port(), "boss").is_admin);
  EXPECT_EQ(try_login(server.port(), "carol").status, 401);
}

TEST_F(AdminCliTest, ResetPasswordRevokesEverySessionAndToken) {
  TestServer server(test_config(dir_));
  uint16_t port = server.port();
  register_account(port, "root");
  Account ada = register_account(port, "ada");
  Account second = login(port, "ada");
  ApiToken token = create_api_token(port, ada.token, "submit");
  Account bystander = register_account(port, "grace");

  // While the server runs: SQLite serializes the two writers.
  const std::string fresh = "a brand new passphrase";
  auto [code, out] = admin("reset-password", {"--username", "ADA", "--password", fresh});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("reset"), std::string::npos) << out;
  EXPECT_EQ(out.find(fresh), std::string::npos) << out;

  // Every credential of the account stops working on the next request.
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(ada.token)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(second.token)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(token.secret)).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", bearer(bystander.token)).status, 200);
  EXPECT_EQ(try_login(port, "ada").status, 401);  // the old password
  EXPECT_EQ(try_login(port, "ada", fresh).status, 200);

  std::tie(code, out) = admin("reset-password", {"--username", "nobody", "--password", fresh});
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("nobody"), std::string::npos) << out;
  std::tie(code, out) = admin("reset-password", {"--username", "ada", "--password", "short"});
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(try_login(port, "ada", fresh).status, 200);  // a refused reset changes nothing
}

// Passwords and session secrets must not reach the logs, at the most verbose level, whether the
// request succeeded, failed validation, failed authentication or did not even parse.
TEST_F(AdminCliTest, PasswordsNeverAppearInLogsOrResponses) {
  const std::string secret = "Plum-Vortex-7731-secret";
  const std::string wrong = "Quartz-Nebula-2209-wrong";
  const std::string tiny = "Tiny#Q7";  // under the 8-character minimum
  for (const std::string format : {"text", "json"}) {
    SCOPED_TRACE(format);
    TempDir dir;
    ChildProcess child(
        {kBin, "serve", "--port", "0", "--data-dir", (dir / "data").string(), "--web-root",
         (dir / "no-web").string(), "--log-level", "debug", "--log-format", format},
        dir / "out.txt");
    auto started = child.wait_for_output("listening on http://", 20s);
    ASSERT_TRUE(started) << child.output();
    uint16_t port = parse_listening_port(*started);
    ASSERT_NE(port, 0);

    std::vector<Reply> replies;
    auto keep = [&](Reply r) {
      replies.push_back(r);
      return r;
    };
    Reply registered = keep(try_register(port, "ada", secret));
    ASSERT_EQ(registered.status, 201) << registered.body;
    const std::string session = registered.json["token"].get<std::string>();
    EXPECT_EQ(keep(try_login(port, "ada", secret)).status, 200);
    EXPECT_EQ(keep(try_login(port, "ada", wrong)).status, 401);
    EXPECT_EQ(keep(try_login(port, "nobody", wrong)).status, 401);
    EXPECT_EQ(keep(try_register(port, "bad name", secret)).status, 400);
    EXPECT_EQ(keep(try_register(port, "ada", secret)).status, 409);
    EXPECT_EQ(keep(try_register(port, "bob", tiny)).status, 400);
    // A body that does not parse, with the password inside it.
    EXPECT_EQ(keep(call(port, "POST", "/api/v1/auth/login",
                        R"({"username":"ada","password":")" + wrong + R"(",)"))
                  .status,
              400);
    // A password where a username goes, and a password in an unexpected field.
    EXPECT_EQ(keep(try_login(port, wrong, secret)).status, 401);
    EXPECT_EQ(
        keep(call(port, "POST", "/api/v1/auth/register",
                  R"({"username":"carol","password":")" + secret + R"(","pw":")" + wrong + R"("})"))
            .status,
        400);
    EXPECT_EQ(keep(call(port, "GET", "/api/v1/me", "", cookie(session))).status, 200);
    // Invite codes travel in a URL path; the access log must mask them.
    const std::string invite =
        create_invite(port, session, create_project(port, session), "viewer");
    Reply joiner = keep(try_register(port, "dora", secret));
    ASSERT_EQ(joiner.status, 201) << joiner.body;
    EXPECT_EQ(
        keep(accept_invite_call(port, joiner.json["token"].get<std::string>(), invite)).status,
        200);
    EXPECT_EQ(keep(call(port, "POST", "/api/v1/auth/logout", "", bearer(session))).status, 204);

    for (const auto& r : replies) {
      for (const auto& s : {secret, wrong, tiny}) {
        EXPECT_EQ(r.body.find(s), std::string::npos)
            << "response body carries a password: " << r.body;
      }
    }

    child.signal(SIGTERM);
    auto code = child.wait(10s);
    ASSERT_TRUE(code) << "did not exit after SIGTERM";
    EXPECT_EQ(*code, 0);
    std::string log = child.output();
    // The requests were logged, so the absence below means something.
    EXPECT_NE(log.find("/api/v1/auth/login"), std::string::npos) << log;
    EXPECT_NE(log.find("/api/v1/auth/register"), std::string::npos) << log;
    EXPECT_NE(log.find("/api/v1/invites/atl_i_[redacted]/accept"), std::string::npos) << log;
    for (const auto& s : {secret, wrong, tiny, session, invite}) {
      EXPECT_EQ(log.find(s), std::string::npos) << "the log carries '" << s << "':\n" << log;
    }
  }
}

}  // namespace
}  // namespace atelier::apitest
