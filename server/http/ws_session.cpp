#include "server/http/ws_session.h"

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <exception>
#include <stdexcept>

#include "common/logging.h"

namespace atelier::http {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;

namespace {

constexpr std::chrono::seconds kHandshakeTimeout{10};
// A burst is sent once it has gathered this much, even if more is queued behind it.
constexpr size_t kMaxGatherBytes = 64 * 1024;
// The most one read appends to a message being received (see the header on the budget).
constexpr size_t kReadPiece = 16 * 1024;
// RFC 6455 section 7.4.1 (registered): the server is overloaded; the client may retry later.
constexpr uint16_t kCloseTryAgainLater = 1013;

// The same connection as a socket whose executor is the strand's own type.
Socket rebind(net::ip::tcp::socket socket, const Strand& strand) {
  beast::error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  return Socket(strand, protocol, socket.release());
}

// The strand the accepted socket runs on (HttpServer accepts every socket onto its own strand).
Strand strand_of(net::ip::tcp::socket& socket) {
  const Strand* strand = socket.get_executor().target<Strand>();
  if (!strand)
    throw std::logic_error("a WebSocket's socket must run on a strand of the io_context");
  return *strand;
}

// RFC 6455 header of a server frame (final, unmasked) carrying `size` bytes.
std::string_view frame_header(bool binary, size_t size, char (&buf)[10]) {
  buf[0] = static_cast<char>(0x80 | (binary ? 0x2 : 0x1));
  if (size < 126) {
    buf[1] = static_cast<char>(size);
    return {buf, 2};
  }
  if (size <= 0xffff) {
    buf[1] = 126;
    buf[2] = static_cast<char>(size >> 8);
    buf[3] = static_cast<char>(size & 0xff);
    return {buf, 4};
  }
  buf[1] = 127;
  for (int i = 0; i < 8; ++i)
    buf[2 + i] = static_cast<char>((uint64_t{size} >> (56 - 8 * i)) & 0xff);
  return {buf, 10};
}

}  // namespace

WsSession::WsSession(beast::tcp_stream&& stream, std::shared_ptr<ServerState> state,
                     ConnectionLimits::Slot slot, std::string remote, WsAccept accept)
    : state_(std::move(state)),
      slot_(std::move(slot)),
      strand_(strand_of(stream.socket())),
      ws_(rebind(std::move(stream).release_socket(), strand_)),
      read_charge_(*state_->body_budget->try_charge(0)),  // zero bytes always fit
      remote_(std::move(remote)),
      options_(accept.options),
      handler_(std::move(accept.handler)),
      outbox_(accept.options.max_queue_bytes),
      watchdog_(strand_),
      close_timer_(strand_),
      first_message_timer_(strand_) {
  ws_.next_layer().set_corked(options_.direct_writes);
  if (state_->open_connections) state_->open_connections->add(1);
  state_->session_count.fetch_add(1);
}

WsSession::~WsSession() {
  // Normally finish() ran on the strand; this covers handlers discarded at shutdown.
  if (!finished_ && handler_) {
    try {
      handler_->on_close();
    } catch (const std::exception& e) {
      log::warn("a WebSocket handler threw in on_close: {}", e.what());
    }
  }
  MutexLock lock(state_->sessions_mu);
  state_->sessions.erase(this);
  if (state_->open_connections && !state_->io_stopped.load()) state_->open_connections->add(-1);
  state_->session_count.fetch_sub(1);
}

void WsSession::run(beast::http::request<beast::http::string_body> request) {
  {
    MutexLock lock(state_->sessions_mu);
    state_->sessions[this] = weak_from_this();
  }
  ws_.next_layer().set_idle_listener(weak_from_this());
  // Beast's own timeouts replace the TCP stream's: the handshake is bounded, and a client
  // silent for half the idle time is pinged, then dropped when the rest passes without a word.
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = kHandshakeTimeout;
  timeouts.idle_timeout = options_.idle_timeout;
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "atelier"); }));
  ws_.read_message_max(options_.max_message_bytes);
  // Messages are built whole before they are queued; sending each as one frame is cheapest.
  ws_.auto_fragment(false);
  ws_.async_accept(request, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) return finish();
  open_ = true;
  if (state_->draining.load()) {
    request_close(kCloseGoingAway, "server shutting down", false);
  } else if (handler_) {
    try {
      handler_->on_open(shared_from_this());
    } catch (const std::exception& e) {
      log::warn("a WebSocket handler threw in on_open: {}", e.what());
      request_close(1011, "internal error", false);
    }
  }
  if (options_.first_message_timeout.count() > 0) {
    first_message_timer_.expires_after(options_.first_message_timeout);
    first_message_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->got_message_) {
        self->request_close(self->options_.first_message_close_code, "no greeting in time", false);
      }
    });
  }
  read_next();
  arm_watchdog();
  pump();
}

