// WebSocket connections (server/http/ws_session.cpp) over real sockets, with a test handler:
// the handler's callbacks, the greeting deadline, the send queue's overflow close, shutdown.
// Every test runs in both write modes (WsOptions::direct_writes: the fast path, and plain
// strand-serialised Beast writes).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/http/cork_stream.h"
#include "server/http/server.h"
#include "server/http/websocket.h"
#include "tests/support/raw_ws.h"
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
    {
      std::lock_guard lock(mu_);
      conn_ = c;
    }
    opened.fetch_add(1);
    for (size_t i = 0; i < burst_; ++i) c->send_text(std::string(4096, 'a' + i % 26));
  }
  void on_message(std::string message, bool binary) override {
    if (message == "hold") {  // keeps the connection's strand busy until release()
      holding = true;
      std::unique_lock lock(mu_);
      released_.wait_for(lock, 5s, [&] { return release_; });
    }
    if (conn_ && !binary) conn_->send_text("echo " + message);
  }
  void release() {
    std::lock_guard lock(mu_);
    release_ = true;
    released_.notify_all();
  }
  void on_close() override {
    closed.fetch_add(1);
    std::lock_guard lock(mu_);
    conn_.reset();
  }
  std::shared_ptr<WsConnection> connection() {
    std::lock_guard lock(mu_);
    return conn_;
  }
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
  std::atomic<bool> holding{false};

 private:
  const size_t burst_;
  std::mutex mu_;
  std::condition_variable released_;
  bool release_ = false;
  std::shared_ptr<WsConnection> conn_;
};

