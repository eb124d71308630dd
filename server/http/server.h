// HttpServer: accepts TCP connections and runs one Session per connection on the I/O threads.
//
// Beast stays behind this header (pimpl) so the app and tests that start a server don't pay for
// Beast's headers. Contract:
//   * start() binds and listens, then runs `io_threads` threads. It returns the bound port
//     (useful with port 0).
//   * Every request is parsed, checked against the body and header limits before routing
//     (413 / 431 answered by the session, then the connection closes), and handed to the Router.
//   * shutdown() stops accepting, closes idle keep-alive connections at once, lets requests in
//     flight finish (their responses carry `Connection: close`), and after `deadline` closes
//     whatever remains. It returns when every connection is gone and the threads have stopped.
//     Streaming responses (Response::stream) count as in flight but are ended at once: their
//     queued bytes are flushed (within the write deadline), then the stream closes and its
//     on_close callbacks run. A forced close at the deadline runs them too.
//   * Streaming responses have no read or idle timeout; each write to the client must finish
//     within `read_timeout`, or the client is dropped as stuck.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"
#include "server/http/router.h"

namespace atelier::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int io_threads = 2;
  uint64_t max_body_bytes = 1 << 20;
  uint32_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // Per streaming response: the most bytes queued but not yet written to the socket. A producer
  // that gets further ahead of its client than this has the stream cut off (StreamWriter::write).
  size_t stream_queue_bytes = 1 << 20;
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

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace atelier::http
