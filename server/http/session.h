// One HTTP connection: reads requests one at a time, hands each to the router, writes the
// answer, repeats while keep-alive lasts. Internal to server/http; includes Beast.
//
// A streaming response (Response::stream) is the connection's last: after its header, the
// producer's bytes go out as they are written, one socket write in flight with the rest queued
// in the SessionStreamWriter behind it, until the stream ends and the connection closes. While
// streaming, a read stays pending so a client that leaves is noticed even when nothing is sent.
//
// Concurrency: everything a Session does runs on its own strand. Handlers may answer from any
// thread; the answer is posted back onto the strand. Async handlers hold a shared_ptr to the
// session (never raw `this`), so the session lives until its last operation finishes.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/mutex.h"
#include "server/http/body_budget.h"
#include "server/http/connection_limits.h"
#include "server/http/router.h"
#include "server/http/server.h"
#include "server/http/stream_writer.h"

namespace atelier::http {

// Something shutdown must reach: an HTTP session or a WebSocket one.
class Connection {
 public:
  virtual ~Connection() = default;
  // Graceful: ends the connection once what it is doing allows (see each implementation).
  virtual void begin_drain() = 0;
  // Forced: closes the socket now, whatever is in flight.
  virtual void force_close() = 0;
};

// What every session of one server shares. Sessions hold it by shared_ptr, and it owns the
// io_context, so a session kept alive past shutdown (by a handler that has not answered yet)
// never outlives the io_context its socket belongs to.
struct ServerState {
  explicit ServerState(int threads) : ioc(threads) {}

  boost::asio::io_context ioc;
  HttpServerOptions options;
  const Router* router = nullptr;
  metrics::Gauge* open_connections = nullptr;  // may be null
  // Request bodies and WebSocket messages being received (never null once the server starts).
  std::shared_ptr<BodyBudget> body_budget;
  // Set at construction by the server; every HTTP and WebSocket session holds a Slot of it.
  std::unique_ptr<ConnectionLimits> connection_limits;
  metrics::Counter* body_budget_refusals = nullptr;  // may be null
  std::function<void(const Request&, const Response&)> rejection_observer;
  std::atomic<bool> draining{false};

  // Live sessions, so shutdown can reach them. Weak: the registry never keeps one alive.
  Mutex sessions_mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> sessions
      ATELIER_GUARDED_BY(sessions_mu);
  std::atomic<size_t> session_count{0};

  // Set once the I/O threads have stopped for good: late answers are dropped instead of being
  // queued on an io_context that will never run them.
  std::atomic<bool> io_stopped{false};
};

class Session : public Connection, public std::enable_shared_from_this<Session> {
 public:
  // `slot`: this connection's place under the connection limits, held until it closes (and
  // handed to the WebSocket session if it becomes one).
  Session(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<ServerState> state,
          ConnectionLimits::Slot slot);
  ~Session();

  void start();
  // Graceful: closes now if idle between requests, else after the current response.
  void begin_drain() override;
  void force_close() override;
  // For SessionStreamWriter, from any thread: the stream has new bytes, was closed, or was cut
  // off. Queues a look at it on the strand (holding the session only weakly until then).
  void wake_stream();

 private:
  enum class Phase {
    kIdle,
    kReadingHeader,
    kReadingBody,
    kHandling,
    kWriting,
    kStreaming,
    kClosed
  };

  void wait_for_request();
  void on_first_bytes(boost::beast::error_code ec, size_t n);
  void read_header();
  void on_header(boost::beast::error_code ec, size_t n);
  // Charges the body against the budget (503 when it does not fit), sets its deadline, reads.
  void start_body();
  void read_body();
  void on_body_part(boost::beast::error_code ec, size_t n);
  // A body of unknown length (chunked): makes room for what the next read may add, charged to
  // the budget first. False when the budget has no room.
  bool reserve_body_room();
  void handle_request();
  void send(Response response);
  void on_written(bool keep_alive, boost::beast::error_code ec);
  // The route accepted a WebSocket upgrade: the socket and the request go to a WsSession.
  void start_websocket(Response r);
  // Answers a request the router never sees (400/413/431/503), then closes.
  void reject(int status, std::string_view code, std::string_view message,
              std::string_view field = {});
  void reject(Response r);
  // 503 with Retry-After: the body budget has no room for this body.
  void refuse_busy();
  // Closes at once; any pending operation is aborted. For errors and idle connections.
  void close_now();
  // After a final response: half-closes, then drains what the client still sends (bounded in
  // time and bytes) so the response is not destroyed by a TCP reset. Only with no read pending.
  void close_after_response();

  Request build_request() const;

  // Streaming responses (all on the strand).
  void start_stream(Response r, unsigned version);
  // Writes what the producer has queued, or ends the stream once it is closed and flushed.
  void pump_stream();
  // Writes stream_out_ (of which `counted` bytes are the producer's) with the write deadline:
  // as it is (the header; a body delimited by closing), as one chunk, or the last (empty) chunk.
  enum class StreamWrite { kRaw, kChunk, kLastChunk };
  void write_stream_out(size_t counted, StreamWrite how);
  void on_stream_written(boost::beast::error_code ec, size_t counted);
  void watch_for_disconnect();
  void on_stream_read(boost::beast::error_code ec);
  // Everything is written: fires on_close, then closes the connection in an orderly way.
  void finish_stream();
  // Ends the producer's side (idempotent); called on every way a connection closes.
  void end_stream();

  // First member, so it is destroyed last: the socket below must go before the io_context.
  std::shared_ptr<ServerState> state_;
  ConnectionLimits::Slot slot_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::string remote_;
  Phase phase_ = Phase::kIdle;
  bool request_keep_alive_ = true;
  bool request_is_head_ = false;
  std::chrono::steady_clock::time_point request_started_;
  // The request's body limit: its route's (Router::body_limit) or the server's max_body_bytes.
  uint64_t body_limit_ = 0;
  // The body being read: its share of the budget (released once the response is decided or the
  // connection closes) and the time by which it must be complete.
  BodyBudget::Charge body_charge_;
  std::chrono::steady_clock::time_point body_deadline_;

  // Streaming state; meaningful only in Phase::kStreaming.
  std::shared_ptr<SessionStreamWriter> writer_;
  std::vector<std::string> stream_out_;  // the write in flight (kept alive until it completes)
  std::vector<boost::asio::const_buffer> stream_buffers_;
  bool stream_chunked_ = false;  // HTTP/1.1: chunked; HTTP/1.0: delimited by closing
  bool stream_writing_ = false;
  bool stream_reading_ = false;
  bool stream_done_ = false;  // the producer closed and everything (but the last chunk) is out
};

}  // namespace atelier::http
