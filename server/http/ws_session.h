// One WebSocket connection: the Beast side of websocket.h's contract. Internal to server/http;
// includes Beast.
//
// Shape (Beast's chat-multi, plus a byte cap): everything runs on the connection's strand; one
// read pending at all times; one write in flight with the Outbox behind it; send() from any
// thread posts onto the strand. With WsOptions::direct_writes (the default), two shortcuts:
// while nothing is queued or in flight send() writes the frame itself, through the stream's gate,
// and the strand frames a burst into one buffer sent in one write (cork_stream.h). Without it,
// each message is one websocket::stream::async_write, the next started from its completion. Async
// handlers hold a shared_ptr to the session, never `this`. The handler is released when the
// connection ends, breaking the cycle between a handler that keeps its connection and the
// connection that keeps its handler.
//
// Memory of incoming messages: a message is read in pieces of at most kReadPiece bytes. The
// first piece of each message is free (bounded per connection, like a request header); before
// each further piece the message's bytes so far plus that piece are charged to the server's
// body budget, and when it has no room the connection closes with 1013 (try again later). The
// charge is released once the message has been handed to the handler.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/http/cork_stream.h"
#include "server/http/outbox.h"
#include "server/http/session.h"
#include "server/http/websocket.h"

namespace atelier::http {

class WsSession : public Connection,
                  public WsConnection,
                  public WriterIdleListener,
                  public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(boost::beast::tcp_stream&& stream, std::shared_ptr<ServerState> state,
            ConnectionLimits::Slot slot, std::string remote, WsAccept accept);
  ~WsSession() override;

  // Completes the handshake for `request` (the upgrade the route accepted), then runs.
  void run(boost::beast::http::request<boost::beast::http::string_body> request);

  // WsConnection
  void send(OutMessage message) override;
  void send_batch(std::span<const OutMessage> messages) override;
  void close(uint16_t code, std::string reason, bool flush) override;
  void when_drained(size_t bytes, std::function<void()> fn) override;
  const std::string& remote_address() const override { return remote_; }

  // Connection (shutdown): close with 1001 after what is queued; or cut the socket now.
  void begin_drain() override;
  void force_close() override;

  // WriterIdleListener: everything written (ours, or Beast's ping or pong): write what was
  // queued meanwhile, or open the gate.
  void writer_idle() override;

 private:
  void on_accept(boost::beast::error_code ec);
  void read_next();
  void on_read(boost::beast::error_code ec, size_t n);
  void enqueue(OutMessage message);
  // On the strand: moves what send() collected into the Outbox, then writes.
  void drain_inbox();
  void request_close(uint16_t code, std::string reason, bool flush);
  // Writes the next queued message, or the close frame once one is requested and due.
  void pump();
  // Plain mode: one async_write for the next queued message; its completion pumps again.
  void write_next();
  // Sends what a burst gathered (see CorkStream); writer_idle() follows once it is out.
  void flush();
  // Lets send() write directly again once nothing is queued, gathered or in flight.
  void open_gate_if_idle();
  void cut();
  void arm_watchdog();
  // Runs the drain waiter if the Outbox is down to its mark.
  void check_drained();
  // The connection is over: tells the handler (once) and lets it go.
  void finish();

  // First member, so it is destroyed last (it owns the io_context the socket belongs to).
  std::shared_ptr<ServerState> state_;
  ConnectionLimits::Slot slot_;
  // On the plain socket: Beast's websocket stream has its own timeouts, and the tcp_stream's
  // per-operation timer bookkeeping cost more than the write itself at a thousand sessions.
  // The connection's strand, concretely typed (first: the socket is built on it). Sends post
  // here, and the socket's completions run here, without the type erasure of any_io_executor.
  Strand strand_;
  boost::beast::websocket::stream<CorkStream> ws_;
  boost::beast::flat_buffer read_buffer_;
  BodyBudget::Charge read_charge_;  // the message being assembled in read_buffer_
  bool reading_ = false;            // a read is pending
  std::string remote_;
  WsOptions options_;
  std::shared_ptr<WsHandler> handler_;
  Outbox outbox_;
  // Watchdog for a write that never completes (a client that stopped reading): one periodic
  // check per session rather than a timer armed and cancelled around every write.
  boost::asio::steady_timer watchdog_;
  boost::asio::steady_timer close_timer_;
  boost::asio::steady_timer first_message_timer_;
  using Clock = std::chrono::steady_clock;
  bool writing_ = false;             // plain mode: an async_write in flight
  Clock::time_point write_started_;  // plain mode: of that write, for the watchdog
  bool got_message_ = false;
  bool open_ = false;  // handshake done
  bool close_requested_ = false;
  bool close_flush_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  uint16_t close_code_ = kCloseNormal;
  std::string close_reason_;
  // What send() hands over from other threads when it cannot write directly (the gate is shut:
  // something is queued or being written): one post per batch, not per message, so a burst of
  // broadcasts costs each session one trip through the scheduler. Guarded by the stream's gate
  // mutex, so that "nothing queued" and "the gate is open" are decided together.
  std::vector<OutMessage> inbox_ ATELIER_GUARDED_BY(ws_.next_layer().gate_mutex());
  bool drain_posted_ ATELIER_GUARDED_BY(ws_.next_layer().gate_mutex()) = false;
  size_t drain_mark_ = 0;
  std::function<void()> drain_waiter_;
};

}  // namespace atelier::http
