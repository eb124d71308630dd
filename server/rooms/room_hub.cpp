#include "server/rooms/room_hub.h"

#include <algorithm>
#include <chrono>

#include "common/logging.h"
#include "common/thread_name.h"

namespace atelier::rooms {

RoomHub::RoomHub(RoomHubOptions options, std::shared_ptr<const LiveWire> wire,
                 EventToJson event_json, PreviewThrottle::Clock now)
    : options_(options),
      wire_(std::move(wire)),
      event_json_(std::move(event_json)),
      throttle_(options.preview_interval, std::move(now)) {}

RoomHub::~RoomHub() {
  stop();
}

void RoomHub::start() {
  MutexLock lock(feed_mu_);
  if (feed_thread_.joinable() || stopping_) return;
  feed_running_ = true;
  feed_thread_ = std::thread([this] { feed_loop(); });
}

void RoomHub::stop() {
  {
    MutexLock lock(feed_mu_);
    stopping_ = true;
  }
  feed_cv_.notify_all();
  if (feed_thread_.joinable()) feed_thread_.join();
}

std::shared_ptr<Room> RoomHub::join(int64_t project, const std::shared_ptr<RoomMember>& member) {
  // Under the hub's lock, so that a room being dropped as empty cannot lose a member joining it.
  MutexLock lock(rooms_mu_);
  auto& room = rooms_[project];
  if (!room) room = std::make_shared<Room>(project, wire_, options_.presence_interval.count() > 0);
  room->join(member);
  return room;
}

void RoomHub::leave(int64_t project, const RoomMember* member) {
  MutexLock lock(rooms_mu_);
  auto it = rooms_.find(project);
  if (it == rooms_.end()) return;
  it->second->leave(member);
  if (it->second->size() == 0) rooms_.erase(it);
}

std::shared_ptr<Room> RoomHub::find(int64_t project) const {
  MutexLock lock(rooms_mu_);
  auto it = rooms_.find(project);
  return it == rooms_.end() ? nullptr : it->second;
}

void RoomHub::on_committed(const events::CommittedEvent& event) {
  if (const auto* changed = std::get_if<events::JobChanged>(&event.event)) {
    // Here, on the writer thread, and not on the feed: the job's worker gets its run only after
    // this returns, so the throttle knows the job before its first step.
    if (changed->job.state == jobs::JobState::kRunning) {
      throttle_.start(changed->job.id);
    } else {
      throttle_.forget(changed->job.id);  // ended, or back in the queue: no previews now
    }
  }
  {
    MutexLock lock(feed_mu_);
    events_.push_back(event);
    ++queued_total_;
  }
  feed_cv_.notify_one();
}

void RoomHub::enqueue_step(StepItem item) {
  {
    MutexLock lock(feed_mu_);
    if (!feed_running_) return;  // not started (or stopped): nobody would send it
    if (!item.frame) {
      for (auto& queued : steps_) {
        if (!queued.frame && queued.job == item.job) {
          queued = std::move(item);  // still waiting: the newer step replaces it
          return;
        }
      }
    }
    steps_.push_back(std::move(item));
    steps_waiting_.store(steps_.size(), std::memory_order_relaxed);
    ++queued_total_;
  }
  feed_cv_.notify_one();
}

void RoomHub::flush() {
  MutexLock lock(feed_mu_);
  const uint64_t target = queued_total_;
  while (sent_total_ < target && feed_running_) flushed_cv_.wait(lock);
}

void RoomHub::feed_loop() {
  set_current_thread_name("room-feed");
  const auto tick = std::max(options_.presence_interval, std::chrono::milliseconds(1));
  auto next_tick = std::chrono::steady_clock::now() + tick;
  std::vector<StepItem> steps;
  std::vector<events::CommittedEvent> events;
  MutexLock lock(feed_mu_);
  for (;;) {
    while (!stopping_ && events_.empty() && steps_.empty()) {
      if (feed_cv_.wait_until(lock, next_tick) == std::cv_status::timeout) break;
    }
    if (std::chrono::steady_clock::now() >= next_tick) {
      lock.unlock();
      announce_presence_changes();
      lock.lock();
      next_tick = std::chrono::steady_clock::now() + tick;
    }
    if (events_.empty() && steps_.empty()) {
      if (stopping_) break;  // everything queued went out
      continue;
    }
    steps.assign(std::make_move_iterator(steps_.begin()), std::make_move_iterator(steps_.end()));
    steps_.clear();
    steps_waiting_.store(0, std::memory_order_relaxed);
    const size_t n = std::min(events_.size(), kMaxEventsPerPass);
    events.assign(std::make_move_iterator(events_.begin()),
                  std::make_move_iterator(events_.begin() + static_cast<std::ptrdiff_t>(n)));
    events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(n));
    lock.unlock();
    send_pass(steps, events);
    lock.lock();
    sent_total_ += steps.size() + events.size() + late_sent_;
    late_sent_ = 0;
    flushed_cv_.notify_all();
  }
  sent_total_ = queued_total_;
  feed_running_ = false;
  flushed_cv_.notify_all();
}

