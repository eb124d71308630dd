// Streaming responses (Response::stream, as Server-Sent Events use them) over real sockets:
// framing, ordering, the end of a stream, a client that leaves or never reads, shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "server/http/server.h"
#include "tests/support/http_client.h"

namespace atelier::http {
namespace {

using namespace std::chrono_literals;
using testing::Connection;
using testing::make_request;
using testing::RawResponse;
using testing::StreamedBody;

// The receive buffer of test clients that never read: small, so the kernel holds back little.
constexpr int kSmallReceiveBuffer = 64 << 10;

// An upper bound on what the kernel may buffer between the server and a client that never reads
// with kSmallReceiveBuffer: the largest autotuned send buffer, the receive buffer (which Linux
// doubles for its bookkeeping), and slack.
size_t kernel_buffering_bound() {
  size_t send_max = 4 << 20;
  std::ifstream wmem("/proc/sys/net/ipv4/tcp_wmem");
  size_t lo = 0, def = 0, hi = 0;
  if (wmem >> lo >> def >> hi) send_max = hi;
  return send_max + 2 * kSmallReceiveBuffer + (1 << 20);
}

// One event as a producer would write it.
std::string event(int i) {
  return "id: " + std::to_string(i) + "\ndata: event " + std::to_string(i) + "\n\n";
}

// Polls `pred` until it holds or `timeout` passes (for state with nothing to wait on).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class HttpStreamTest : public ::testing::Test {
 protected:
  // One stream as its producer sees it.
  struct Producer {
    std::shared_ptr<StreamWriter> writer;
    std::shared_future<void> closed;  // ready once the on_close callback ran
    std::shared_ptr<std::atomic<int>> close_calls;
  };

  // The client side of `GET /events`: the response header, then the body as it arrives.
  struct Client {
    std::unique_ptr<Connection> conn;
    RawResponse head;
    StreamedBody body;
  };

  void SetUp() override {
    // Stands in for the access log: counts responses handed to the connection.
    router_.use([this](const ExchangePtr& ex, const Next& next) {
      ex->on_response([this](Exchange&, Response&) { responses_seen_.fetch_add(1); });
      next();
    });
    ASSERT_TRUE(router_
                    .add(Method::kGet, "/hello",
                         [](const ExchangePtr& ex) { ex->respond(Response::text(200, "hello")); })
                    .is_ok());
    ASSERT_TRUE(router_
                    .add(Method::kGet, "/events",
                         [this](const ExchangePtr& ex) {
                           Response r;
                           r.headers.set("Content-Type", "text/event-stream");
                           r.stream = [this](std::shared_ptr<StreamWriter> writer) {
                             adopt(std::move(writer));
                           };
                           ex->respond(std::move(r));
                         })
                    .is_ok());
  }

  void TearDown() override {
    if (server_) server_->shutdown(2s);
  }

  void start(HttpServerOptions opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<HttpServer>(opts, router_, &registry_);
    auto port = server_->start();
    ASSERT_TRUE(port.is_ok()) << port.status().to_string();
    port_ = *port;
  }

  // Runs on the connection's strand, as Response::stream is called.
  void adopt(std::shared_ptr<StreamWriter> writer) {
    auto closed = std::make_shared<std::promise<void>>();
    Producer p{writer, closed->get_future().share(), std::make_shared<std::atomic<int>>(0)};
    writer->on_close([closed, calls = p.close_calls] {
      if (calls->fetch_add(1) == 0) closed->set_value();
    });
    {
      std::lock_guard lock(mu_);
      producers_.push_back(std::move(p));
    }
    cv_.notify_all();
  }

  // The producer side of the next stream the server starts.
  std::optional<Producer> next_producer(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return producers_.size() > producers_taken_; })) {
      return std::nullopt;
    }
    return producers_[producers_taken_++];
  }

  size_t streams_started() {
    std::lock_guard lock(mu_);
    return producers_.size();
  }

  // Sends `request` on a new connection and reads the streamed response's header.
  Client open_events(const std::string& request = make_request("GET", "/events"),
                     int receive_buffer = 0) {
    Client c;
    c.conn = std::make_unique<Connection>(port_, receive_buffer);
    EXPECT_TRUE(c.conn->send(request));
    auto head = c.conn->read_response(5s, /*head=*/true);
    EXPECT_TRUE(head);
    if (head) c.head = *head;
    c.body.chunked = c.head.header("transfer-encoding") == "chunked";
    return c;
  }

  static bool closed_within(const Producer& p, std::chrono::milliseconds timeout) {
    return p.closed.wait_for(timeout) == std::future_status::ready;
  }

  Router router_;
  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::atomic<int> responses_seen_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Producer> producers_;
  size_t producers_taken_ = 0;
};

