// Behind reverse proxies and over https, against a real in-process server: X-Forwarded-For and
// X-Forwarded-Proto are believed only from trusted_proxies (per-address login limits key on the
// real client), the session cookie is `__Host-…; Secure` over https, the Origin check compares
// the scheme too, HTML pages carry the security headers, and ids have one spelling.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/api_test_helpers.h"
#include "tests/support/ws_client.h"

namespace atelier::apitest {
namespace {

using testing::TempDir;

const std::string kHttpsUrl = "https://art.example.com";

std::string credentials(const std::string& username, const std::string& password = kPassword) {
  return nlohmann::json{{"username", username}, {"password", password}}.dump();
}

std::string secure_cookie(const std::string& token) {
  return "Cookie: __Host-atelier_session=" + token;
}

// The Set-Cookie of a session answer is the https form: __Host- prefixed, Secure, Path=/ and no
// Domain (the prefix requires all three; browsers drop it otherwise).
void expect_https_cookie(const Reply& r) {
  std::string c = r.header("set-cookie");
  EXPECT_EQ(c.rfind("__Host-atelier_session=", 0), 0u) << c;
  EXPECT_NE(c.find("; Secure"), std::string::npos) << c;
  EXPECT_NE(c.find("; Path=/;"), std::string::npos) << c;
  EXPECT_EQ(c.find("Domain"), std::string::npos) << c;
  EXPECT_NE(c.find("HttpOnly"), std::string::npos) << c;
  EXPECT_NE(c.find("SameSite=Strict"), std::string::npos) << c;
}

void expect_http_cookie(const Reply& r) {
  std::string c = r.header("set-cookie");
  EXPECT_EQ(c.rfind("atelier_session=", 0), 0u) << c;
  EXPECT_EQ(c.find("Secure"), std::string::npos) << c;
}

class ProxySecurityTest : public ::testing::Test {
 protected:
  uint16_t start(std::vector<std::string> trusted_proxies = {}, std::string public_url = {}) {
    server_.reset();  // a restart gets a fresh server with its own data dir
    ServerConfig c = test_config(dir_);
    c.data_dir = dir_ / ("data" + std::to_string(++starts_));
    c.trusted_proxies = std::move(trusted_proxies);
    c.public_url = std::move(public_url);
    if (!web_root_.empty()) c.web_root = web_root_;
    server_ = std::make_unique<TestServer>(c);
    return server_->port();
  }

  // Skips the test when this machine cannot connect from `ip` (a 127/8 alias).
  bool can_use(const std::string& ip, uint16_t port) {
    return call_from(ip, port, "GET", "/healthz", "", "").has_value();
  }

  TempDir dir_;
  int starts_ = 0;
  std::filesystem::path web_root_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(ProxySecurityTest, HttpsPublicUrlGivesASecureHostCookie) {
  uint16_t port = start({}, kHttpsUrl);
  Reply reg = call(port, "POST", "/api/v1/auth/register", credentials("ada"));
  ASSERT_EQ(reg.status, 201) << reg.body;
  expect_https_cookie(reg);
  Reply in = try_login(port, "ada");
  ASSERT_EQ(in.status, 200) << in.body;
  expect_https_cookie(in);
  const std::string token = in.json["token"];

  // Over https only the __Host- name is read: a plain cookie (which anyone able to write
  // cookies for the domain over http could plant) is not a session here.
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", secure_cookie(token)).status, 200);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", cookie(token)).status, 401);

