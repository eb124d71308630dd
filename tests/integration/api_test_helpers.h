// Shared by the accounts and permission-matrix suites: an in-process server on an ephemeral port
// and a few REST calls (register, log in, create projects, invites and tokens) over real sockets.
//
// Set-up helpers throw std::runtime_error on an unexpected answer instead of returning a status:
// GoogleTest reports the exception with the test's name, and the test body stays about the
// behaviour under test rather than plumbing.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "common/config.h"
#include "server/app/app.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace atelier::apitest {

// Long enough for the password policy, and distinctive enough to grep for.
inline const std::string kPassword = "correct horse battery staple";

struct Reply {
  int status = 0;
  std::string body;
  nlohmann::json json;  // discarded (is_discarded()) when the body is not JSON
  std::map<std::string, std::string> headers;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  // error.field / error.code of an error body, empty when absent.
  std::string error_field() const { return error_member("field"); }
  std::string error_code() const { return error_member("code"); }

 private:
  std::string error_member(const char* name) const {
    if (!json.is_object() || !json.contains("error") || !json["error"].contains(name)) return {};
    return json["error"][name].get<std::string>();
  }
};

// Header lines for testing::http_request, joined with CRLF.
inline std::string header_lines(std::initializer_list<std::string> lines) {
  std::string out;
  for (const auto& l : lines) {
    if (l.empty()) continue;
    if (!out.empty()) out += "\r\n";
    out += l;
  }
  return out;
}
inline std::string bearer(const std::string& token) {
  return "Authorization: Bearer " + token;
}
inline std::string cookie(const std::string& token) {
  return "Cookie: atelier_session=" + token;
}

inline Reply to_reply(const testing::RawResponse& r) {
  Reply out;
  out.status = r.status;
  out.body = r.body;
  out.headers = r.headers;
  out.json = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  return out;
}

inline Reply call(uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body = {}, const std::string& headers = {}) {
  auto r = testing::http_request(port, method, target, body, headers);
  if (!r) throw std::runtime_error("no response to " + method + " " + target);
  return to_reply(*r);
}

// One request from `source_ip` (any 127.x.y.z is local on Linux): the shared client always
// connects from 127.0.0.1, so per-address limits cannot be told from others without this.
// nullopt when this machine cannot connect from that address (or nothing answered).
inline std::optional<Reply> call_from(const std::string& source_ip, uint16_t port,
                                      const std::string& method, const std::string& target,
                                      const std::string& body = {},
                                      const std::string& headers = {}) {
  auto r = testing::http_request_from(source_ip, port, method, target, body, headers);
  if (!r) return std::nullopt;
  return to_reply(*r);
}

inline Reply expect_status(Reply r, int status, const std::string& what) {
  if (r.status != status) {
    throw std::runtime_error(what + ": expected " + std::to_string(status) + ", got " +
                             std::to_string(r.status) + " " + r.body);
  }
  return r;
}

struct Account {
  int64_t id = 0;
  std::string username;
  std::string token;  // the session secret (usable as a cookie or as a Bearer token)
  bool is_admin = false;
};

inline Account account_from(const Reply& r) {
  return Account{r.json["user"]["id"].get<int64_t>(), r.json["user"]["username"].get<std::string>(),
                 r.json["token"].get<std::string>(), r.json["user"]["is_admin"].get<bool>()};
}

inline Reply try_register(uint16_t port, const std::string& username,
                          const std::string& password = kPassword,
                          const std::optional<std::string>& invite = std::nullopt) {
  nlohmann::json body = {{"username", username}, {"password", password}};
  if (invite) body["invite"] = *invite;
  return call(port, "POST", "/api/v1/auth/register", body.dump());
}

inline Account register_account(uint16_t port, const std::string& username,
                                const std::string& password = kPassword,
                                const std::optional<std::string>& invite = std::nullopt) {
  return account_from(
      expect_status(try_register(port, username, password, invite), 201, "register " + username));
}

inline Reply try_login(uint16_t port, const std::string& username,
                       const std::string& password = kPassword, const std::string& headers = {}) {
  nlohmann::json body = {{"username", username}, {"password", password}};
  return call(port, "POST", "/api/v1/auth/login", body.dump(), headers);
}

inline Account login(uint16_t port, const std::string& username,
                     const std::string& password = kPassword) {
  return account_from(expect_status(try_login(port, username, password), 200, "login " + username));
}

inline int64_t create_project(uint16_t port, const std::string& token,
                              const std::string& name = "Room") {
  nlohmann::json body = {{"name", name}};
  auto r = expect_status(call(port, "POST", "/api/v1/projects", body.dump(), bearer(token)), 201,
                         "create project");
  return r.json["id"].get<int64_t>();
}

