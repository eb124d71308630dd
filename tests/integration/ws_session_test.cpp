// WebSocket connections (server/http/ws_session.cpp) over real sockets, with a test handler:
// the handler's callbacks, the greeting deadline, the send queue's overflow close, shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/http/server.h"
#include "server/http/websocket.h"
#include "tests/support/ws_client.h"

namespace atelier::http {
namespace {

using namespace std::chrono_literals;
using testing::WsClient;

// Echoes text; on open, optionally sends a burst of durable messages.
class TestHandler : public WsHandler {
 public:
  explicit TestHandler(size_t burst) : burst_(burst) {}
  void on_open(const std::shared_ptr<WsConnection>& c) override {
    conn_ = c;
    opened.fetch_add(1);
    for (size_t i = 0; i < burst_; ++i) c->send_text(std::string(4096, 'a' + i % 26));
  }
  void on_message(std::string message, bool binary) override {
    if (conn_ && !binary) conn_->send_text("echo " + message);
  }
  void on_close() override {
    closed.fetch_add(1);
    conn_.reset();
  }
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};

 private:
  const size_t burst_;
  std::shared_ptr<WsConnection> conn_;
};

class WsSessionTest : public ::testing::Test {
 protected:
  void start(WsOptions options, size_t burst = 0) {
    ASSERT_TRUE(router_
                    .add(Method::kGet, "/ws",
                         [this, options, burst](const ExchangePtr& ex) {
                           auto h = std::make_shared<TestHandler>(burst);
                           {
                             std::lock_guard lock(mu_);
                             handlers_.push_back(h);
                           }
                           Response r;
                           r.status = 101;
                           r.websocket = std::make_shared<WsAccept>(WsAccept{h, options});
                           ex->respond(std::move(r));
                         })
                    .is_ok());
    server_ = std::make_unique<HttpServer>(HttpServerOptions{}, router_, nullptr);
    auto port = server_->start();
    ASSERT_TRUE(port.is_ok());
    port_ = *port;
  }
  void TearDown() override {
    if (server_) server_->shutdown(2s);
  }
  std::shared_ptr<TestHandler> handler(size_t i) {
    std::lock_guard lock(mu_);
    return i < handlers_.size() ? handlers_[i] : nullptr;
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::shared_ptr<TestHandler>> handlers_;
};

TEST_F(WsSessionTest, TheHandlerSeesOpenMessagesAndOneClose) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  auto c = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(c);
  c->send_text("one");
  c->send_text("two");
  ASSERT_TRUE(c->wait_for([](const auto& m) { return m.data == "echo two"; }, 5s));
  auto msgs = c->messages();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].data, "echo one") << "in order";
  c->close();
  auto h = handler(0);
  ASSERT_TRUE(h);
  for (int i = 0; i < 200 && h->closed.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(h->opened.load(), 1);
  EXPECT_EQ(h->closed.load(), 1);
}

TEST_F(WsSessionTest, AClientThatDoesNotSpeakFirstInTimeIsClosedWithTheGivenCode) {
  WsOptions options;
  options.first_message_timeout = 200ms;
  options.first_message_close_code = 4002;
  ASSERT_NO_FATAL_FAILURE(start(options));
  auto quiet = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(quiet);
  EXPECT_EQ(quiet->wait_closed(5s), std::optional<uint16_t>(4002));

  auto prompt = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(prompt);
  prompt->send_text("hi");
  ASSERT_TRUE(prompt->wait_for([](const auto& m) { return m.data == "echo hi"; }, 5s));
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(prompt->closed()) << "speaking in time cancels the deadline";
}

TEST_F(WsSessionTest, DurableMessagesOverflowingTheQueueCloseWithResume) {
  WsOptions options;
  options.max_queue_bytes = 16 << 10;
  ASSERT_NO_FATAL_FAILURE(start(options, /*burst=*/100));  // 400 KiB queued at once
  auto c = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->wait_closed(5s), std::optional<uint16_t>(kCloseResume));
  EXPECT_LT(c->messages().size(), 100u) << "what overflowed was not sent";
}

TEST_F(WsSessionTest, ShutdownClosesWithGoingAway) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  auto c = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(c);
  c->send_text("x");
  ASSERT_TRUE(c->wait_for([](const auto& m) { return m.data == "echo x"; }, 5s));
  server_->shutdown(2s);
  EXPECT_EQ(c->wait_closed(5s), std::optional<uint16_t>(kCloseGoingAway));
  server_.reset();
}

}  // namespace
}  // namespace atelier::http
