// The whole server in-process: system routes, static files over the wire, restarts.
#include "server/app/app.h"

#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/app/routes.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace atelier::app {
namespace {

using namespace std::chrono_literals;
using testing::Connection;
using testing::http_request;
using testing::make_request;
using testing::TempDir;
using testing::write_file;

class AppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "web" / "index.html", "<!doctype html><title>Atelier</title>");
    write_file(dir_ / "web" / "assets" / "index-1a2b3c4d.js", "console.log(1)");
    write_file(dir_ / "secret.txt", "TOP-SECRET");
  }

  ServerConfig config() {
    ServerConfig c;
    c.port = 0;
    c.data_dir = dir_ / "data";
    c.web_root = dir_ / "web";
    c.log_level = log::Level::kWarn;
    c.shutdown_timeout_ms = 2000;
    return c;
  }

  uint16_t start(ServerConfig c) {
    app_ = std::make_unique<App>(c);
    auto st = app_->start();
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return app_->port();
  }

  void TearDown() override {
    if (app_) app_->shutdown();
  }

  TempDir dir_;
  std::unique_ptr<App> app_;
};

TEST_F(AppTest, SystemRoutes) {
  uint16_t port = start(config());
  auto health = http_request(port, "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(nlohmann::json::parse(health->body)["status"], "ok");
  EXPECT_FALSE(health->header("x-request-id").empty());

  auto ready = http_request(port, "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto rj = nlohmann::json::parse(ready->body);
  EXPECT_EQ(rj["status"], "ready");
  EXPECT_EQ(rj["checks"]["store"], "ok");

  auto info = http_request(port, "GET", "/api/v1/info");
  ASSERT_TRUE(info);
  auto ij = nlohmann::json::parse(info->body);
  EXPECT_EQ(ij["name"], "atelier");
  EXPECT_EQ(ij["api"], "v1");
  EXPECT_EQ(ij["instance_id"].get<std::string>().size(), 32u);

  auto metrics = http_request(port, "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics->body.find(
                "atelier_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("atelier_http_request_duration_seconds_bucket{route=\"/readyz\""),
            std::string::npos);
  EXPECT_NE(metrics->body.find("atelier_http_open_connections"), std::string::npos);
  EXPECT_NE(metrics->body.find("\natelier_store_writes_committed "), std::string::npos);
}

TEST_F(AppTest, UnknownApiPathIsJson404) {
  uint16_t port = start(config());
  auto r = http_request(port, "GET", "/api/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "not_found");
  auto post = http_request(port, "POST", "/api/v1/nothing", "{}");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  EXPECT_TRUE(nlohmann::json::parse(post->body).contains("error"));
}

TEST_F(AppTest, StaticFilesAndSpaFallback) {
  uint16_t port = start(config());
  auto index = http_request(port, "GET", "/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_NE(index->body.find("<title>Atelier</title>"), std::string::npos);
  EXPECT_EQ(index->header("cache-control"), "no-cache");
  EXPECT_EQ(index->header("content-type"), "text/html; charset=utf-8");

  auto asset = http_request(port, "GET", "/assets/index-1a2b3c4d.js");
  ASSERT_TRUE(asset);
  EXPECT_EQ(asset->status, 200);
  EXPECT_EQ(asset->body, "console.log(1)");
  EXPECT_NE(asset->header("cache-control").find("immutable"), std::string::npos);
  EXPECT_NE(asset->header("content-type").find("javascript"), std::string::npos);

  auto deep = http_request(port, "GET", "/p/42");
  ASSERT_TRUE(deep);
  EXPECT_EQ(deep->status, 200);
  EXPECT_NE(deep->body.find("<title>Atelier</title>"), std::string::npos);

  auto head = http_request(port, "HEAD", "/assets/index-1a2b3c4d.js");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->header("content-length"), "14");
}

TEST_F(AppTest, PathTraversalNeverEscapesTheWebRoot) {
  uint16_t port = start(config());
  for (const std::string& target : std::vector<std::string>{
           "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
           "/assets/../../secret.txt", "/..%2fsecret.txt", "//secret.txt", "/%2fsecret.txt",
           "/..\\secret.txt", "/%00/../secret.txt", "/index.html%00.js",
           std::string("/") + (dir_ / "secret.txt").string(),
           "/" + (dir_ / "secret.txt").string().substr(1), "http://127.0.0.1/../secret.txt"}) {
    Connection c(port);
    ASSERT_TRUE(c.send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    auto r = c.read_response();
    if (!r) continue;  // a closed connection also serves nothing
    EXPECT_EQ(r->body.find("TOP-SECRET"), std::string::npos) << target;
    EXPECT_TRUE(r->status == 400 || r->status == 404 ||
                r->body.find("<title>Atelier") != std::string::npos)
        << target << " -> " << r->status;
  }
}

TEST_F(AppTest, BodyLimitAppliesToEveryPath) {
  ServerConfig c = config();
  c.max_body_bytes = 100;
  uint16_t port = start(c);
  for (const char* path : {"/healthz", "/api/v1/info", "/", "/api/v1/nothing"}) {
    auto r = http_request(port, "POST", path, std::string(500, 'x'));
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 413) << path;
    EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "body_too_large");
  }
}

TEST_F(AppTest, RestartKeepsInstanceAndAppliesNoMigrationTwice) {
  uint16_t port = start(config());
  auto first = nlohmann::json::parse(http_request(port, "GET", "/api/v1/info")->body);
  app_->shutdown();
  app_.reset();
  port = start(config());
  auto second = nlohmann::json::parse(http_request(port, "GET", "/api/v1/info")->body);
  EXPECT_EQ(first["instance_id"], second["instance_id"]);
}

TEST_F(AppTest, BuiltInPageWithoutWebBuild) {
  ServerConfig c = config();
  c.web_root = dir_ / "missing";
  uint16_t port = start(c);
  auto r = http_request(port, "GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(r->body.find("make run"), std::string::npos);
}

TEST_F(AppTest, ReadyzTurns503WhileDrainingThenListenerCloses) {
  ServerConfig c = config();
  c.shutdown_drain_delay_ms = 600;
  uint16_t port = start(c);
  Connection conn(port);
  ASSERT_TRUE(conn.send(make_request("GET", "/readyz")));
  ASSERT_EQ(conn.read_response()->status, 200);
  std::thread stopper([this] { app_->shutdown(); });
  std::this_thread::sleep_for(150ms);
  auto during = http_request(port, "GET", "/readyz");
  ASSERT_TRUE(during);
  EXPECT_EQ(during->status, 503);
  EXPECT_EQ(nlohmann::json::parse(during->body)["status"], "shutting_down");
  auto health = http_request(port, "GET", "/healthz");  // still alive while draining
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  stopper.join();
  EXPECT_TRUE(conn.closed_within(2s));
  EXPECT_THROW(Connection again(port), std::runtime_error);
}

TEST_F(AppTest, RequestStopEndsRunUntilStopped) {
  uint16_t port = start(config());
  std::promise<int> exit_code;
  std::thread runner([&] { exit_code.set_value(app_->run_until_stopped()); });
  ASSERT_EQ(http_request(port, "GET", "/healthz")->status, 200);
  app_->request_stop();
  auto done = exit_code.get_future();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(done.get(), 0);
  runner.join();
  EXPECT_THROW(Connection again(port), std::runtime_error);  // shut down, not just returned
}

TEST(BuildRouterTest, AuthHookSeesTheRouteAndCanRefuse) {
  http::Router router;
  std::vector<std::string> seen;
  RouteServices services;
  services.auth = [&](const http::ExchangePtr& ex, const http::Next& next) {
    seen.push_back(ex->route());
    if (ex->route() == "/api/v1/info") {
      return ex->respond(http::Response::error(401, "unauthenticated", "log in first"));
    }
    next();
  };
  ASSERT_TRUE(build_router(router, services).is_ok());
  auto run = [&](const std::string& path) {
    http::Request req;
    req.method = http::Method::kGet;
    req.method_text = "GET";
    req.path = req.target = path;
    std::optional<http::Response> out;
    router.dispatch(std::make_shared<http::Exchange>(
        std::move(req), [&](http::Response r) { out = std::move(r); }));
    return out.value_or(http::Response{});
  };
  EXPECT_EQ(run("/healthz").status, 200);
  EXPECT_EQ(run("/api/v1/info").status, 401);
  EXPECT_EQ(run("/nowhere").status, 404);
  EXPECT_EQ(seen, (std::vector<std::string>{"/healthz", "/api/v1/info", "unmatched"}));
}

}  // namespace
}  // namespace atelier::app
