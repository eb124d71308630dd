// The StreamWriter behind a streaming response (Response::stream). Internal to server/http.
//
// Two sides share one writer. The producer (any thread) uses the StreamWriter interface. The
// Session that owns the connection (only on its strand) takes the queued bytes, reports them
// written, and ends the stream. A mutex guards what both sides touch. The writer holds only a
// weak_ptr to its session, so a producer that keeps the writer after the connection has gone
// keeps nothing else alive, and its calls simply report the stream closed.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "server/http/message.h"

namespace atelier::http {

class Session;

class SessionStreamWriter final : public StreamWriter {
 public:
  // `byte_cap`: the most bytes queued but not yet written (HttpServerOptions::stream_queue_bytes).
  SessionStreamWriter(std::weak_ptr<Session> session, size_t byte_cap);

  bool write(std::string bytes) override ATELIER_EXCLUDES(mu_);
  void close() override ATELIER_EXCLUDES(mu_);
  bool is_open() const override ATELIER_EXCLUDES(mu_);
  void on_close(std::function<void()> callback) override ATELIER_EXCLUDES(mu_);

  // ---- Session side: call only on the session's strand. ----

  // What take() found.
  struct Taken {
    size_t bytes = 0;      // bytes appended to `out`
    bool closing = false;  // close() was called: once these are written, the stream is done
  };
  // Moves every queued write into `out`, in order. The bytes still count against the cap until
  // written() reports them, so a client that stops reading is noticed.
  Taken take(std::vector<std::string>& out) ATELIER_EXCLUDES(mu_);
  // The byte cap was exceeded: the connection is to be dropped, even with a write in flight.
  bool cut_off() const ATELIER_EXCLUDES(mu_);
  // `bytes` of what take() returned have reached the socket.
  void written(size_t bytes) ATELIER_EXCLUDES(mu_);
  // Stops accepting writes and asks for an orderly end (server drain); like close(), but without
  // waking the session, which acts on it itself.
  void stop_accepting() ATELIER_EXCLUDES(mu_);
  // The stream is over: refuses further writes, drops what is queued and runs the on_close
  // callbacks (first call only). Idempotent.
  void end() ATELIER_EXCLUDES(mu_);

 private:
  // Posts a look at this stream onto the session's strand (if the session still exists).
  void wake() const ATELIER_EXCLUDES(mu_);

  const std::weak_ptr<Session> session_;
  const size_t byte_cap_;

  mutable Mutex mu_;
  bool open_ ATELIER_GUARDED_BY(mu_) = true;  // write() accepts bytes
  // close() called (or the server drains): flush, then end.
  bool closing_ ATELIER_GUARDED_BY(mu_) = false;
  bool cut_off_ ATELIER_GUARDED_BY(mu_) = false;  // byte cap exceeded
  bool ended_ ATELIER_GUARDED_BY(mu_) = false;    // end() ran; callbacks fired
  // Written, not yet taken by the session.
  std::vector<std::string> pending_ ATELIER_GUARDED_BY(mu_);
  size_t pending_bytes_ ATELIER_GUARDED_BY(mu_) = 0;
  size_t in_flight_bytes_ ATELIER_GUARDED_BY(mu_) = 0;  // taken, not yet written to the socket
  std::vector<std::function<void()>> callbacks_ ATELIER_GUARDED_BY(mu_);
};

}  // namespace atelier::http
