// CorkStream: the TCP socket under a WebSocket session, gathering the session's messages into
// one system call per burst. Internal to server/http; includes Asio and Beast.
//
// Why: one send() costs far more than copying its bytes: the kernel runs TCP's whole transmit
// path (and on loopback the receiver's input path too) once per call. A broadcast burst (a job's
// end and the next one's start, a step's progress and its preview) reaches each session as
// several messages; written one call each (and one trip through the scheduler each), a burst
// multiplies that work by its length for every subscriber.
//
// Contract (all on the socket's strand, like the websocket::stream above it):
// - The session frames its messages with Beast's synchronous write, which lands in write_some():
//   the bytes are appended, nothing blocks. async_flush() then sends them in one write.
// - Beast's own asynchronous writes (ping, pong, close, the handshake reply) are appended too,
//   behind what is already there, and flushed; they complete once their bytes are out.
// - While the strand has nothing to write, other threads may send whole frames directly through
//   the gate (see below); the strand shuts the gate before it writes anything.
// - Bytes never overtake each other and every frame is appended whole, so frames never
//   interleave. After a failed write every later write fails with the same error.
// The session bounds what it appends between flushes.
// Uncorked (set_corked(false), the session's plain mode): none of the above; Beast writes
// straight to the socket, as over any stream.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/mutex.h"

namespace atelier::http {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Strand>;

// What the stream tells its owner: the owner decides when the gate may open again.
class WriterIdleListener {
 public:
  virtual ~WriterIdleListener() = default;
  // On the strand: every write has completed and nothing is gathered, so the owner may write
  // what it queued meanwhile (or open the gate).
  virtual void writer_idle() = 0;
};

class CorkStream {
 public:
  using executor_type = Strand;
  using error_code = boost::beast::error_code;
  // A waiter for the end of a write: Asio's type-erased, move-only completion handler.
  using Completion = boost::asio::any_completion_handler<void(error_code)>;

  explicit CorkStream(Socket socket) : socket_(std::move(socket)) {}

  // Held weakly: Beast's operations keep this stream alive, possibly longer than its owner.
  void set_idle_listener(std::weak_ptr<WriterIdleListener> listener) {
    idle_listener_ = std::move(listener);
  }

  // Off (ws_direct_writes = false): a plain socket under Beast. Its asynchronous writes go
  // straight to the socket, one at a time; nothing is gathered and the gate never opens.
  void set_corked(bool corked) { corked_ = corked; }

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  // Deliberately not `next_layer()`: Beast then treats this stream as the lowest layer and its
  // timeouts close the socket through beast_close_socket() below, which shuts the gate first.
  Socket& socket() noexcept { return socket_; }

  bool flushing() const { return flushing_; }
  // True while a write has been in flight for at least `d` (a peer that stopped reading).
  bool stalled_for(std::chrono::steady_clock::duration d) const {
    return flushing_ && std::chrono::steady_clock::now() - flush_started_ >= d;
  }
  size_t gathered_bytes() const { return gather_.size(); }

  // ---- The gate: writes straight from other threads while the strand has nothing to write.
  // A broadcast then costs one send() per subscriber, with no trip through the scheduler and no
  // wake-up of an I/O thread. The owner holds gate_mutex() around try_send_locked() and
  // open_gate_locked(), together with whatever else must be decided atomically with them (its
  // own queue). Every write the strand makes shuts the gate first (close_gate()), so at any
  // moment either the strand or a gate writer owns the socket's sending side.
  Mutex& gate_mutex() ATELIER_RETURN_CAPABILITY(gate_mu_) { return gate_mu_; }
  // One WebSocket frame as two pieces: its header, and its payload (shared, not copied).
  struct Frame {
    std::string_view header, payload;
  };
  // Under gate_mutex(). Writes as many of `frames` as the socket takes, in one sendmsg() per
  // kMaxFramesPerCall, and returns how many are taken care of: sent whole, or (the last one)
  // sent in part with the rest kept to go out first on the strand's next write. When that is
  // fewer than `count` the gate is shut: the caller queues the frames from the returned index
  // on and makes the strand run (also when the count is reached through a kept rest). 0: the
  // gate was shut or the socket full; nothing was sent.
  static constexpr size_t kMaxFramesPerCall = 64;
  size_t try_send_locked(const Frame* frames, size_t count) ATELIER_REQUIRES(gate_mu_);
  // True while part of a frame written through the gate waits for the strand.
  bool has_tail_locked() const ATELIER_REQUIRES(gate_mu_) { return !tail_.empty(); }
  // Under gate_mutex(), on the strand.
  void open_gate_locked() ATELIER_REQUIRES(gate_mu_) { gate_open_ = true; }
  // On the strand: shuts the gate and takes over whatever a gate writer left unsent.
  void close_gate() ATELIER_EXCLUDES(gate_mu_);

