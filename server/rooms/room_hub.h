// RoomHub: every live project room of one server, and the feeds into them.
//
//   * Durable events: the event bus hands each committed domain event to on_committed() on the
//     writer thread; one feed thread serializes it once (with the API's encoder) and broadcasts
//     it to the project's room, in commit order, so every session sees a project's events in seq
//     order. Events are thus always committed before anyone hears of them. A member who left or
//     was removed stops hearing the room at once, and a deleted project ends every subscription.
//   * Progress and previews: the bus hands each step to on_progress() on a worker thread; the
//     preview (when the hub asked for one through wants_preview()) is encoded once there,
//     throttled per job (the throttle starts at the job's job.started, on the writer thread,
//     before its worker gets the run, and forgets the job at its end), and its frame shared by
//     every session. Both are stamped with the step's
//     time and queued for the feed thread, so a worker never spends its step sending to
//     thousands of sessions. A step's progress replaces an older one of the same job still
//     waiting.
//   * One pass of the feed thread takes everything waiting (steps, and up to
//     kMaxEventsPerPass events, so that a burst of events holds progress up by one bounded pass
//     at most) and hands each room's share to every session at once: a session behind nothing
//     writes a job's end, the next one's start, a step's progress and its preview in one system
//     call. The slower the passes (more subscribers), the more each carries, so the cost per
//     message falls as the load grows. In a pass steps go before events, so progress may reach a
//     client before the job's job.started. A step that comes in during a long pass joins it for
//     the sessions the pass has not reached yet (see Room::broadcast_batch).
//   * Presence: the feed thread also announces each room's presence changes, batched every
//     presence_interval_ms.
//
// Rooms exist while someone is subscribed: join() creates one, leave() drops it once empty.
//
// Contract: thread-safe. on_committed() never blocks: the feed only posts to sessions
// (each session's Outbox bounds its own memory), so it keeps up with any commit rate.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/image.h"
#include "common/mutex.h"
#include "server/events/domain_event.h"
#include "server/rooms/preview.h"
#include "server/rooms/room.h"

namespace atelier::rooms {

struct RoomHubOptions {
  std::chrono::milliseconds preview_interval{250};  // at most 4 previews a second per job
  // Presence changes are announced at most this often per room, all of them at once (0: each
  // at once). A thousand people joining then cost a few announcements, not a million messages.
  std::chrono::milliseconds presence_interval{100};
};

struct RoomHubStats {
  uint64_t events_broadcast = 0;  // events that found a room (with anyone in it)
  uint64_t previews_encoded = 0;
  size_t rooms = 0;
  size_t throttled_jobs = 0;  // running jobs the preview throttle tracks
};

class RoomHub {
 public:
  // `event_json`: an event's wire form (the object GET /projects/{id}/events lists), written by
  // the API layer.
  using EventToJson = std::function<std::string(const events::CommittedEvent&)>;

  // `wire` writes the rooms' messages (the API layer's LiveWire); every room gets it.
  RoomHub(RoomHubOptions options, std::shared_ptr<const LiveWire> wire, EventToJson event_json,
          PreviewThrottle::Clock now);
  ~RoomHub();  // stop()
  RoomHub(const RoomHub&) = delete;
  RoomHub& operator=(const RoomHub&) = delete;

  void start() ATELIER_EXCLUDES(feed_mu_);
  // Sends what is queued, then stops the feed thread. Idempotent.
  void stop() ATELIER_EXCLUDES(feed_mu_);

  // Adds `member` to the project's room (created on demand) and returns the room.
  std::shared_ptr<Room> join(int64_t project, const std::shared_ptr<RoomMember>& member)
      ATELIER_EXCLUDES(rooms_mu_);
  // Removes `member`; the room goes once nobody is left.
  void leave(int64_t project, const RoomMember* member) ATELIER_EXCLUDES(rooms_mu_);
  // The project's room, or null when nobody watches it.
  std::shared_ptr<Room> find(int64_t project) const ATELIER_EXCLUDES(rooms_mu_);