TEST_F(HttpStreamTest, EventsArriveInOrderAsWrittenAndBodyEndsAfterClose) {
  start();
  auto c = open_events();
  EXPECT_EQ(c.head.status, 200);
  EXPECT_EQ(c.head.header("content-type"), "text/event-stream");
  EXPECT_EQ(c.head.header("cache-control"), "no-cache");
  EXPECT_EQ(c.head.header("connection"), "close");
  EXPECT_EQ(c.head.header("transfer-encoding"), "chunked");
  EXPECT_EQ(c.head.header("content-length"), "");
  EXPECT_EQ(c.head.header("server"), "atelier");
  auto p = next_producer();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->writer->is_open());

  // An event reaches the client while the stream is still open: nothing waits for the end.
  ASSERT_TRUE(p->writer->write(event(0)));
  ASSERT_TRUE(c.conn->read_stream_until(c.body, event(0)));
  EXPECT_FALSE(c.body.complete);

  std::string expected = event(0);
  for (int i = 1; i < 200; ++i) expected += event(i);
  std::thread producer([w = p->writer] {
    for (int i = 1; i < 200; ++i) EXPECT_TRUE(w->write(event(i)));
    w->close();
  });
  ASSERT_TRUE(c.conn->read_stream_to_end(c.body));
  producer.join();
  EXPECT_EQ(c.body.data, expected);
  EXPECT_TRUE(c.body.complete);  // the last chunk: a clean end, not a dropped connection

  EXPECT_TRUE(closed_within(*p, 5s));
  EXPECT_EQ(p->close_calls->load(), 1);
  EXPECT_EQ(responses_seen_.load(), 1);  // the access log sees a stream once
  // Once ended, on_close runs at once on the caller's thread.
  bool ran = false;
  p->writer->on_close([&ran] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST_F(HttpStreamTest, WriteAfterCloseIsRefused) {
  start();
  auto c = open_events();
  auto p = next_producer();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->writer->write(""));  // empty writes are fine and send nothing
  EXPECT_TRUE(p->writer->write(event(1)));
  p->writer->close();
  EXPECT_FALSE(p->writer->is_open());
  EXPECT_FALSE(p->writer->write(event(2)));
  p->writer->close();  // idempotent
  ASSERT_TRUE(c.conn->read_stream_to_end(c.body));
  EXPECT_EQ(c.body.data, event(1));  // queued before close(): still delivered
  EXPECT_TRUE(c.body.complete);
  EXPECT_TRUE(closed_within(*p, 5s));
  EXPECT_FALSE(p->writer->write(event(3)));
  EXPECT_EQ(p->close_calls->load(), 1);
}

TEST_F(HttpStreamTest, ClientDisconnectFiresOnCloseWhileProducerIsIdle) {
  start();
  auto c = open_events();
  auto p = next_producer();
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->writer->write(event(1)));
  ASSERT_TRUE(c.conn->read_stream_until(c.body, event(1)));
  EXPECT_EQ(server_->open_connections(), 1u);

  c.conn.reset();  // the client goes away; the producer has nothing to send
  EXPECT_TRUE(closed_within(*p, 3s));
  EXPECT_FALSE(p->writer->is_open());
  EXPECT_FALSE(p->writer->write(event(2)));  // a writer kept past its connection is harmless
  p->writer->close();
  EXPECT_EQ(p->close_calls->load(), 1);
  EXPECT_TRUE(eventually([&] { return server_->open_connections() == 0; }));
  EXPECT_TRUE(eventually([&] {
    return registry_.render().find("atelier_http_open_connections 0") != std::string::npos;
  }));
}