void WsSession::arm_watchdog() {
  // A write that makes no progress for idle_timeout means a client that stopped reading.
  watchdog_.expires_after(options_.idle_timeout / 2);
  watchdog_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->finished_) return;
    const bool stalled =
        self->options_.direct_writes
            ? self->ws_.next_layer().stalled_for(self->options_.idle_timeout)
            : self->writing_ && Clock::now() - self->write_started_ >= self->options_.idle_timeout;
    if (stalled) {
      log::info("WebSocket client {} stopped reading; disconnecting", self->remote_);
      return self->cut();
    }
    self->arm_watchdog();
  });
}

void WsSession::read_next() {
  // A message continued past its first piece is charged for what it holds plus the next piece.
  if (read_buffer_.size() > 0) {
    if (!read_charge_.grow_to(read_buffer_.size() + kReadPiece)) {
      if (state_->body_budget_refusals) state_->body_budget_refusals->inc();
      read_charge_.reset();
      read_buffer_.consume(read_buffer_.size());
      read_buffer_.shrink_to_fit();
      // No read is pending now: the close's completion finishes the session.
      return request_close(kCloseTryAgainLater, "server busy; try again later", false);
    }
  }
  reading_ = true;
  ws_.async_read_some(read_buffer_, kReadPiece,
                      beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
}

void WsSession::on_read(beast::error_code ec, size_t) {
  reading_ = false;
  // Closed by the peer or by us, timed out, too big (Beast has then sent 1009), or cut.
  if (ec) return finish();
  if (!ws_.is_message_done()) return read_next();
  if (!got_message_) {
    got_message_ = true;
    first_message_timer_.cancel();
  }
  std::string message = beast::buffers_to_string(read_buffer_.data());
  read_buffer_.consume(read_buffer_.size());
  // An idle connection keeps a small buffer, whatever its largest message was.
  if (read_buffer_.capacity() > kReadPiece) read_buffer_.shrink_to_fit();
  read_charge_.reset();
  const bool binary = !ws_.got_text();
  if (handler_ && !close_requested_) {
    try {
      handler_->on_message(std::move(message), binary);
    } catch (const std::exception& e) {
      log::warn("a WebSocket handler threw in on_message: {}", e.what());
      request_close(1011, "internal error", false);
    }
  }
  read_next();
}

void WsSession::send(OutMessage message) {
  send_batch(std::span<const OutMessage>(&message, 1));
}

void WsSession::send_batch(std::span<const OutMessage> messages) {
  if (messages.empty()) return;
  // Named through ws_ (not a local reference) so that the analysis sees one gate mutex.
  {
    MutexLock lock(ws_.next_layer().gate_mutex());
    size_t taken = 0;
    if (options_.direct_writes && inbox_.empty() && !drain_posted_) {
      // Nothing queued anywhere: write them now, from this thread, as Beast would frame them,
      // one system call for up to kMaxFramesPerCall of them.
      constexpr size_t kChunk = CorkStream::kMaxFramesPerCall;
      char headers[kChunk][10];
      CorkStream::Frame frames[kChunk];
      while (taken < messages.size()) {
        const size_t n = std::min(messages.size() - taken, kChunk);
        for (size_t i = 0; i < n; ++i) {
          const OutMessage& m = messages[taken + i];
          frames[i] = {frame_header(m.binary, m.payload->size(), headers[i]), *m.payload};
        }
        const size_t done = ws_.next_layer().try_send_locked(frames, n);
        taken += done;
        if (done < n) break;
      }
      if (taken == messages.size() && !ws_.next_layer().has_tail_locked()) return;
    }
    // The rest waits for the strand, which also sends what a direct write left unsent.
    inbox_.insert(inbox_.end(), messages.begin() + static_cast<std::ptrdiff_t>(taken),
                  messages.end());
    if (drain_posted_) return;
    drain_posted_ = true;
  }
  net::post(strand_, [self = shared_from_this()] { self->drain_inbox(); });
}

void WsSession::drain_inbox() {
  std::vector<OutMessage> batch;
  {
    MutexLock lock(ws_.next_layer().gate_mutex());
    batch.swap(inbox_);
    drain_posted_ = false;
  }
  for (auto& m : batch) enqueue(std::move(m));
  pump();  // also sends what a direct write left unsent
}

void WsSession::enqueue(OutMessage message) {
  if (finished_ || close_requested_) return;
  if (outbox_.push(std::move(message)) == Outbox::Push::kOverflow) {
    // The client fell too far behind to keep every durable event: it resumes from its last seq.
    return request_close(kCloseResume, "send queue overflowed; resume from your last seq", false);
  }
}

void WsSession::close(uint16_t code, std::string reason, bool flush) {
  net::post(strand_, [self = shared_from_this(), code, r = std::move(reason), flush] {
    self->request_close(code, r, flush);
  });
}

void WsSession::request_close(uint16_t code, std::string reason, bool flush) {
  if (finished_ || close_requested_) return;
  close_requested_ = true;
  ws_.next_layer().close_gate();
  close_code_ = code;
  close_reason_ = std::move(reason);
  close_flush_ = flush;
  if (!flush) outbox_.clear_queued();
  // A client that has stopped reading never lets the close frame out: cut it off instead.
  close_timer_.expires_after(options_.close_timeout);
  close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec && !self->finished_) self->cut();
  });
  pump();
}