  // From the writer thread (EventBus): starts or ends the job's preview throttle, then queues
  // the event for the feed.
  void on_committed(const events::CommittedEvent& event) ATELIER_EXCLUDES(feed_mu_);
  // Blocks until every event and step queued before the call has been sent (tests, benchmarks).
  void flush() ATELIER_EXCLUDES(feed_mu_);

  // From worker threads (EventBus: the preview demand, and progress).
  bool wants_preview(const jobs::Job& job) const ATELIER_EXCLUDES(rooms_mu_);
  void on_progress(const events::JobProgress& progress) ATELIER_EXCLUDES(rooms_mu_, feed_mu_);

  RoomHubStats stats() const ATELIER_EXCLUDES(rooms_mu_);

 private:
  // What the feed sends for a step: its progress, or its preview frame.
  struct StepItem {
    int64_t project = 0, job = 0;
    int step = 0, steps = 0;
    StepTime at;                               // progress: when the worker reported the step
    std::shared_ptr<const std::string> frame;  // set: a preview; null: progress
  };
  static constexpr size_t kMaxEventsPerPass = 64;

  void feed_loop() ATELIER_EXCLUDES(feed_mu_);
  void announce_presence_changes() ATELIER_EXCLUDES(rooms_mu_);
  void enqueue_step(StepItem item) ATELIER_EXCLUDES(feed_mu_);
  // Sends one pass's steps and events, grouped per room, in order.
  void send_pass(const std::vector<StepItem>& steps,
                 const std::vector<events::CommittedEvent>& events)
      ATELIER_EXCLUDES(rooms_mu_, feed_mu_);
  // Adds an event's message to its room's batch; ends subscriptions it ends (after sending the
  // batch so far, which includes the event itself).
  void add_event(const events::CommittedEvent& event,
                 std::map<int64_t, std::vector<OutMessage>>& batches)
      ATELIER_EXCLUDES(rooms_mu_, feed_mu_);
  void send_batch(int64_t project, std::vector<OutMessage>& batch)
      ATELIER_EXCLUDES(rooms_mu_, feed_mu_);
  // Room::LateMessages for `project`: moves the steps of that project that came in since the
  // pass began into `out`.
  void take_late_steps(int64_t project, std::vector<OutMessage>& out) ATELIER_EXCLUDES(feed_mu_);
  OutMessage step_message(const StepItem& item) const;

  const RoomHubOptions options_;
  const std::shared_ptr<const LiveWire> wire_;
  const EventToJson event_json_;
  PreviewThrottle throttle_;

  // Taken before a Room's own lock (join() adds the member under both).
  mutable Mutex rooms_mu_;
  std::map<int64_t, std::shared_ptr<Room>> rooms_ ATELIER_GUARDED_BY(rooms_mu_);

  Mutex feed_mu_;
  std::condition_variable_any feed_cv_;
  std::condition_variable_any flushed_cv_;
  std::deque<events::CommittedEvent> events_ ATELIER_GUARDED_BY(feed_mu_);
  std::deque<StepItem> steps_ ATELIER_GUARDED_BY(feed_mu_);
  uint64_t queued_total_ ATELIER_GUARDED_BY(feed_mu_) = 0;  // events and steps
  uint64_t sent_total_ ATELIER_GUARDED_BY(feed_mu_) = 0;
  uint64_t late_sent_ ATELIER_GUARDED_BY(feed_mu_) = 0;  // steps taken during a pass
  std::atomic<size_t> steps_waiting_{0};                 // steps_.size(), read without the lock
  bool stopping_ ATELIER_GUARDED_BY(feed_mu_) = false;
  // From start() until feed_loop() has sent its last pass. Senders and flush() read this, not
  // feed_thread_, which stop() joins without the lock.
  bool feed_running_ ATELIER_GUARDED_BY(feed_mu_) = false;
  std::thread feed_thread_;  // start() and stop() only (the owner's thread)

  std::atomic<uint64_t> events_broadcast_{0};
  std::atomic<uint64_t> previews_encoded_{0};
};

}  // namespace atelier::rooms