  // Logout clears the cookie it set.
  Reply out = call(port, "POST", "/api/v1/auth/logout", "",
                   header_lines({secure_cookie(token), "Origin: " + kHttpsUrl}));
  ASSERT_EQ(out.status, 204) << out.body;
  std::string cleared = out.header("set-cookie");
  EXPECT_EQ(cleared.rfind("__Host-atelier_session=;", 0), 0u) << cleared;
  EXPECT_NE(cleared.find("Max-Age=0"), std::string::npos) << cleared;
  EXPECT_NE(cleared.find("; Secure"), std::string::npos) << cleared;
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", secure_cookie(token)).status, 401);
}

TEST_F(ProxySecurityTest, PlainHttpKeepsThePlainCookie) {
  uint16_t port = start();
  Reply reg = call(port, "POST", "/api/v1/auth/register", credentials("ada"),
                   "X-Forwarded-Proto: https");  // no proxy is trusted: ignored
  ASSERT_EQ(reg.status, 201) << reg.body;
  expect_http_cookie(reg);
  const std::string token = reg.json["token"];
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", cookie(token)).status, 200);
  EXPECT_EQ(call(port, "GET", "/api/v1/me", "", secure_cookie(token)).status, 401);
}

TEST_F(ProxySecurityTest, ATrustedProxySayingHttpsGivesASecureCookieAnUntrustedPeerDoesNot) {
  uint16_t port = start({"127.0.0.1"});
  if (!can_use("127.0.0.2", port)) GTEST_SKIP() << "cannot connect from 127.0.0.2 here";

  // Through the trusted proxy (127.0.0.1), which says the browser used https.
  Reply proxied = call(port, "POST", "/api/v1/auth/register", credentials("ada"),
                       header_lines({"X-Forwarded-Proto: https", "X-Forwarded-For: 203.0.113.7"}));
  ASSERT_EQ(proxied.status, 201) << proxied.body;
  expect_https_cookie(proxied);
  // The same proxy forwarding plain http.
  Reply plain = call(port, "POST", "/api/v1/auth/login", credentials("ada"),
                     header_lines({"X-Forwarded-Proto: http", "X-Forwarded-For: 203.0.113.7"}));
  ASSERT_EQ(plain.status, 200) << plain.body;
  expect_http_cookie(plain);

  // A peer that is not a trusted proxy cannot claim https.
  auto direct = call_from("127.0.0.2", port, "POST", "/api/v1/auth/login", credentials("ada"),
                          header_lines({"X-Forwarded-Proto: https", "X-Forwarded-For: 10.0.0.1"}));
  ASSERT_TRUE(direct.has_value());
  ASSERT_EQ(direct->status, 200) << direct->body;
  expect_http_cookie(*direct);

  // Invite links follow the scheme the browser used.
  const std::string token = proxied.json["token"];
  int64_t project = create_project(port, token);
  Reply invite = call(port, "POST", project_path(project, "/invites"), R"({"role":"viewer"})",
                      header_lines({bearer(token), "X-Forwarded-Proto: https"}));
  ASSERT_EQ(invite.status, 201) << invite.body;
  EXPECT_EQ(invite.json["url"].get<std::string>().rfind("https://127.0.0.1/invite/", 0), 0u)
      << invite.body;
}

// The scheme is part of the origin: an http page may not act with an https session, nor the
// other way round.
TEST_F(ProxySecurityTest, OriginWithTheWrongSchemeIsRefused) {
  const std::string body = R"({"name":"Room"})";
  {
    uint16_t port = start();  // plain http: the server's own origin is http://127.0.0.1
    Account ada = register_account(port, "ada");
    Reply wrong = call(port, "POST", "/api/v1/projects", body,
                       header_lines({cookie(ada.token), "Origin: https://127.0.0.1"}));
    EXPECT_EQ(wrong.status, 403) << wrong.body;
    EXPECT_EQ(wrong.error_field(), "Origin");
    EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                   header_lines({cookie(ada.token), "Referer: https://127.0.0.1/p/1"}))
                  .status,
              403);
    // The default port is implied; an explicit one must match.
    EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                   header_lines({cookie(ada.token), "Origin: http://127.0.0.1:80"}))
                  .status,
              201);
    EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                   header_lines({cookie(ada.token), "Origin: http://127.0.0.1:443"}))
                  .status,
              403);
  }
  {
    uint16_t port = start({"127.0.0.1"});  // behind a trusted TLS-terminating proxy
    Account ada = register_account(port, "ada");
    const std::string https = "X-Forwarded-Proto: https";
    Reply wrong = call(port, "POST", "/api/v1/projects", body,
                       header_lines({secure_cookie(ada.token), https, "Origin: http://127.0.0.1"}));
    EXPECT_EQ(wrong.status, 403) << wrong.body;
    Reply right =
        call(port, "POST", "/api/v1/projects", body,
             header_lines({secure_cookie(ada.token), https, "Origin: https://127.0.0.1"}));
    EXPECT_EQ(right.status, 201) << right.body;
  }
  {
    uint16_t port = start({}, kHttpsUrl);
    Account ada = register_account(port, "ada");
    EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                   header_lines({secure_cookie(ada.token), "Origin: http://art.example.com"}))
                  .status,
              403);
    EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                   header_lines({secure_cookie(ada.token), "Origin: https://art.example.com:8443"}))
                  .status,
              403);
    EXPECT_EQ(call(port, "POST", "/api/v1/projects", body,
                   header_lines({secure_cookie(ada.token), "Origin: https://ART.example.com"}))
                  .status,
              201);
  }
}

