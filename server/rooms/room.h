// Room: the live audience of one project. Holds the sessions subscribed to it and fans
// messages out to them: each message is built once (one shared payload) and handed to every
// session without copying, outside the room's lock, so that a slow session's own policy (its
// Outbox, on its own strand) never holds up the broadcast or the others.
//
// Also the project's presence: what each subscribed user said they are doing, the union over
// their sessions, announced in full on every change.
//
// The room decides what each message says; the LiveWire it is given (the API's) writes it.
//
// Contract: thread-safe. Members are held weakly: a session that is gone is skipped and pruned.
// deliver() is called outside the lock and must not block (a real session posts to its strand).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "server/http/outbox.h"
#include "server/rooms/live_wire.h"

namespace atelier::rooms {

using http::OutMessage;

// A subscribed connection, as the room sees it.
class RoomMember {
 public:
  virtual ~RoomMember() = default;
  virtual int64_t user_id() const = 0;
  virtual const std::string& username() const = 0;
  // Queues `message` for writing; never blocks. The session applies its Outbox policy
  // (dropping ephemeral messages, or closing with kCloseResume on a durable overflow).
  virtual void deliver(const OutMessage& message) = 0;
  // Several messages in order, as deliver() one by one would; a session may write them in one
  // system call.
  virtual void deliver_batch(std::span<const OutMessage> messages) {
    for (const auto& m : messages) deliver(m);
  }
};

// The messages a room broadcasts, each written once (by `wire`) to be shared by every session.
// A durable event (LiveWire::event), carrying its seq.
OutMessage event_out(const LiveWire& wire, int64_t project, int64_t seq,
                     const std::string& event_json);
// Ephemeral progress, coalesced per job in slow sessions' queues. `at`: when the step was
// reported.
OutMessage progress_out(const LiveWire& wire, int64_t project, int64_t job, int step, int steps,
                        StepTime at);
// A preview frame (already encoded once), coalesced per job.
OutMessage preview_out(int64_t project, int64_t job, std::shared_ptr<const std::string> frame);

class Room {
 public:
  // deferred_presence: changes of presence only mark the room; announce_presence_if_changed()
  // (the hub's ticker) sends one announcement for all of them. Without it every join, leave
  // and state change is announced at once, which costs O(members) each: with a thousand
  // people joining, a million messages.
  // `wire` writes every message the room sends.
  Room(int64_t project_id, std::shared_ptr<const LiveWire> wire, bool deferred_presence = false)
      : project_(project_id), wire_(std::move(wire)), deferred_presence_(deferred_presence) {}

  int64_t project() const { return project_; }

  // Adds a session (idempotent) and announces presence. Its presence state starts empty.
  void join(const std::shared_ptr<RoomMember>& member) ATELIER_EXCLUDES(mu_);
  // Removes a session and announces the new presence.
  void leave(const RoomMember* member) ATELIER_EXCLUDES(mu_);
  // Ends every subscription of `user_id` (a removed member): each of their sessions is sent
  // `unsubscribed` with `reason` (LiveWire::unsubscribed) and leaves. Returns how many.
  size_t remove_user(int64_t user_id, const std::string& reason) ATELIER_EXCLUDES(mu_);
  // Ends every subscription (the project was deleted), the same way. Returns how many.
  size_t remove_all(const std::string& reason) ATELIER_EXCLUDES(mu_);

  // A durable event object (as GET /projects/{id}/events returns it), wrapped once
  // (LiveWire::event) and sent to every session, carrying `seq`.
  void broadcast_event(int64_t seq, const std::string& event_json) ATELIER_EXCLUDES(mu_);
  void broadcast_progress(int64_t job, int step, int steps, StepTime at) ATELIER_EXCLUDES(mu_);
  void broadcast_preview(int64_t job, std::shared_ptr<const std::string> frame)
      ATELIER_EXCLUDES(mu_);
  // Several messages (built with the *_out functions above), in order, to every session: each
  // session gets them together, so it can write them in one system call.
  //
  // late (optional): asked now and then during the pass for ephemeral messages that came in
  // meanwhile, which it appends. The sessions not yet reached get them with the batch; those
  // already reached get them right after, in a second round. A step that comes in while a long
  // pass runs is thus not held up by the whole pass. Not for durable events: their order
  // across passes is the caller's.
  using LateMessages = std::function<void(std::vector<OutMessage>& out)>;
  void broadcast_batch(std::span<const OutMessage> messages, const LateMessages& late = {})
      ATELIER_EXCLUDES(mu_);
  // A session's presence state: the text of the JSON object the API checked, or empty for none
  // (opaque here, see PresenceMember::state); announces the new presence.
  void set_presence(const RoomMember* member, std::string state) ATELIER_EXCLUDES(mu_);

  // Announces the presence if it changed since the last announcement (deferred mode).
  void announce_presence_if_changed() ATELIER_EXCLUDES(mu_);

  // The presence announcement as it would go now (LiveWire::presence): one member per user, by
  // user id, with their sessions counted and the state of one of them that has one.
  std::string presence_json() const ATELIER_EXCLUDES(mu_);
  size_t size() const ATELIER_EXCLUDES(mu_);

 private:
  struct Entry {
    std::weak_ptr<RoomMember> member;
    int64_t user = 0;
    std::string username;
    std::string state;  // empty: none
  };

  // Every live member, pruning dead ones.
  std::vector<std::shared_ptr<RoomMember>> live_locked() ATELIER_REQUIRES(mu_);
  void send_all(const OutMessage& message) ATELIER_EXCLUDES(mu_);
  size_t remove_if(const std::function<bool(int64_t user)>& pred, const std::string& reason)
      ATELIER_EXCLUDES(mu_);
  // Announces now, or marks the room for the next tick in deferred mode.
  void presence_changed() ATELIER_EXCLUDES(mu_);
  void announce_presence() ATELIER_EXCLUDES(mu_);
  std::vector<PresenceMember> presence_locked() const ATELIER_REQUIRES(mu_);

  const int64_t project_;
  const std::shared_ptr<const LiveWire> wire_;
  const bool deferred_presence_;
  std::atomic<bool> presence_dirty_{false};
  mutable Mutex mu_;
  std::map<const RoomMember*, Entry> entries_ ATELIER_GUARDED_BY(mu_);
};

}  // namespace atelier::rooms