TEST_F(HttpStreamTest, ClientThatNeverReadsIsCutOffAtByteCap) {
  HttpServerOptions o;
  o.stream_queue_bytes = 256 << 10;
  o.read_timeout = 60s;  // the cap, not the write deadline, must end this one
  start(o);
  auto c = open_events(make_request("GET", "/events"), kSmallReceiveBuffer);
  auto p = next_producer();
  ASSERT_TRUE(p);

  // What the producer may get accepted is bounded by the cap plus what the kernel buffers. If
  // the cap did not hold, the server would buffer everything the producer writes.
  const size_t bound = kernel_buffering_bound() + o.stream_queue_bytes;
  const std::string piece(64 << 10, 'x');
  size_t accepted = 0;
  bool refused = false;
  while (accepted <= bound) {
    if (!p->writer->write(piece)) {
      refused = true;
      break;
    }
    accepted += piece.size();
  }
  EXPECT_TRUE(refused) << "accepted " << accepted << " bytes";
  EXPECT_FALSE(p->writer->is_open());
  EXPECT_TRUE(closed_within(*p, 5s));
  EXPECT_FALSE(p->writer->write("data: more\n\n"));
  // The client sees what got through and then the connection drop, without the last chunk.
  ASSERT_TRUE(c.conn->read_stream_to_end(c.body, 10s));
  EXPECT_FALSE(c.body.complete);
  EXPECT_LE(c.body.data.size(), accepted);
  EXPECT_EQ(p->close_calls->load(), 1);
}

TEST_F(HttpStreamTest, StuckClientIsDroppedAtWriteDeadline) {
  HttpServerOptions o;
  o.read_timeout = 300ms;
  o.stream_queue_bytes = 2 * kernel_buffering_bound();  // the deadline must end this one
  start(o);
  auto c = open_events(make_request("GET", "/events"), kSmallReceiveBuffer);
  auto p = next_producer();
  ASSERT_TRUE(p);
  // More than the kernel can hold, all under the cap: a socket write then stays stuck.
  const std::string piece(64 << 10, 'y');
  for (size_t sent = 0; sent <= kernel_buffering_bound(); sent += piece.size()) {
    if (!p->writer->write(piece)) break;  // the deadline may already have struck
  }
  EXPECT_TRUE(closed_within(*p, 5s));
  EXPECT_FALSE(p->writer->write("data: more\n\n"));
  EXPECT_EQ(p->close_calls->load(), 1);
}

TEST_F(HttpStreamTest, QuietStreamHasNoIdleOrReadTimeout) {
  HttpServerOptions o;
  o.idle_timeout = 200ms;
  o.header_timeout = 200ms;
  o.read_timeout = 200ms;
  start(o);
  auto c = open_events();
  auto p = next_producer();
  ASSERT_TRUE(p);
  // Quiet for several timeouts' worth: the stream must stay open.
  EXPECT_FALSE(c.conn->closed_within(800ms));
  EXPECT_TRUE(p->writer->is_open());
  ASSERT_TRUE(p->writer->write(event(7)));
  EXPECT_TRUE(c.conn->read_stream_until(c.body, event(7)));
}