void RoomHub::send_pass(const std::vector<StepItem>& steps,
                        const std::vector<events::CommittedEvent>& events) {
  std::map<int64_t, std::vector<OutMessage>> batches;
  for (const auto& item : steps) {
    try {
      batches[item.project].push_back(step_message(item));
    } catch (const std::exception& e) {
      log::warn("sending a step of job {} failed: {}", item.job, e.what());
    }
  }
  for (const auto& event : events) {
    try {
      add_event(event, batches);
    } catch (const std::exception& e) {
      log::warn("broadcasting event {} of project {} failed: {}", event.seq, event.project_id,
                e.what());
    }
  }
  for (auto& [project, batch] : batches) send_batch(project, batch);
}

OutMessage RoomHub::step_message(const StepItem& item) const {
  return item.frame ? preview_out(item.project, item.job, item.frame)
                    : progress_out(*wire_, item.project, item.job, item.step, item.steps, item.at);
}

void RoomHub::take_late_steps(int64_t project, std::vector<OutMessage>& out) {
  if (steps_waiting_.load(std::memory_order_relaxed) == 0) return;
  std::vector<StepItem> taken;
  {
    MutexLock lock(feed_mu_);
    for (auto it = steps_.begin(); it != steps_.end();) {
      if (it->project == project) {
        taken.push_back(std::move(*it));
        it = steps_.erase(it);
      } else {
        ++it;
      }
    }
    steps_waiting_.store(steps_.size(), std::memory_order_relaxed);
    late_sent_ += taken.size();
  }
  for (const auto& item : taken) out.push_back(step_message(item));
}

void RoomHub::send_batch(int64_t project, std::vector<OutMessage>& batch) {
  if (batch.empty()) return;
  if (auto room = find(project)) {
    try {
      room->broadcast_batch(
          batch, [this, project](std::vector<OutMessage>& out) { take_late_steps(project, out); });
    } catch (const std::exception& e) {
      log::warn("broadcasting to project {} failed: {}", project, e.what());
    }
  }
  batch.clear();
}

void RoomHub::announce_presence_changes() {
  std::vector<std::shared_ptr<Room>> rooms;
  {
    MutexLock lock(rooms_mu_);
    for (const auto& [id, room] : rooms_) rooms.push_back(room);
  }
  for (const auto& room : rooms) room->announce_presence_if_changed();
}

void RoomHub::add_event(const events::CommittedEvent& event,
                        std::map<int64_t, std::vector<OutMessage>>& batches) {
  std::shared_ptr<Room> room = find(event.project_id);
  if (!room) return;
  auto& batch = batches[event.project_id];
  if (std::holds_alternative<events::ProjectDeleted>(event.event)) {
    send_batch(event.project_id, batch);
    room->remove_all("project_deleted");
    return;
  }
  batch.push_back(event_out(*wire_, event.project_id, event.seq, event_json_(event)));
  events_broadcast_.fetch_add(1, std::memory_order_relaxed);
  if (const auto* member = std::get_if<events::MemberChanged>(&event.event);
      member && member->ends_membership()) {
    // The removed user hears of the removal, and of nothing after it.
    send_batch(event.project_id, batch);
    room->remove_user(member->user_id,
                      member->kind == events::MemberChanged::Kind::kRemoved ? "removed" : "left");
  }
}

bool RoomHub::wants_preview(const jobs::Job& job) const {
  auto room = find(job.project_id);
  return room && room->size() > 0 && throttle_.due(job.id);
}

void RoomHub::on_progress(const events::JobProgress& progress) {
  const jobs::Job& job = *progress.job;
  if (!find(job.project_id)) return;
  enqueue_step(
      StepItem{job.project_id, job.id, progress.step, progress.steps, progress.at, nullptr});
  if (!progress.preview || !throttle_.admit(job.id)) return;
  auto frame = encode_preview_frame(job.project_id, job.id, progress.step, progress.steps,
                                    *progress.preview);
  if (!frame.is_ok()) {
    log::warn("preview of job {} not encoded: {}", job.id, frame.status().message());
    return;
  }
  previews_encoded_.fetch_add(1, std::memory_order_relaxed);
  enqueue_step(StepItem{job.project_id, job.id, progress.step, progress.steps, progress.at,
                        std::move(*frame)});
}

RoomHubStats RoomHub::stats() const {
  RoomHubStats s;
  s.events_broadcast = events_broadcast_.load();
  s.previews_encoded = previews_encoded_.load();
  s.throttled_jobs = throttle_.tracked();
  MutexLock lock(rooms_mu_);
  s.rooms = rooms_.size();
  return s;
}

}  // namespace atelier::rooms