  // Synchronous write (what Beast's websocket::stream::write calls): appends and returns at once.
  // Nothing is sent until async_flush().
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers, error_code& ec) {
    close_gate();
    ec = error_;
    if (error_) return 0;
    return append(buffers);
  }
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers) {
    error_code ec;
    const size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  // Sends everything appended so far; done(ec) runs on the strand once it is all written.
  template <class Done>
  void async_flush(Done done) {
    close_gate();
    if (gather_.empty() && !flushing_) {
      boost::asio::post(socket_.get_executor(),
                        boost::beast::bind_front_handler(std::move(done), error_));
      return;
    }
    if (flush_done_) {  // a second waiter (a teardown during the session's flush): both run
      set(flush_done_, Completion([first = std::move(flush_done_),
                                   then = std::move(done)](error_code ec) mutable {
            first(ec);
            then(ec);
          }));
    } else {
      set(flush_done_, Completion(std::move(done)));
    }
    if (!flushing_) start_flush();
  }

  // Present for Beast's SyncStream check; the session never reads synchronously.
  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    return socket_.read_some(buffers, ec);
  }
  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    return socket_.read_some(buffers);
  }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return socket_.async_read_some(buffers, std::forward<Handler>(handler));
  }

  // Beast's own asynchronous writes (handshake reply, ping, pong, close): appended behind what
  // is gathered and flushed; they complete once their bytes are out. Beast has at most one
  // outstanding at a time, so one slot holds it.
  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return boost::asio::async_initiate<Handler, void(error_code, size_t)>(
        [this](auto h, const ConstBuffers& b) {
          if (corked_) return initiate_write(std::move(h), b);
          socket_.async_write_some(b, std::move(h));
        },
        handler, buffers);
  }

 private:
  template <class ConstBuffers>
  size_t append(const ConstBuffers& buffers) {
    size_t n = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::const_buffer b(*it);
      gather_.append(static_cast<const char*>(b.data()), b.size());
      n += b.size();
    }
    return n;
  }

  template <class Handler, class ConstBuffers>
  void initiate_write(Handler handler, const ConstBuffers& buffers) {
    close_gate();
    const auto ex = socket_.get_executor();
    if (error_) {
      boost::asio::post(ex, boost::beast::bind_front_handler(std::move(handler), error_, 0));
      return;
    }
    const size_t n = append(buffers);
    set(held_, Completion([ex, h = std::move(handler), n](error_code ec) mutable {
          boost::asio::post(ex, boost::beast::bind_front_handler(std::move(h), ec, ec ? 0 : n));
        }));
    if (!flushing_) start_flush();
  }

  // Boost 1.81's any_completion_handler move assignment wraps its argument in a copy of itself
  // (fixed in 1.82): swap instead of assigning.
  static void set(Completion& slot, Completion value) { slot.swap(value); }

  void start_flush();
  void on_flushed(error_code ec);

  Socket socket_;
  bool corked_ = true;
  std::string gather_;     // bytes appended and not yet sent (strand only)
  std::string in_flight_;  // the bytes of the write in flight (strand only)
  bool flushing_ = false;
  std::chrono::steady_clock::time_point flush_started_;  // of the write in flight
  error_code error_;
  Completion held_;        // Beast's write waiting for its bytes to go out
  Completion flush_done_;  // the session's (or teardown's) flush waiting likewise
  std::weak_ptr<WriterIdleListener> idle_listener_;
  Mutex gate_mu_;
  bool gate_open_ ATELIER_GUARDED_BY(gate_mu_) = false;
  std::string tail_ ATELIER_GUARDED_BY(gate_mu_);  // what a gate writer could not send
};

// Beast closes the lowest layer on a timeout: shut the gate first, so no other thread can send
// on a descriptor that may be reused.
void beast_close_socket(CorkStream& stream);

// Beast's close handshake ends by tearing down the layer below the websocket stream: anything
// still gathered goes out first.
template <class Handler>
void async_teardown(boost::beast::role_type role, CorkStream& stream, Handler&& handler) {
  stream.async_flush(
      [&stream, role, h = std::forward<Handler>(handler)](boost::beast::error_code) mutable {
        boost::beast::websocket::async_teardown(role, stream.socket(), std::move(h));
      });
}

inline void teardown(boost::beast::role_type role, CorkStream& stream,
                     boost::beast::error_code& ec) {
  stream.close_gate();
  boost::beast::websocket::teardown(role, stream.socket(), ec);
}

}  // namespace atelier::http
