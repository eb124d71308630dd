// Revocation reaches live connections at once (issue 19, finding 3): a silent WebSocket
// subscribed to a room and an SSE stream of a running job, opened with a credential, receive
// nothing generated after that credential is revoked (its token deleted, its session logged
// out, its user disabled, its password changed from another session or reset with
// `atelier admin reset-password`), and are closed within a second. Also the password change
// route itself.
#include <gtest/gtest.h>

#include "server/app/admin_command.h"
#include "tests/integration/job_test_helpers.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_client.h"

namespace atelier::apitest {
namespace {

using nlohmann::json;
using testing::WsClient;
using namespace std::chrono_literals;

const std::string kNewPassword = "a different horse, a different staple";

enum class Revocation { kTokenDeleted, kLoggedOut, kUserDisabled, kPasswordChanged, kAdminReset };

std::string name_of(Revocation r) {
  switch (r) {
    case Revocation::kTokenDeleted:
      return "TokenDeleted";
    case Revocation::kLoggedOut:
      return "LoggedOut";
    case Revocation::kUserDisabled:
      return "UserDisabled";
    case Revocation::kPasswordChanged:
      return "PasswordChanged";
    case Revocation::kAdminReset:
      return "AdminReset";
  }
  return "?";
}

std::chrono::milliseconds left_until(std::chrono::steady_clock::time_point deadline) {
  return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                           deadline - std::chrono::steady_clock::now()));
}

class RevocationServerTest : public ProjectServerTest {
 protected:
  void SetUp() override {
    config_ = test_config(dir_);
    config_.enable_null_model = true;
    config_.null_step_ms = 50;  // a 100-step job runs for 5 s
    start(config_);
  }

  // Connected, greeted and subscribed to the project with `secret`.
  std::unique_ptr<WsClient> join(const std::string& secret) {
    auto c = WsClient::connect(port_, "/api/v1/ws", {{bearer(secret)}});
    if (!c) throw std::runtime_error("cannot connect");
    c->send_json({{"type", "hello"}, {"proto", 1}});
    if (!c->wait_type("welcome")) throw std::runtime_error("no welcome");
    c->send_json({{"type", "subscribe"}, {"project", project_}, {"after_seq", 0}});
    if (!c->wait_type("subscribed")) throw std::runtime_error("not subscribed");
    return c;
  }

  int64_t head_seq() {
    auto r =
        call(port_, "GET", project_path(project_, "/events?limit=1"), "", bearer(owner_.token));
    return expect_status(r, 200, "project events").json["head_seq"].get<int64_t>();
  }

  Reply change_password(const std::string& secret, const std::string& current,
                        const std::string& next) {
    json body = {{"current_password", current}, {"new_password", next}};
    return call(port_, "POST", "/api/v1/auth/password", body.dump(), bearer(secret));
  }

  ServerConfig config_;
};

class RevocationTest : public RevocationServerTest,
                       public ::testing::WithParamInterface<Revocation> {
 protected:
  // The viewer's credential that the live connections use.
  std::string open_credential() {
    if (GetParam() == Revocation::kTokenDeleted) {
      token_ = create_api_token(port_, viewer_.token, "read", "watcher");
      return token_.secret;
    }
    return login(port_, viewer_.username).token;
  }

  void revoke(const std::string& secret) {
    switch (GetParam()) {
      case Revocation::kTokenDeleted:
        expect_status(call(port_, "DELETE", "/api/v1/tokens/" + std::to_string(token_.id), "",
                           bearer(viewer_.token)),
                      204, "delete token");
        break;
      case Revocation::kLoggedOut:
        expect_status(call(port_, "POST", "/api/v1/auth/logout", "", bearer(secret)), 204,
                      "logout");
        break;
      case Revocation::kUserDisabled:
        expect_status(call(port_, "PATCH", "/api/v1/admin/users/" + std::to_string(viewer_.id),
                           R"({"disabled":true})", bearer(owner_.token)),
                      200, "disable");
        break;
      case Revocation::kPasswordChanged:
        // From the viewer's first session, which stays signed in.
        expect_status(change_password(viewer_.token, kPassword, kNewPassword), 204,
                      "change password");
        break;
      case Revocation::kAdminReset:
        // What `atelier admin reset-password` runs: its own store on the same database, so
        // the server learns of it only from the database.
        ASSERT_EQ(app::admin_reset_password(config_, viewer_.username, kNewPassword), 0);
        break;
    }
  }

  ApiToken token_;
};

