// WebSocket connections, as the application sees them. No Beast here: a route handler accepts an
// upgrade by answering with Response::websocket (see message.h) and a WsHandler; the connection
// (server/http/ws_session.cpp) then calls the handler and gives it a WsConnection to send with.
//
// Contract:
//   * Handler callbacks run on the connection's strand, one at a time, in this order: on_open
//     once, on_message for each complete client message, on_close exactly once (whatever ended
//     the connection, including a refused handshake, in which case on_open never ran).
//   * WsConnection methods are thread-safe and never block: send() queues into the connection's
//     Outbox (one write in flight, capped in bytes, see outbox.h). A durable message that
//     overflows it closes the connection with kCloseResume, without writing what was queued.
//   * Client messages over max_message_bytes close the connection with 1009 (Beast does so).
//     Messages being assembled are charged to the server's body budget (max_buffered_body_bytes);
//     when it is spent the connection closes with 1013 (try again later).
//   * Optionally, a client must speak first within first_message_timeout (see WsOptions).
//   * Heartbeats: the server pings when the client has been silent for half of idle_timeout and
//     closes the connection when it stays silent for idle_timeout (a pong counts).
//   * A close that cannot be written (a client that stopped reading) cuts the TCP connection
//     after close_timeout, so a dead client never holds its memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "server/http/message.h"
#include "server/http/outbox.h"

namespace atelier::http {

// Close codes from RFC 6455 the server uses (the application ones are in proto/websocket.md).
constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseGoingAway = 1001;
constexpr uint16_t kClosePolicy = 1008;
constexpr uint16_t kCloseTooBig = 1009;

struct WsOptions {
  size_t max_message_bytes = 64 << 10;
  size_t max_queue_bytes = 1 << 20;
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds close_timeout{5'000};
  // When positive: a client that sends no message within this time after the handshake is
  // closed with first_message_close_code (a protocol that starts with a greeting).
  std::chrono::milliseconds first_message_timeout{0};
  uint16_t first_message_close_code = 1008;
  // How messages reach the socket (config key ws_direct_writes). true: send() writes the frames
  // itself from the calling thread while nothing is queued, and the strand gathers bursts into
  // one system call (cork_stream.h). false: plain Beast, as in its chat-multi example: send()
  // posts to the strand, which runs one websocket::stream::async_write at a time, the next one
  // started from the previous one's completion.
  bool direct_writes = true;
};

class WsConnection {
 public:
  virtual ~WsConnection() = default;
  virtual void send(OutMessage message) = 0;
  // Several messages in order, as send() would one by one; a session may write them in one
  // system call (a broadcast pass that has several messages for every session).
  virtual void send_batch(std::span<const OutMessage> messages) {
    for (const auto& m : messages) send(m);
  }
  // A text message that is the connection's own (not shared with others), e.g. an answer.
  void send_text(std::string text, OutMessage::Kind kind = OutMessage::Kind::kDurable) {
    send(OutMessage{std::make_shared<const std::string>(std::move(text)), false, kind, {}, 0});
  }
  // Closes with `code`. flush: after the messages already queued are written (an error message
  // sent just before); otherwise they are dropped. Idempotent: the first close wins.
  virtual void close(uint16_t code, std::string reason, bool flush) = 0;
  // Runs `fn` on the connection's strand once at most `bytes` are queued and in flight (soon,
  // if that is already so). For producers that pace themselves, such as a replay of a long log:
  // what they send is theirs alone, so they wait instead of overflowing the queue. Dropped if
  // the connection ends first. One waiter at a time: a second call replaces the first.
  virtual void when_drained(size_t bytes, std::function<void()> fn) = 0;
  virtual const std::string& remote_address() const = 0;
};

class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void on_open(const std::shared_ptr<WsConnection>& connection) = 0;
  virtual void on_message(std::string message, bool binary) = 0;
  virtual void on_close() = 0;
};

// What a route answers to accept an upgrade (Response::websocket).
struct WsAccept {
  std::shared_ptr<WsHandler> handler;
  WsOptions options;
};

// True when `request` asks for a WebSocket upgrade (GET, `Upgrade: websocket`, `Connection`
// naming upgrade, a `Sec-WebSocket-Key` and version 13). Routes answer 426 otherwise.
bool is_websocket_upgrade(const Request& request);

}  // namespace atelier::http
