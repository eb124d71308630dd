// Outbox: one WebSocket session's queue of messages waiting to be written, capped in bytes.
//
// Why: a broadcast to a project's room must never wait for its slowest member, and a client
// that stops reading must not grow server memory without bound. Each session therefore owns an
// Outbox that the room pushes into without blocking, and the session's strand drains it with
// one write in flight. Messages share their payload (built once per broadcast, never copied per
// session), but each session counts the payload's size against its own cap.
//
// Policy when a push would pass the cap:
//   1. queued ephemeral messages (progress, previews, presence) are dropped, oldest first;
//   2. an ephemeral message that still does not fit is dropped itself;
//   3. a durable message (a project event) that still does not fit is refused with kOverflow:
//      the session must then close with kCloseResume and the client reconnects and resumes from
//      the last `seq` it saw, so it loses nothing.
// Ephemeral messages with a coalescing key (e.g. "progress 12 345": project 12, job 345) replace
// a queued one with the same key in its place: a slow reader gets the latest step of each job,
// not every step.
//
// Contract: not thread-safe; the session uses it from its strand only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

namespace atelier::http {

// WebSocket close code telling the client its queue overflowed: reconnect and subscribe with
// the last seq it saw (proto/websocket.md).
constexpr uint16_t kCloseResume = 4000;

struct OutMessage {
  enum class Kind { kDurable, kEphemeral };
  std::shared_ptr<const std::string> payload;  // shared by every session it goes to
  bool binary = false;                         // a preview frame; text (JSON) otherwise
  Kind kind = Kind::kDurable;
  std::string coalesce_key;  // ephemeral only; empty: never replaced
  int64_t seq = 0;           // a project event's seq (durable), for resume bookkeeping

  size_t bytes() const { return payload ? payload->size() : 0; }
};

struct OutboxStats {
  uint64_t dropped_ephemeral = 0;  // dropped to make room, or because none was left
  uint64_t replaced = 0;           // superseded by a newer message with the same key
};

class Outbox {
 public:
  enum class Push { kQueued, kReplaced, kDropped, kOverflow };

  // `max_bytes`: what queued and in-flight payloads may add up to. A single message larger than
  // the cap fits only into an empty outbox (so that one big preview is not refused forever).
  explicit Outbox(size_t max_bytes) : max_bytes_(max_bytes) {}

  Push push(OutMessage message);

  // The next message to write, now in flight; nullopt when one is already in flight or none is
  // queued. Its bytes count until finish_write().
  std::optional<OutMessage> start_write();
  void finish_write();
  // Drops everything queued (the connection is closing without flushing); the write in flight
  // still counts until finish_write().
  void clear_queued();

  bool empty() const { return queue_.empty() && !in_flight_; }
  size_t queued() const { return queue_.size(); }
  size_t bytes() const { return queued_bytes_ + in_flight_bytes_; }
  const OutboxStats& stats() const { return stats_; }

 private:
  bool fits(size_t more) const;
  // Drops queued ephemeral messages, oldest first, until `more` fits; false if it still does not.
  bool make_room(size_t more);

  const size_t max_bytes_;
  std::deque<OutMessage> queue_;
  size_t queued_bytes_ = 0;
  bool in_flight_ = false;
  size_t in_flight_bytes_ = 0;
  OutboxStats stats_;
};

}  // namespace atelier::http