TEST_P(RevocationTest, SilentWebSocketAndSseStreamGetNothingMoreAndCloseWithinASecond) {
  const std::string secret = open_credential();
  // The owner's long job: the stream's subject, and progress for everyone in the room.
  const int64_t job = submit_ok(port_, owner_.token, project_,
                                {{"model", "null"}, {"prompt", "long"}, {"steps", 100}});
  wait_state(port_, owner_.token, job, "running");

  auto ws = join(secret);
  // The session that changes the password keeps its own connection.
  auto keeper = join(viewer_.token);
  testing::Connection sse(port_);
  ASSERT_TRUE(sse.send(
      testing::make_request("GET", job_path(job, "/events"), "", header_lines({bearer(secret)}))));
  auto head = sse.read_response(5s, /*head=*/true);
  ASSERT_TRUE(head);
  ASSERT_EQ(head->status, 200);
  testing::StreamedBody body;
  ASSERT_TRUE(sse.read_stream_until(body, "\"state\":\"running\""));
  auto progress_of = [&](const json& m) {
    return m.value("type", "") == "progress" && m["job"] == job;
  };
  ASSERT_TRUE(ws->wait_json(progress_of, 5s)) << "the room's progress reaches the WebSocket";

  revoke(secret);
  const auto revoked = std::chrono::steady_clock::now();
  const auto deadline = revoked + 1s;
  // What had happened by then; anything later must not reach the revoked connections.
  const int64_t step_then = get_job(port_, owner_.token, job)["progress"]["step"].get<int64_t>();
  const int64_t seq_then = head_seq();
  // More events for the room: a job queued behind the long one.
  submit_ok(port_, owner_.token, project_, {{"model", "null"}, {"prompt", "later"}});

  EXPECT_EQ(ws->wait_closed(left_until(deadline)), std::optional<uint16_t>(1008))
      << "the WebSocket is closed within a second, with 1008";
  EXPECT_TRUE(sse.read_stream_to_end(body, left_until(deadline)))
      << "the SSE stream ends within a second";

  // Another process's revocation is seen by the periodic check, within the second; in-process
  // ones before their request is answered, so nothing after them goes out.
  const bool strict = GetParam() != Revocation::kAdminReset;
  for (const auto& m : ws->messages()) {
    if (m.binary || !strict) continue;  // previews: sent with the progress checked here
    const std::string type = m.json.value("type", "");
    if (type == "event") {
      EXPECT_LE(m.json["event"]["seq"].get<int64_t>(), seq_then) << m.data;
    } else if (type == "progress") {
      EXPECT_LE(m.json["step"].get<int64_t>(), step_then) << m.data;
    }
  }
  const auto events = parse_sse(body.data);
  ASSERT_FALSE(events.empty());
  for (const auto& e : events) {
    EXPECT_EQ(e.name, "progress") << "the stream was cut, not finished";
    if (strict) {
      EXPECT_LE(e.data["progress"]["step"].get<int64_t>(), step_then);
    }
  }

  if (GetParam() == Revocation::kPasswordChanged) {
    // The session that made the change stays, and so does its connection.
    EXPECT_TRUE(keeper->wait_json(
        [&](const json& m) {
          return m.value("type", "") == "event" && m["event"]["seq"].get<int64_t>() > seq_then;
        },
        5s));
    EXPECT_FALSE(keeper->closed());
  } else if (GetParam() != Revocation::kTokenDeleted && GetParam() != Revocation::kLoggedOut) {
    // Disabling and resetting end every credential of the user.
    EXPECT_EQ(keeper->wait_closed(left_until(revoked + 1s) + 100ms), std::optional<uint16_t>(1008));
  } else {
    EXPECT_FALSE(keeper->closed()) << "only the revoked credential's connections close";
  }
  // REST agrees.
  EXPECT_EQ(call(port_, "GET", "/api/v1/me", "", bearer(secret)).status, 401);
}