TEST_F(HttpStreamTest, GracefulShutdownEndsOpenStreamsAfterFlushing) {
  start();
  auto c = open_events();
  auto p = next_producer();
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->writer->write(event(1)));
  ASSERT_TRUE(c.conn->read_stream_until(c.body, event(1)));
  ASSERT_TRUE(p->writer->write(event(2)));  // still queued, perhaps, when shutdown begins

  const auto t0 = std::chrono::steady_clock::now();
  auto done = std::async(std::launch::async, [this] { server_->shutdown(10s); });
  ASSERT_TRUE(c.conn->read_stream_to_end(c.body));
  EXPECT_EQ(c.body.data, event(1) + event(2));
  EXPECT_TRUE(c.body.complete);
  EXPECT_TRUE(closed_within(*p, 5s));
  c.conn.reset();  // as a client does when the stream ends
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);  // far from the 10 s deadline
  EXPECT_FALSE(p->writer->write(event(3)));
  EXPECT_EQ(p->close_calls->load(), 1);
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(HttpStreamTest, ForcedShutdownFiresOnClose) {
  HttpServerOptions o;
  o.stream_queue_bytes = 2 * kernel_buffering_bound();
  start(o);
  auto c = open_events(make_request("GET", "/events"), kSmallReceiveBuffer);
  auto p = next_producer();
  ASSERT_TRUE(p);
  // The client never reads, so the flush at shutdown cannot finish before the deadline.
  const std::string piece(64 << 10, 'z');
  for (size_t sent = 0; sent <= kernel_buffering_bound(); sent += piece.size()) {
    ASSERT_TRUE(p->writer->write(piece));
  }
  const auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(300ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(closed_within(*p, 1s));
  EXPECT_FALSE(p->writer->write(event(1)));
  EXPECT_EQ(p->close_calls->load(), 1);
}

TEST_F(HttpStreamTest, HeadSendsHeadersOnly) {
  start();
  Connection c(port_);
  ASSERT_TRUE(c.send(make_request("HEAD", "/events")));
  auto head = c.read_response(5s, /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-type"), "text/event-stream");
  EXPECT_EQ(head->header("content-length"), "");
  EXPECT_EQ(head->header("connection"), "close");
  StreamedBody rest;  // read raw: whatever follows the header would be body bytes
  EXPECT_TRUE(c.read_stream_to_end(rest));
  EXPECT_EQ(rest.data, "");
  EXPECT_EQ(streams_started(), 0u);  // no producer is started for HEAD
  EXPECT_EQ(responses_seen_.load(), 1);
}

TEST_F(HttpStreamTest, Http10StreamIsDelimitedByClose) {
  start();
  auto c = open_events("GET /events HTTP/1.0\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.head.header("transfer-encoding"), "");
  EXPECT_EQ(c.head.header("connection"), "close");
  auto p = next_producer();
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->writer->write(event(1)));
  ASSERT_TRUE(p->writer->write(event(2)));
  p->writer->close();
  ASSERT_TRUE(c.conn->read_stream_to_end(c.body));
  EXPECT_EQ(c.body.data, event(1) + event(2));
  EXPECT_TRUE(closed_within(*p, 5s));
}

TEST_F(HttpStreamTest, HandlerSetCacheControlIsKept) {
  ASSERT_TRUE(router_
                  .add(Method::kGet, "/private-events",
                       [this](const ExchangePtr& ex) {
                         Response r;
                         r.headers.set("Content-Type", "text/event-stream");
                         r.headers.set("Cache-Control", "no-store");
                         r.stream = [this](std::shared_ptr<StreamWriter> w) {
                           adopt(std::move(w));
                         };
                         ex->respond(std::move(r));
                       })
                  .is_ok());
  start();
  auto c = open_events(make_request("GET", "/private-events"));
  EXPECT_EQ(c.head.header("cache-control"), "no-store");
  auto p = next_producer();
  ASSERT_TRUE(p);
  p->writer->close();
  ASSERT_TRUE(c.conn->read_stream_to_end(c.body));
  EXPECT_EQ(c.body.data, "");
  EXPECT_TRUE(c.body.complete);
}

TEST_F(HttpStreamTest, OtherConnectionsKeepWorkingDuringStreams) {
  start();
  auto a = open_events();
  auto pa = next_producer();
  ASSERT_TRUE(pa);
  auto b = open_events();
  auto pb = next_producer();
  ASSERT_TRUE(pb);
  for (int i = 0; i < 5; ++i) {
    auto r = testing::http_request(port_, "GET", "/hello");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "hello");
    ASSERT_TRUE(pa->writer->write(event(i)));
    ASSERT_TRUE(pb->writer->write(event(100 + i)));
  }
  ASSERT_TRUE(a.conn->read_stream_until(a.body, event(4)));
  ASSERT_TRUE(b.conn->read_stream_until(b.body, event(104)));
  EXPECT_EQ(a.body.data, event(0) + event(1) + event(2) + event(3) + event(4));
  EXPECT_EQ(b.body.data.find(event(0)), std::string::npos);  // each stream gets its own bytes
  // Only the two streams stay open once the /hello connections are gone.
  EXPECT_TRUE(eventually([&] { return server_->open_connections() == 2; }));
  pa->writer->close();
  pb->writer->close();
  EXPECT_TRUE(a.conn->read_stream_to_end(a.body));
  EXPECT_TRUE(b.conn->read_stream_to_end(b.body));
}

}  // namespace
}  // namespace atelier::http
