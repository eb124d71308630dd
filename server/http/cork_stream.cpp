#include "server/http/cork_stream.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

namespace atelier::http {

CorkStream::TrySend CorkStream::try_send_locked(std::string_view header, std::string_view payload) {
  if (!gate_open_) return TrySend::kRefused;
  iovec iov[2] = {{const_cast<char*>(header.data()), header.size()},
                  {const_cast<char*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  const size_t total = header.size() + payload.size();
  ssize_t sent;
  do {
    sent = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent == static_cast<ssize_t>(total)) return TrySend::kSent;
  gate_open_ = false;  // full or failing: the strand's asynchronous write takes it from here
  if (sent <= 0) return TrySend::kRefused;
  const size_t done = static_cast<size_t>(sent);
  if (done < header.size()) {
    tail_.append(header.substr(done));
    tail_.append(payload);
  } else {
    tail_.append(payload.substr(done - header.size()));
  }
  return TrySend::kQueued;
}

void CorkStream::close_gate() {
  std::lock_guard lock(gate_mu_);
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