inline std::string project_path(int64_t project_id, const std::string& rest = {}) {
  return "/api/v1/projects/" + std::to_string(project_id) + rest;
}

inline std::string member_path(int64_t project_id, int64_t user_id) {
  return project_path(project_id, "/members/" + std::to_string(user_id));
}

// The invite code. `extra` adds fields (max_uses, expires_in_s) to the request body.
inline std::string create_invite(uint16_t port, const std::string& token, int64_t project_id,
                                 const std::string& role,
                                 nlohmann::json extra = nlohmann::json::object()) {
  extra["role"] = role;
  auto r = expect_status(
      call(port, "POST", project_path(project_id, "/invites"), extra.dump(), bearer(token)), 201,
      "create invite");
  return r.json["code"].get<std::string>();
}

inline Reply accept_invite_call(uint16_t port, const std::string& token, const std::string& code) {
  return call(port, "POST", "/api/v1/invites/" + code + "/accept", "", bearer(token));
}

inline void set_member(uint16_t port, const std::string& token, int64_t project_id, int64_t user_id,
                       const std::string& role) {
  nlohmann::json body = {{"role", role}};
  expect_status(call(port, "PUT", member_path(project_id, user_id), body.dump(), bearer(token)),
                200, "set member role");
}

struct ApiToken {
  int64_t id = 0;
  std::string secret;
};

inline ApiToken create_api_token(uint16_t port, const std::string& session_token,
                                 const std::string& scope, const std::string& name = "script") {
  nlohmann::json body = {{"name", name}, {"scope", scope}};
  auto r = expect_status(call(port, "POST", "/api/v1/tokens", body.dump(), bearer(session_token)),
                         201, "create " + scope + " token");
  return ApiToken{r.json["id"].get<int64_t>(), r.json["token"].get<std::string>()};
}

// The usual people around one project: its owner, an editor, a viewer, and a stranger who is a
// member of nothing.
struct ProjectCast {
  Account owner, editor, viewer, stranger;
  int64_t project = 0;
};

inline ProjectCast make_project_cast(uint16_t port) {
  ProjectCast c;
  c.owner = register_account(port, "owner");
  c.project = create_project(port, c.owner.token);
  c.editor = register_account(port, "editor");
  set_member(port, c.owner.token, c.project, c.editor.id, "editor");
  c.viewer = register_account(port, "viewer");
  set_member(port, c.owner.token, c.project, c.viewer.id, "viewer");
  c.stranger = register_account(port, "stranger");
  return c;
}

// A quiet configuration for an in-process server in `dir` on a free port.
inline ServerConfig test_config(const testing::TempDir& dir) {
  ServerConfig c;
  c.port = 0;
  c.data_dir = dir / "data";
  c.web_root = dir / "no-web";
  c.models_dir = dir / "no-models";  // not the developer's ./models
  c.log_level = log::Level::kWarn;
  c.shutdown_timeout_ms = 2000;
  // Suites register many accounts from 127.0.0.1; the registration throttle has its own tests.
  c.registrations_per_ip_per_hour = 1'000'000;
  c.registrations_per_hour = 1'000'000;
  return c;
}

// One in-process App; shut down on destruction.
class TestServer {
 public:
  explicit TestServer(ServerConfig config, app::AppHooks hooks = {}) {
    // App leaves process-wide logging to main(); without this every request is logged at info.
    log::init(config.log_format, config.log_level);
    app_ = std::make_unique<app::App>(std::move(config), std::move(hooks));
    Status st = app_->start();
    if (!st.is_ok()) throw std::runtime_error("App::start failed: " + st.to_string());
  }
  ~TestServer() { app_->shutdown(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  uint16_t port() const { return app_->port(); }
  // Graceful shutdown (flushes the database); idempotent.
  void stop() { app_->shutdown(); }

 private:
  std::unique_ptr<app::App> app_;
};

// A fixture with an in-process server and a ProjectCast on it (start() makes both).
class ProjectServerTest : public ::testing::Test {
 protected:
  void start(const ServerConfig& config) {
    server_.reset();  // a restart gets a fresh server with its own data dir
    server_ = std::make_unique<TestServer>(config);
    port_ = server_->port();
    cast_ = make_project_cast(port_);
  }

  testing::TempDir dir_;
  std::unique_ptr<TestServer> server_;
  uint16_t port_ = 0;
  ProjectCast cast_;
  const Account &owner_ = cast_.owner, &editor_ = cast_.editor, &viewer_ = cast_.viewer,
                &stranger_ = cast_.stranger;
  const int64_t& project_ = cast_.project;
};

}  // namespace atelier::apitest
