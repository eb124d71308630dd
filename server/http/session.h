// One HTTP connection: reads requests one at a time, hands each to the router, writes the
// answer, repeats while keep-alive lasts. Internal to server/http; includes Beast.
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
#include <mutex>
#include <optional>
#include <unordered_map>

#include "common/metrics.h"
#include "server/http/router.h"
#include "server/http/server.h"

namespace atelier::http {

class Session;

// What every session of one server shares. Sessions hold it by shared_ptr, and it owns the
// io_context, so a session kept alive past shutdown (by a handler that has not answered yet)
// never outlives the io_context its socket belongs to.
struct ServerState {
  explicit ServerState(int threads) : ioc(threads) {}

  boost::asio::io_context ioc;
  HttpServerOptions options;
  const Router* router = nullptr;
  metrics::Gauge* open_connections = nullptr;  // may be null
  std::function<void(const Request&, const Response&)> rejection_observer;
  std::atomic<bool> draining{false};

  // Live sessions, so shutdown can reach them. Weak: the registry never keeps one alive.
  std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::atomic<size_t> session_count{0};

  // Set once the I/O threads have stopped for good: late answers are dropped instead of being
  // queued on an io_context that will never run them.
  std::atomic<bool> io_stopped{false};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<ServerState> state);
  ~Session();

  void start();
  // Graceful: closes now if idle between requests, else after the current response.
  void begin_drain();
  // Forced: closes the socket now, whatever is in flight.
  void force_close();

 private:
  enum class Phase { kIdle, kReadingHeader, kReadingBody, kHandling, kWriting, kClosed };

  void wait_for_request();
  void on_first_bytes(boost::beast::error_code ec, size_t n);
  void read_header();
  void on_header(boost::beast::error_code ec, size_t n);
  void read_body();
  void on_body_part(boost::beast::error_code ec, size_t n);
  void handle_request();
  void send(Response response);
  void on_written(bool keep_alive, boost::beast::error_code ec);
  // Answers a request the router never sees (400/413/431), then closes.
  void reject(int status, std::string_view code, std::string_view message);
  // Closes at once; any pending operation is aborted. For errors and idle connections.
  void close_now();
  // After a final response: half-closes, then drains what the client still sends (bounded in
  // time) so the response is not destroyed by a TCP reset. Only with no read pending.
  void close_after_response();

  Request build_request() const;

  // First member, so it is destroyed last: the socket below must go before the io_context.
  std::shared_ptr<ServerState> state_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::string remote_;
  Phase phase_ = Phase::kIdle;
  bool request_keep_alive_ = true;
  bool request_is_head_ = false;
  std::chrono::steady_clock::time_point request_started_;
};

}  // namespace atelier::http
