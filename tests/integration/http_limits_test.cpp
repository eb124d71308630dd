// The HTTP server against hostile clients (issue 19): connection caps, the body budget (HTTP
// bodies and WebSocket messages), the body rate deadline, Host on HTTP/1.1, a refused body not
// drained, and per-route body limits (issue 20). In-process servers on 127.0.0.1 over real sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/http/server.h"
#include "server/http/websocket.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_client.h"

namespace atelier::http {
namespace {

using namespace std::chrono_literals;
using testing::Connection;
using testing::http_request;
using testing::make_request;
using testing::WsClient;

// Records the size of every message it gets.
class SizeHandler : public WsHandler {
 public:
  void on_open(const std::shared_ptr<WsConnection>&) override {}
  void on_message(std::string message, bool) override {
    std::lock_guard lock(mu);
    sizes.push_back(message.size());
  }
  void on_close() override {}
  std::mutex mu;
  std::vector<size_t> sizes;
};

// Waits (polling) until `done` holds or `timeout` passes; returns whether it held.
template <class F>
bool eventually(F done, std::chrono::milliseconds timeout = 5s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class HttpLimitsTest : public ::testing::Test {
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
    // A route with a body limit of its own (uploads), above the server's 1 MiB default.
    ASSERT_TRUE(router_
                    .add(Method::kPost, "/upload",
                         [this](const ExchangePtr& ex) {
                           uploads_run_.fetch_add(1);
                           ex->respond(
                               Response::text(200, std::to_string(ex->request().body.size())));
                         },
                         {.max_body_bytes = kUploadLimit})
                    .is_ok());
    ASSERT_TRUE(router_
                    .add(Method::kGet, "/ws",
                         [this](const ExchangePtr& ex) {
                           Response r;
                           r.status = 101;
                           r.websocket = std::make_shared<WsAccept>(WsAccept{ws_handler_, {}});
                           ex->respond(std::move(r));
                         })
                    .is_ok());
  }

  void start(HttpServerOptions opts) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<HttpServer>(opts, router_, &registry_);
    auto port = server_->start();
    ASSERT_TRUE(port.is_ok()) << port.status().to_string();
    port_ = *port;
  }

  void TearDown() override {
    if (server_) server_->shutdown(2s);
  }

  // A keep-alive connection the server has admitted (it answered a request on it).
  std::unique_ptr<Connection> admitted() {
    auto c = std::make_unique<Connection>(port_);
    EXPECT_TRUE(c->send(make_request("GET", "/hello")));
    auto r = c->read_response();
    EXPECT_TRUE(r && r->status == 200);
    return c;
  }

  // A connection over a limit gets a 503 (it sent nothing, so it is not reset) and is closed.
  void expect_refused_at_accept() {
    Connection c(port_);
    auto r = c.read_response(3s);
    ASSERT_TRUE(r) << "the connection was not refused";
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "unavailable");
    EXPECT_TRUE(c.closed_within(2s));
  }

  static constexpr uint64_t kUploadLimit = uint64_t{4} << 20;
  std::atomic<int> uploads_run_{0};
  Router router_;
  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::shared_ptr<SizeHandler> ws_handler_ = std::make_shared<SizeHandler>();
};

TEST_F(HttpLimitsTest, ConnectionsPerAddressAreCapped) {
  HttpServerOptions o;
  o.max_connections_per_ip = 3;
  start(o);
  auto a = admitted();
  auto b = admitted();
  auto c = admitted();
  expect_refused_at_accept();
  EXPECT_NE(
      registry_.render().find("atelier_http_connections_refused_total{limit=\"per_address\"} 1"),
      std::string::npos)
      << registry_.render();
  // A connection that closes frees its place.
  a.reset();
  ASSERT_TRUE(eventually([&] { return server_->open_connections() == 2; }));
  auto d = admitted();
}

TEST_F(HttpLimitsTest, TrustedProxiesAreExemptFromThePerAddressCap) {
  HttpServerOptions o;
  o.max_connections_per_ip = 1;
  auto proxies = CidrSet::parse({"127.0.0.0/8"});
  ASSERT_TRUE(proxies.is_ok());
  o.trusted_proxies = *proxies;
  start(o);
  auto a = admitted();
  auto b = admitted();
  auto c = admitted();
  EXPECT_EQ(server_->open_connections(), 3u);
}

TEST_F(HttpLimitsTest, TotalConnectionsAreCappedAndWebSocketsCount) {
  HttpServerOptions o;
  o.max_connections = 2;
  start(o);
  auto ws = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(ws);
  auto a = admitted();
  expect_refused_at_accept();
  EXPECT_NE(registry_.render().find("atelier_http_connections_refused_total{limit=\"total\"} 1"),
            std::string::npos);
  ws->close();
  ASSERT_TRUE(eventually([&] { return server_->open_connections() == 1; }));
  auto b = admitted();
}