// The parameter: WsOptions::direct_writes.
class WsSessionTest : public ::testing::TestWithParam<bool> {
 protected:
  void start(WsOptions options, size_t burst = 0) {
    options.direct_writes = GetParam();
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

TEST_P(WsSessionTest, TheHandlerSeesOpenMessagesAndOneClose) {
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

TEST_P(WsSessionTest, AClientThatDoesNotSpeakFirstInTimeIsClosedWithTheGivenCode) {
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

TEST_P(WsSessionTest, DurableMessagesOverflowingTheQueueCloseWithResume) {
  WsOptions options;
  options.max_queue_bytes = 16 << 10;
  ASSERT_NO_FATAL_FAILURE(start(options, /*burst=*/100));  // 400 KiB queued at once
  auto c = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->wait_closed(5s), std::optional<uint16_t>(kCloseResume));
  EXPECT_LT(c->messages().size(), 100u) << "what overflowed was not sent";
}

TEST_P(WsSessionTest, ShutdownClosesWithGoingAway) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  auto c = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(c);
  c->send_text("x");
  ASSERT_TRUE(c->wait_for([](const auto& m) { return m.data == "echo x"; }, 5s));
  server_->shutdown(2s);
  EXPECT_EQ(c->wait_closed(5s), std::optional<uint16_t>(kCloseGoingAway));
  server_.reset();
}

// A client on a raw socket, so that it can stop reading: upgrade, then frames on demand.
class RawClient {
 public:
  bool connect(uint16_t port) {
    std::string error;
    fd_ = testing::ws_connect(port, "/ws", {}, in_, error);
    if (fd_ < 0) ADD_FAILURE() << error;
    return fd_ >= 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The next frame's payload (server frames: unmasked, unfragmented here).
  std::optional<std::string> next() {
    for (;;) {
      if (auto frame = testing::parse_server_frame(in_)) {
        std::string payload(frame->payload);
        in_.erase(0, frame->size);
        return payload;
      }
      if (!fill()) return std::nullopt;
    }
  }

 private:
  bool fill() {
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string in_;
};

TEST_P(WsSessionTest, SendsFromManyThreadsToAStalledClientArriveWholeAndInOrder) {
  // While nothing is queued, send() writes straight to the socket from the caller's thread; once
  // the socket is full a write goes out in part and the strand sends the rest before anything
  // else. Four threads race through both paths against a client that reads nothing for a while:
  // two send one message at a time, one in batches of 1 to 7 (one system call each), one in a
  // single batch longer than one system call takes (CorkStream::kMaxFramesPerCall).
  WsOptions options;
  options.max_queue_bytes = 256 << 20;
  ASSERT_NO_FATAL_FAILURE(start(options));
  RawClient client;
  ASSERT_TRUE(client.connect(port_));
  std::shared_ptr<WsConnection> conn;
  for (int i = 0; i < 500 && !conn; ++i) {
    if (auto h = handler(0)) conn = h->connection();
    if (!conn) std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(conn);
  constexpr int kThreads = 4, kEach = 80;
  static_assert(kEach > CorkStream::kMaxFramesPerCall);
  auto body = [](int t, int i) {
    // Sizes from a few bytes to 96 KiB, so frames use all three length encodings.
    const size_t size = (i % 3 == 0) ? 20 : (i % 3 == 1) ? 300 + i : 40000 + 1000 * i;
    std::string s = std::to_string(t) + ":" + std::to_string(i) + ":";
    s.resize(size, static_cast<char>('a' + (t * 7 + i) % 26));
    return s;
  };
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      if (t < 2) {
        for (int i = 0; i < kEach; ++i) conn->send_text(body(t, i));
        return;
      }
      std::vector<OutMessage> batch;
      for (int i = 0; i < kEach; ++i) {
        batch.push_back(OutMessage{std::make_shared<const std::string>(body(t, i)),
                                   false,
                                   OutMessage::Kind::kDurable,
                                   {},
                                   0});
        if (t == 2 && static_cast<int>(batch.size()) == 1 + i % 7) {
          conn->send_batch(batch);
          batch.clear();
        }
      }
      conn->send_batch(batch);
    });
  }
  for (auto& s : senders) s.join();
  std::this_thread::sleep_for(200ms);  // the client still has not read a byte
  int next[kThreads] = {};
  for (int n = 0; n < kThreads * kEach; ++n) {
    auto payload = client.next();
    ASSERT_TRUE(payload) << "frame " << n;
    const int t = std::stoi(payload->substr(0, payload->find(':')));
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    ASSERT_EQ(*payload, body(t, next[t])) << "thread " << t << "'s message " << next[t];
    ++next[t];
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kEach);
  conn.reset();
}

TEST_P(WsSessionTest, OnlyDirectWritesReachTheClientWhileTheStrandIsBusy) {
  // The switch is real: with direct writes a send() to an idle connection goes out from the
  // caller's thread; in plain mode it waits for the connection's strand, here held by the handler.
  ASSERT_NO_FATAL_FAILURE(start({}));
  auto c = WsClient::connect(port_, "/ws", {});
  ASSERT_TRUE(c);
  std::shared_ptr<TestHandler> h;
  std::shared_ptr<WsConnection> conn;
  for (int i = 0; i < 500 && !conn; ++i) {
    h = handler(0);
    if (h) conn = h->connection();
    if (!conn) std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(conn);
  c->send_text("hold");
  for (int i = 0; i < 500 && !h->holding.load(); ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(h->holding.load());
  conn->send_text("while held");
  const bool arrived =
      c->wait_for([](const auto& m) { return m.data == "while held"; }, 300ms).has_value();
  h->release();
  EXPECT_EQ(arrived, GetParam());
  ASSERT_TRUE(c->wait_for([](const auto& m) { return m.data == "echo hold"; }, 5s));
  auto msgs = c->messages();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].data, "while held") << "sent first, so it arrives first in either mode";
  conn.reset();
}

TEST_P(WsSessionTest, AClientThatAnswersNoPingIsDroppedWhileOtherThreadsStillSend) {
  // Beast pings after half the idle time without a word from the client and closes the socket
  // when the other half passes; meanwhile another thread keeps sending straight to the socket,
  // so closing has to shut the gate first.
  WsOptions options;
  options.idle_timeout = 400ms;
  ASSERT_NO_FATAL_FAILURE(start(options));
  RawClient client;  // never answers a ping
  ASSERT_TRUE(client.connect(port_));
  std::shared_ptr<TestHandler> h;
  std::shared_ptr<WsConnection> conn;
  for (int i = 0; i < 500 && !conn; ++i) {
    h = handler(0);
    if (h) conn = h->connection();
    if (!conn) std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(conn);
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    while (!stop.load()) {
      conn->send_text("tick");
      std::this_thread::sleep_for(2ms);
    }
  });
  for (int i = 0; i < 500 && h->closed.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  stop = true;
  sender.join();
  EXPECT_EQ(h->closed.load(), 1) << "dropped after the idle timeout";
  // The client reads what was sent (ticks and a ping), then the end of the connection.
  bool saw_tick = false;
  for (int n = 0; n < 100000; ++n) {
    auto payload = client.next();
    if (!payload) break;
    saw_tick = saw_tick || *payload == "tick";
  }
  EXPECT_TRUE(saw_tick);
  conn.reset();
}

INSTANTIATE_TEST_SUITE_P(WriteModes, WsSessionTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "direct" : "plain");
                         });

}  // namespace
}  // namespace atelier::http