// Live-room commands behind a trusted https proxy run as the connection did: their internal
// requests carry the upgrade's https flag, so the __Host- cookie is read and the Origin matches.
TEST_F(ProxySecurityTest, LiveCommandsBehindATrustedHttpsProxyKeepTheSecureSession) {
  uint16_t port = start({"127.0.0.1"});
  Account ada = register_account(port, "ada");
  auto ws = testing::WsClient::connect(port, "/api/v1/ws",
                                       {{secure_cookie(ada.token), "X-Forwarded-Proto: https"}});
  ASSERT_NE(ws, nullptr);
  ws->send_json({{"type", "hello"}, {"proto", 1}});
  ASSERT_TRUE(ws->wait_type("welcome"));
  ws->send_json(
      {{"type", "cmd"}, {"id", "c1"}, {"op", "job.cancel"}, {"args", {{"job", 999'999}}}});
  auto ack = ws->wait_type("ack");
  ASSERT_TRUE(ack);
  // Authenticated (the job is simply unknown), not 401 with the connection closed.
  EXPECT_EQ((*ack)["error"]["code"], "not_found") << ack->dump();
  EXPECT_FALSE(ws->closed());
}

// Per-address login limiting keys on the forwarded client behind a trusted proxy, and on the
// peer itself otherwise, whatever X-Forwarded-For it sends.
TEST_F(ProxySecurityTest, LoginLimitsUseTheForwardedAddressOnlyFromTrustedProxies) {
  uint16_t port = start({"127.0.0.2"});
  if (!can_use("127.0.0.2", port) || !can_use("127.0.0.3", port)) {
    GTEST_SKIP() << "cannot connect from 127.0.0.2/127.0.0.3 here";
  }
  register_account(port, "ada");
  auto login = [&](const std::string& from, const std::string& forwarded_for,
                   const std::string& username, const std::string& password) {
    auto r = call_from(from, port, "POST", "/api/v1/auth/login", credentials(username, password),
                       "X-Forwarded-For: " + forwarded_for);
    return r ? r->status : 0;
  };
  // Five wrong passwords from one client behind the proxy, for five usernames (so that no
  // username is locked): that client is locked...
  for (const char* name : {"user1", "user2", "user3", "user4", "user5"}) {
    EXPECT_EQ(login("127.0.0.2", "203.0.113.1", name, "wrong password"), 401) << name;
  }
  EXPECT_EQ(login("127.0.0.2", "203.0.113.1", "ada", kPassword), 429);
  // ... a client spoofing it in front of the proxy's own entry is the address the proxy saw ...
  EXPECT_EQ(login("127.0.0.2", "203.0.113.1, 198.51.100.4", "ada", kPassword), 200);
  // ... and another client behind the same proxy is not.
  EXPECT_EQ(login("127.0.0.2", "203.0.113.2", "ada", kPassword), 200);

  // An untrusted peer is its own address, whatever it claims to forward.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(login("127.0.0.3", "198.51.100." + std::to_string(i), "visitor" + std::to_string(i),
                    "wrong password"),
              401);
  }
  EXPECT_EQ(login("127.0.0.3", "198.51.100.99", "ada", kPassword), 429);
}

TEST_F(ProxySecurityTest, HtmlPagesCarrySecurityHeaders) {
  auto expect_headers = [](const Reply& r, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(r.status, 200);
    std::string csp = r.header("content-security-policy");
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("script-src 'unsafe-inline'"), std::string::npos) << csp;
    EXPECT_EQ(r.header("x-frame-options"), "DENY");
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.header("referrer-policy"), "same-origin");
  };
  {
    uint16_t port = start();  // no web client build: the built-in page
    expect_headers(call(port, "GET", "/"), "no-build /");
  }
  web_root_ = dir_ / "web";
  std::filesystem::create_directories(web_root_);
  std::ofstream(web_root_ / "index.html") << "<!doctype html><title>Atelier</title>";
  uint16_t port = start();
  for (const char* path : {"/", "/index.html", "/p/42"}) {
    Reply r = call(port, "GET", path);
    expect_headers(r, path);
    std::string csp = r.header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-"), std::string::npos) << csp;
  }
}

TEST_F(ProxySecurityTest, IdsWithLeadingZerosSignsOrOverflowAre400) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  int64_t project = create_project(port, ada.token);
  ASSERT_EQ(project, 1);
  EXPECT_EQ(call(port, "GET", "/api/v1/projects/1", "", bearer(ada.token)).status, 200);
  for (const char* path : {"/api/v1/projects/01", "/api/v1/projects/001", "/api/v1/projects/%2B1",
                           "/api/v1/projects/-1", "/api/v1/projects/99999999999999999999",
                           "/api/v1/projects/01/images"}) {
    Reply r = call(port, "GET", path, "", bearer(ada.token));
    EXPECT_EQ(r.status, 400) << path << " " << r.body;
    EXPECT_EQ(r.error_code(), "invalid_parameter") << path;
  }
  Reply del = call(port, "DELETE", "/api/v1/projects/1/members/01", "", bearer(ada.token));
  EXPECT_EQ(del.status, 400) << del.body;
  EXPECT_EQ(del.error_field(), "user_id");
  Reply cursor = call(port, "GET", "/api/v1/projects/1/images?before=010", "", bearer(ada.token));
  EXPECT_EQ(cursor.status, 400) << cursor.body;
  EXPECT_EQ(cursor.error_field(), "before");
}

}  // namespace
}  // namespace atelier::apitest
