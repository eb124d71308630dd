#include "server/http/cork_stream.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

namespace atelier::http {

size_t CorkStream::try_send_locked(const Frame* frames, size_t count) {
  size_t done = 0;
  while (done < count && gate_open_) {
    const size_t n = std::min(count - done, kMaxFramesPerCall);
    iovec iov[2 * kMaxFramesPerCall];
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      const Frame& f = frames[done + i];
      iov[2 * i] = {const_cast<char*>(f.header.data()), f.header.size()};
      iov[2 * i + 1] = {const_cast<char*>(f.payload.data()), f.payload.size()};
      total += f.header.size() + f.payload.size();
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2 * n;
    ssize_t sent;
    do {
      sent = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent == static_cast<ssize_t>(total)) {
      done += n;
      continue;
    }
    gate_open_ = false;  // full or failing: the strand's asynchronous write takes it from here
    if (sent <= 0) break;
    // Whole frames that went out count as done; the rest of a frame cut short is kept.
    size_t left = static_cast<size_t>(sent);
    for (size_t i = 0; i < n; ++i) {
      const Frame& f = frames[done];
      const size_t size = f.header.size() + f.payload.size();
      if (left >= size) {
        left -= size;
        ++done;
        continue;
      }
      if (left > 0) {
        if (left < f.header.size()) {
          tail_.append(f.header.substr(left));
          tail_.append(f.payload);
        } else {
          tail_.append(f.payload.substr(left - f.header.size()));
        }
        ++done;
      }
      break;
    }
    break;
  }
  return done;
}

void CorkStream::close_gate() {
  MutexLock lock(gate_mu_);
  gate_open_ = false;
  if (!tail_.empty()) {
    // The gate was open, so nothing was gathered: the rest of that frame goes first.
    gather_.insert(0, tail_);
    tail_.clear();
  }
}

void CorkStream::start_flush() {
  flushing_ = true;
  flush_started_ = std::chrono::steady_clock::now();
  in_flight_.swap(gather_);
  gather_.clear();
  // `this` outlives the write: a flush is started by the session, which holds itself in its
  // completion, or by one of Beast's operations, which hold the websocket stream that owns this.
  boost::asio::async_write(socket_, boost::asio::buffer(in_flight_),
                           [this](error_code ec, size_t) { on_flushed(ec); });
}

void CorkStream::on_flushed(error_code ec) {
  in_flight_.clear();
  if (ec) error_ = ec;
  if (!error_ && !gather_.empty()) return start_flush();  // appended while in flight
  flushing_ = false;
  if (error_) gather_.clear();
  // The owner (which owns this stream) stays alive to the end, even if a callback below lets go
  // of its last other reference.
  const auto listener = idle_listener_.lock();
  if (held_) held_(error_);
  if (flush_done_) flush_done_(error_);
  if (listener && !flushing_ && gather_.empty() && !error_) listener->writer_idle();
}

void beast_close_socket(CorkStream& stream) {
  stream.close_gate();
  boost::beast::error_code ec;
  stream.socket().close(ec);
}

}  // namespace atelier::http
