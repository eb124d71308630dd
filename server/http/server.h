// HttpServer: accepts TCP connections and runs one Session per connection on the I/O threads.
//
// Beast stays behind this header (pimpl) so the app and tests that start a server don't pay for
// Beast's headers. Contract:
//   * start() binds and listens, then runs `io_threads` threads. It returns the bound port
//     (useful with port 0).
//   * Every request is parsed, checked against the body and header limits before routing
//     (413 / 431 answered by the session, then the connection closes), and handed to the Router.
//     A body's limit is its route's RouteOptions::max_body_bytes when it has one (larger or
//     smaller than max_body_bytes; Router::body_limit, asked once the header is read), else
//     max_body_bytes; the budget charge and the body rate deadline use that limit.
//   * shutdown() stops accepting, closes idle keep-alive connections at once, lets requests in
//     flight finish (their responses carry `Connection: close`), and after `deadline` closes
//     whatever remains. It returns when every connection is gone and the threads have stopped.
//     Streaming responses (Response::stream) count as in flight but are ended at once: their
//     queued bytes are flushed (within the write deadline), then the stream closes and its
//     on_close callbacks run. A forced close at the deadline runs them too.
//   * Limits against hostile clients: connections over max_connections (or, per peer address,
//     max_connections_per_ip; trusted proxies exempt) are closed at accept. A body must fit the
//     server-wide body budget (else 503 with Retry-After, before any of it is read) and arrive
//     at min_body_rate after body_grace. HTTP/1.1 without Host is 400. A refused request's body
//     is not drained beyond a small bound: the connection closes.
//   * Streaming responses have no read or idle timeout; each write to the client must finish
//     within `read_timeout`, or the client is dropped as stuck.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/cidr.h"
#include "common/metrics.h"
#include "common/status.h"
#include "server/http/body_budget.h"
#include "server/http/router.h"

namespace atelier::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int io_threads = 2;
  uint64_t max_body_bytes = 1 << 20;  // for routes without a limit of their own
  uint32_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // Per streaming response: the most bytes queued but not yet written to the socket. A producer
  // that gets further ahead of its client than this has the stream cut off (StreamWriter::write).
  size_t stream_queue_bytes = 1 << 20;
  // Server-wide budget for request bodies and WebSocket messages being received; a new body
  // that does not fit gets 503 with Retry-After. `body_budget`, when set, is used instead of a
  // budget of `max_buffered_body_bytes` (so other parts of the app, e.g. uploads, can share it).
  // With its own budget the server also trims the allocator each time the budget drains.
  uint64_t max_buffered_body_bytes = uint64_t{64} << 20;
  std::shared_ptr<BodyBudget> body_budget;
  // Open connections (HTTP and WebSocket) in total and per peer address; over either, an
  // accepted socket is closed at once. Peers in `trusted_proxies` (reverse proxies, whose
  // X-Forwarded-For and -Proto are believed: forwarded.h) are exempt from the per-address cap,
  // since they carry many clients.
  size_t max_connections = 10'000;
  size_t max_connections_per_ip = 256;
  CidrSet trusted_proxies;
  // A request body must be complete within body_grace + its length (the body limit when not
  // declared) / min_body_rate, on top of read_timeout per read.
  uint64_t min_body_rate = 16 << 10;  // bytes per second
  std::chrono::milliseconds body_grace{10'000};
};

class HttpServer {
 public:
  // `router` must outlive the server. `registry` (optional) receives connection metrics.
  HttpServer(HttpServerOptions options, const Router& router, metrics::Registry* registry);
  ~HttpServer();  // shuts down with a zero deadline if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Result<uint16_t> start();
  uint16_t port() const;
  // Called for requests the session answers itself before routing (400, 413, 431), so they are
  // logged and counted like the rest.
  void set_rejection_observer(std::function<void(const Request&, const Response&)> observer);

  void shutdown(std::chrono::milliseconds deadline);
  bool draining() const;
  size_t open_connections() const;
  // The budget request bodies are charged to (HttpServerOptions::body_budget or the server's
  // own), for routes that buffer more on the same account (uploads).
  std::shared_ptr<BodyBudget> body_budget() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace atelier::http
