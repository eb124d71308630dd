// The HTTP server over real sockets: keep-alive, limits, timeouts, malformed input, shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/http/server.h"
#include "tests/support/http_client.h"

namespace atelier::http {
namespace {

using namespace std::chrono_literals;
using testing::Connection;
using testing::http_request;
using testing::make_request;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_
                    .add(Method::kGet, "/hello",
                         [](const ExchangePtr& ex) { ex->respond(Response::text(200, "hello")); })
                    .is_ok());
    ASSERT_TRUE(router_
                    .add(Method::kPost, "/echo",
                         [](const ExchangePtr& ex) {
                           ex->respond(Response::text(200, ex->request().body));
                         })
                    .is_ok());
    // Answers when the test releases it, from another thread: an async, slow handler.
    ASSERT_TRUE(router_
                    .add(Method::kGet, "/slow",
                         [this](const ExchangePtr& ex) {
                           slow_started_.store(true);
                           std::lock_guard lock(workers_mu_);
                           workers_.emplace_back([this, ex] {
                             released_future_.wait();
                             ex->respond(Response::text(200, "finally"));
                           });
                         })
                    .is_ok());
  }

  void start(HttpServerOptions opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<HttpServer>(opts, router_, &registry_);
    auto port = server_->start();
    ASSERT_TRUE(port.is_ok()) << port.status().to_string();
    port_ = *port;
  }

  void TearDown() override {
    if (!released_) release_.set_value();
    {
      std::lock_guard lock(workers_mu_);
      for (auto& w : workers_) w.join();
    }
    if (server_) server_->shutdown(2s);
  }

  void release() {
    released_ = true;
    release_.set_value();
  }

  Router router_;
  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::atomic<bool> slow_started_{false};
  std::promise<void> release_;
  std::shared_future<void> released_future_ = release_.get_future().share();
  bool released_ = false;
  std::mutex workers_mu_;
  std::vector<std::thread> workers_;
};