TEST_F(HttpLimitsTest, BodyOverTheBudgetIs503WithRetryAfterUntilTheBudgetFrees) {
  HttpServerOptions o;
  o.max_body_bytes = 8000;
  o.max_buffered_body_bytes = 10'000;
  start(o);
  // A holds 8000 of the 10000 bytes while its body is unfinished.
  Connection a(port_);
  ASSERT_TRUE(a.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n" +
                     std::string(100, 'a')));
  ASSERT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 8000; }));

  for (const std::string head : {"Content-Length: 5000", "Transfer-Encoding: chunked"}) {
    Connection b(port_);
    ASSERT_TRUE(b.send("POST /echo HTTP/1.1\r\nHost: x\r\n" + head + "\r\n\r\n"));
    auto r = b.read_response();
    ASSERT_TRUE(r) << head;
    EXPECT_EQ(r->status, 503) << head;
    EXPECT_EQ(r->header("retry-after"), "2");
    EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "unavailable");
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(b.closed_within(2s));
  }
  EXPECT_NE(registry_.render().find("atelier_http_body_budget_refusals_total 2"),
            std::string::npos);
  // A body that fits beside A's is served.
  auto small = http_request(port_, "POST", "/echo", std::string(1500, 's'));
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200);

  // A completes; its charge goes back, and the body refused before now fits.
  ASSERT_TRUE(a.send(std::string(7900, 'a')));
  auto ra = a.read_response();
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->body.size(), 8000u);
  ASSERT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 0; }));
  auto later = http_request(port_, "POST", "/echo", std::string(5000, 'b'));
  ASSERT_TRUE(later);
  EXPECT_EQ(later->status, 200);
  EXPECT_EQ(later->body.size(), 5000u);
  // A chunked body is charged as it grows, and served when it fits.
  Connection chunked(port_);
  ASSERT_TRUE(
      chunked.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto rc = chunked.read_response();
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->body, "hello world");
}

TEST_F(HttpLimitsTest, AClosedConnectionReleasesItsCharge) {
  HttpServerOptions o;
  o.max_buffered_body_bytes = 10'000;
  start(o);
  {
    Connection a(port_);
    ASSERT_TRUE(a.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\nabc"));
    ASSERT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 9000; }));
  }
  EXPECT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 0; }));
}

// A route's own limit replaces the server's for its bodies, in both directions: declared
// lengths are refused from the header alone (the client sends no body byte and still gets its
// 413), chunked bodies when they cross it; other routes keep the default.
TEST_F(HttpLimitsTest, RouteBodyLimitReplacesTheServerDefault) {
  start({});  // max_body_bytes: 1 MiB
  const std::string mib3(3 << 20, 'u');
  auto fits = http_request(port_, "POST", "/upload?filename=a.png", mib3);
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200);
  EXPECT_EQ(fits->body, std::to_string(mib3.size()));

  auto expect_413 = [&](const std::string& target, uint64_t length, uint64_t limit,
                        const std::string& extra) {
    SCOPED_TRACE(target + " " + std::to_string(length) + extra);
    Connection c(port_);
    ASSERT_TRUE(c.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                       std::to_string(length) + "\r\n" + extra + "\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << "no answer before the body was sent";
    EXPECT_EQ(r->status, 413);
    auto error = nlohmann::json::parse(r->body)["error"];
    EXPECT_EQ(error["code"], "body_too_large");
    EXPECT_EQ(error["field"], "body");
    EXPECT_NE(error["message"].get<std::string>().find(std::to_string(limit)), std::string::npos)
        << error["message"];
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_within(2s));
  };
  expect_413("/upload", 5 << 20, kUploadLimit, "");
  expect_413("/upload?x=1", kUploadLimit + 1, kUploadLimit, "Expect: 100-continue\r\n");
  expect_413("/echo", 2 << 20, 1 << 20, "");  // the default still holds elsewhere
  EXPECT_EQ(uploads_run_.load(), 1);
  EXPECT_EQ(server_->body_budget()->in_use(), 0u);  // nothing charged for refused bodies

  // Chunked: over the default but within the route's limit is served...
  const std::string mib(1 << 20, 'c');
  auto chunked = [&](int mib_chunks, const std::string& last) {
    std::string req = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < mib_chunks; ++i) req += "100000\r\n" + mib + "\r\n";
    if (!last.empty()) req += std::to_string(last.size()) + "\r\n" + last + "\r\n";
    return req + "0\r\n\r\n";
  };
  Connection ok(port_);
  ASSERT_TRUE(ok.send(chunked(2, "")));
  auto r_ok = ok.read_response();
  ASSERT_TRUE(r_ok);
  EXPECT_EQ(r_ok->status, 200);
  EXPECT_EQ(r_ok->body, std::to_string(2 << 20));
  // ...and refused once it crosses it (at exactly the limit, then 10 bytes more).
  Connection over(port_);
  over.send(chunked(4, "0123456789"));
  auto r_over = over.read_response();
  ASSERT_TRUE(r_over);
  EXPECT_EQ(r_over->status, 413);
  EXPECT_EQ(nlohmann::json::parse(r_over->body)["error"]["field"], "body");
  EXPECT_EQ(uploads_run_.load(), 2);
  EXPECT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 0; }));
}