INSTANTIATE_TEST_SUITE_P(Revocations, RevocationTest,
                         ::testing::Values(Revocation::kTokenDeleted, Revocation::kLoggedOut,
                                           Revocation::kUserDisabled, Revocation::kPasswordChanged,
                                           Revocation::kAdminReset),
                         [](const ::testing::TestParamInfo<Revocation>& info) {
                           return name_of(info.param);
                         });

TEST_F(RevocationServerTest, AStreamOpenedWithARevokedCredentialIsRefused) {
  ApiToken t = create_api_token(port_, viewer_.token, "read");
  const int64_t job =
      submit_ok(port_, owner_.token, project_, {{"model", "null"}, {"prompt", "x"}, {"steps", 1}});
  ASSERT_EQ(
      call(port_, "DELETE", "/api/v1/tokens/" + std::to_string(t.id), "", bearer(viewer_.token))
          .status,
      204);
  EXPECT_EQ(call(port_, "GET", job_path(job, "/events"), "", bearer(t.secret)).status, 401);
  WsClient::Refused refused;
  EXPECT_EQ(WsClient::connect(port_, "/api/v1/ws", {{bearer(t.secret)}}, &refused), nullptr);
  EXPECT_EQ(refused.status, 401);
}

TEST_F(RevocationServerTest, PasswordChangeChecksTheCurrentPasswordAndEndsTheOtherSessions) {
  const Account other = login(port_, viewer_.username);
  const ApiToken token = create_api_token(port_, viewer_.token, "submit");

  auto wrong = change_password(viewer_.token, "not the password", kNewPassword);
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  EXPECT_EQ(wrong.error_field(), "current_password");
  auto weak = change_password(viewer_.token, kPassword, "short");
  EXPECT_EQ(weak.status, 400) << weak.body;
  EXPECT_EQ(weak.error_field(), "new_password");
  auto missing = call(port_, "POST", "/api/v1/auth/password", R"({"new_password":"x"})",
                      bearer(viewer_.token));
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.error_field(), "current_password");
  EXPECT_EQ(change_password(token.secret, kPassword, kNewPassword).status, 403)
      << "a token below admin scope manages no account";
  EXPECT_EQ(call(port_, "POST", "/api/v1/auth/password",
                 json{{"current_password", kPassword}, {"new_password", kNewPassword}}.dump())
                .status,
            401);
  // Nothing changed so far.
  EXPECT_EQ(try_login(port_, viewer_.username, kPassword).status, 200);

  ASSERT_EQ(change_password(viewer_.token, kPassword, kNewPassword).status, 204);
  EXPECT_EQ(try_login(port_, viewer_.username, kPassword).status, 401);
  EXPECT_EQ(try_login(port_, viewer_.username, kNewPassword).status, 200);
  EXPECT_EQ(call(port_, "GET", "/api/v1/me", "", bearer(viewer_.token)).status, 200)
      << "the session that changed it stays";
  EXPECT_EQ(call(port_, "GET", "/api/v1/me", "", bearer(other.token)).status, 401);
  EXPECT_EQ(call(port_, "GET", "/api/v1/me", "", bearer(token.secret)).status, 401);
  // Other users are untouched.
  EXPECT_EQ(call(port_, "GET", "/api/v1/me", "", bearer(editor_.token)).status, 200);
}

}  // namespace
}  // namespace atelier::apitest