TEST_F(HttpServerTest, ServesRoutesWithJsonErrors) {
  start();
  auto ok = http_request(port_, "GET", "/hello");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "hello");
  EXPECT_EQ(ok->header("server"), "atelier");
  EXPECT_FALSE(ok->header("date").empty());

  auto nf = http_request(port_, "GET", "/nope");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(nf->header("content-type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(nf->body)["error"]["code"], "not_found");

  auto na = http_request(port_, "DELETE", "/hello");
  ASSERT_TRUE(na);
  EXPECT_EQ(na->status, 405);
  EXPECT_EQ(na->header("allow"), "GET, HEAD, OPTIONS");
  EXPECT_TRUE(nlohmann::json::parse(na->body).contains("error"));
}

TEST_F(HttpServerTest, HeadKeepsLengthWithoutBody) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send(make_request("HEAD", "/hello")));
  auto r = c.read_response(5s, /*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("content-length"), "5");
  // If a body had been sent, it would be read as the start of the next response.
  ASSERT_TRUE(c.send(make_request("GET", "/hello")));
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "hello");
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  Connection c(port_);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.send(make_request("POST", "/echo", "n=" + std::to_string(i))));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "n=" + std::to_string(i));
  }
  EXPECT_EQ(server_->open_connections(), 1u);
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredInOrder) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send(make_request("POST", "/echo", "one") + make_request("POST", "/echo", "two") +
                     make_request("GET", "/hello")));
  EXPECT_EQ(c.read_response()->body, "one");
  EXPECT_EQ(c.read_response()->body, "two");
  EXPECT_EQ(c.read_response()->body, "hello");
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send(make_request("GET", "/hello", "", "Connection: close")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_within(2s));
}

TEST_F(HttpServerTest, BodyOverLimitIs413BeforeRoutingAndCloses) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  // Declared too large: refused from the header alone, even on a path with no route.
  for (const char* path : {"/echo", "/no/such/route", "/hello"}) {
    Connection c(port_);
    ASSERT_TRUE(c.send("POST " + std::string(path) +
                       " HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                       std::string(5000, 'a')));
    auto r = c.read_response();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 413) << path;
    EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "body_too_large");
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_within(3s));
  }
  // Chunked bodies have no declared length: refused once they cross the limit.
  Connection c(port_);
  std::string chunk(800, 'b');
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  c.send("320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  // A body at the limit is fine.
  auto at_limit = http_request(port_, "POST", "/echo", std::string(1024, 'c'));
  ASSERT_TRUE(at_limit);
  EXPECT_EQ(at_limit->status, 200);
  EXPECT_EQ(at_limit->body.size(), 1024u);
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponse) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send("data"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "data");
}

TEST_F(HttpServerTest, HugeHeadersAre431) {
  HttpServerOptions o;
  o.max_header_bytes = 2048;
  start(o);
  auto r = http_request(port_, "GET", "/hello", "", "X-Big: " + std::string(4000, 'x'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "headers_too_large");
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.closed_within(3s));
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionsAreClosed) {
  HttpServerOptions o;
  o.idle_timeout = 300ms;
  start(o);
  Connection c(port_);
  ASSERT_TRUE(c.send(make_request("GET", "/hello")));
  ASSERT_TRUE(c.read_response());
  EXPECT_TRUE(c.closed_within(3s));
  // A connection that never sends anything is closed too.
  Connection silent(port_);
  EXPECT_TRUE(silent.closed_within(3s));
}

TEST_F(HttpServerTest, SlowlorisHeaderIsCutOff) {
  HttpServerOptions o;
  o.header_timeout = 400ms;
  o.idle_timeout = 10s;
  start(o);
  Connection c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\n"));
  auto start_time = std::chrono::steady_clock::now();
  bool closed = false;
  // Keep trickling header bytes; the server must close once the header deadline passes.
  for (int i = 0; i < 40 && !closed; ++i) {
    c.send("X-Drip: 1\r\n");
    closed = c.closed_within(100ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, 3s);
}

TEST_F(HttpServerTest, SlowBodyReadTimesOut) {
  HttpServerOptions o;
  o.read_timeout = 300ms;
  start(o);
  Connection c(port_);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
  EXPECT_TRUE(c.closed_within(3s));
}

TEST_F(HttpServerTest, OpenConnectionsGaugeTracksSessions) {
  start();
  {
    Connection a(port_), b(port_);
    a.send(make_request("GET", "/hello"));
    b.send(make_request("GET", "/hello"));
    a.read_response();
    b.read_response();
    EXPECT_NE(registry_.render().find("atelier_http_open_connections 2"), std::string::npos);
  }
  for (int i = 0; i < 100 && server_->open_connections() != 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_NE(registry_.render().find("atelier_http_open_connections 0"), std::string::npos);
}

TEST_F(HttpServerTest, GracefulShutdownFinishesInFlightAndClosesIdle) {
  start();
  Connection idle(port_);
  ASSERT_TRUE(idle.send(make_request("GET", "/hello")));
  ASSERT_TRUE(idle.read_response());

  Connection busy(port_);
  ASSERT_TRUE(busy.send(make_request("GET", "/slow")));
  for (int i = 0; i < 200 && !slow_started_; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(slow_started_);

  auto done = std::async(std::launch::async, [this] { server_->shutdown(5s); });
  EXPECT_TRUE(idle.closed_within(2s));  // idle keep-alive: closed at once
  // New connections are refused once the listener is closed.
  std::this_thread::sleep_for(100ms);
  EXPECT_THROW(Connection late(port_), std::runtime_error);
  EXPECT_EQ(done.wait_for(200ms), std::future_status::timeout);  // waits for the slow request

  release();
  auto r = busy.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "finally");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_EQ(done.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(HttpServerTest, ShutdownDeadlineClosesStuckRequests) {
  start();
  Connection busy(port_);
  ASSERT_TRUE(busy.send(make_request("GET", "/slow")));
  for (int i = 0; i < 200 && !slow_started_; ++i) std::this_thread::sleep_for(5ms);
  auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(300ms);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(busy.closed_within(1s));
}

TEST_F(HttpServerTest, BindFailureIsReported) {
  start();
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  HttpServer second(o, router_, nullptr);
  auto r = second.start();
  // SO_REUSEADDR does not allow two listeners on one port.
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("cannot listen"), std::string::npos);
}

}  // namespace
}  // namespace atelier::http