TEST_F(HttpLimitsTest, WebSocketMessagesAreChargedAndClosedWith1013WhenOver) {
  HttpServerOptions o;
  o.max_buffered_body_bytes = 40 << 10;
  start(o);
  // Messages are read in pieces of up to 16 KiB: the first is free; before each further one the
  // message so far plus 16 KiB is charged. A 20 KiB message needs at most 36 KiB; 60 KiB cannot
  // fit in 40.
  auto fits = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(fits);
  fits->send_text(std::string(1000, 'x'));
  fits->send_text(std::string(20 << 10, 'y'));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(ws_handler_->mu);
    return ws_handler_->sizes.size() == 2;
  }));
  {
    std::lock_guard lock(ws_handler_->mu);
    EXPECT_EQ(ws_handler_->sizes, (std::vector<size_t>{1000, 20 << 10}));
  }
  EXPECT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 0; }));

  auto over = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(over);
  over->send_text(std::string(60 << 10, 'z'));
  auto code = over->wait_closed(5s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 1013);
  EXPECT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 0; }));
  std::lock_guard lock(ws_handler_->mu);
  EXPECT_EQ(ws_handler_->sizes.size(), 2u);  // the refused message never reached the handler
}

TEST_F(HttpLimitsTest, SlowBodyIsCutAtTheRateDeadline) {
  HttpServerOptions o;
  o.read_timeout = 10s;  // every read below progresses well within this
  o.min_body_rate = 4000;
  o.body_grace = 200ms;  // 4000 bytes must arrive within 1.2 s
  start(o);
  Connection c(port_);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n"));
  // 10 bytes every 50 ms (200 bytes/s): the body would take 20 s.
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    c.send(std::string(10, 'd'));
    closed = c.closed_within(50ms);
  }
  EXPECT_TRUE(closed) << "a body at 200 bytes/s was still being read after 5 s";
  EXPECT_TRUE(eventually([&] { return server_->body_budget()->in_use() == 0; }));
}

TEST_F(HttpLimitsTest, Http11WithoutHostIs400) {
  start({});
  for (const std::string req :
       {"GET /hello HTTP/1.1\r\n\r\n", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"}) {
    Connection c(port_);
    ASSERT_TRUE(c.send(req));
    auto r = c.read_response();
    ASSERT_TRUE(r) << req;
    EXPECT_EQ(r->status, 400) << req;
    auto error = nlohmann::json::parse(r->body)["error"];
    EXPECT_EQ(error["field"], "Host");
    EXPECT_NE(error["message"].get<std::string>().find("Host"), std::string::npos);
    EXPECT_TRUE(c.closed_within(2s));
  }
  // HTTP/1.0 may omit it.
  Connection c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
}

// After a 413 the server reads at most a small bound of the refused body, then closes: a client
// that keeps sending is cut off instead of being read (and charged) for a second or more.
TEST_F(HttpLimitsTest, RefusedBodyIsNotDrained) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  // Small fixed buffers on our side, so what we manage to send is about what the server read.
  int small = 16 << 10;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  // Keep sending until the server cuts the connection (or a send stalls past its timeout).
  const std::string piece(4096, 'p');
  size_t sent = 0;
  int error = 0;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    ssize_t n = ::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      error = errno;
      break;
    }
    sent += static_cast<size_t>(n);
  }
  ::close(fd);
  // Cut off by the server (reset, broken pipe), not stalled by a server that stopped reading.
  EXPECT_TRUE(error == ECONNRESET || error == EPIPE) << "send ended with: " << std::strerror(error);
  // The old server drained for a second: hundreds of megabytes over loopback.
  EXPECT_LT(sent, size_t{8} << 20) << "the server kept reading the refused body";
}

}  // namespace
}  // namespace atelier::http