void WsSession::pump() {
  CorkStream& out = ws_.next_layer();
  if (!open_ || finished_ || out.flushing() || writing_ || close_sent_) return;
  out.close_gate();  // from here the strand writes; what a direct write left goes first
  if (close_requested_ && (!close_flush_ || outbox_.empty())) {
    close_sent_ = true;
    ws_.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
        [self = shared_from_this()](beast::error_code ec) {
          // The pending read ends the session when the peer's close arrives (or
          // the socket goes); a failed close has nothing left to wait for.
          if (ec) self->cut();
          if (!self->reading_) self->finish();  // no read to end it (refused by the budget)
        });
    return;
  }
  if (!options_.direct_writes) return write_next();
  // Everything queued (up to a mark) is framed into the stream's buffer, then sent in one write.
  while (out.gathered_bytes() < kMaxGatherBytes) {
    auto message = outbox_.start_write();
    if (!message) break;
    ws_.text(!message->binary);
    beast::error_code ec;
    ws_.write(net::buffer(*message->payload), ec);
    outbox_.finish_write();
    if (ec) return cut();
  }
  if (out.gathered_bytes() > 0) return flush();
  open_gate_if_idle();
}

void WsSession::write_next() {
  auto message = outbox_.start_write();
  if (!message) return;
  writing_ = true;
  write_started_ = Clock::now();
  ws_.text(!message->binary);
  // The handler holds the payload: Beast writes from it until the write completes.
  ws_.async_write(
      net::buffer(*message->payload),
      [self = shared_from_this(), payload = message->payload](beast::error_code ec, size_t) {
        self->writing_ = false;
        self->outbox_.finish_write();
        if (ec) return self->cut();
        self->pump();
        self->check_drained();
      });
}

void WsSession::flush() {
  ws_.next_layer().async_flush([self = shared_from_this()](beast::error_code ec) {
    if (ec) self->cut();
  });
}

void WsSession::writer_idle() {
  pump();
  check_drained();
}

void WsSession::open_gate_if_idle() {
  CorkStream& out = ws_.next_layer();
  if (!options_.direct_writes || !open_ || finished_ || close_requested_ || !outbox_.empty() ||
      out.flushing() || out.gathered_bytes() > 0) {
    return;
  }
  MutexLock lock(ws_.next_layer().gate_mutex());
  if (inbox_.empty() && !drain_posted_) ws_.next_layer().open_gate_locked();
}

void WsSession::when_drained(size_t bytes, std::function<void()> fn) {
  net::post(strand_, [self = shared_from_this(), bytes, f = std::move(fn)]() mutable {
    if (self->finished_ || self->close_requested_) return;
    self->drain_mark_ = bytes;
    self->drain_waiter_ = std::move(f);
    self->check_drained();
  });
}

void WsSession::check_drained() {
  if (!drain_waiter_ || finished_ || close_requested_ || outbox_.bytes() > drain_mark_) return;
  auto fn = std::move(drain_waiter_);
  drain_waiter_ = nullptr;
  fn();
}

void WsSession::cut() {
  ws_.next_layer().close_gate();  // no other thread may send on a descriptor about to close
  beast::error_code ec;
  ws_.next_layer().socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  ws_.next_layer().socket().close(ec);  // the pending read fails and finishes the session
}

void WsSession::finish() {
  if (finished_) return;
  finished_ = true;
  ws_.next_layer().close_gate();
  watchdog_.cancel();
  close_timer_.cancel();
  first_message_timer_.cancel();
  outbox_.clear_queued();
  read_charge_.reset();
  drain_waiter_ = nullptr;
  auto handler = std::move(handler_);
  if (handler) {
    try {
      handler->on_close();
    } catch (const std::exception& e) {
      log::warn("a WebSocket handler threw in on_close: {}", e.what());
    }
  }
  if (!close_sent_) cut();
}

void WsSession::begin_drain() {
  close(kCloseGoingAway, "server shutting down", true);
}

void WsSession::force_close() {
  net::post(strand_, [self = shared_from_this()] { self->cut(); });
}

}  // namespace atelier::http
