#include "server/rooms/room_hub.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/thread_name.h"

namespace atelier::rooms {

RoomHub::RoomHub(RoomHubOptions options, EventToJson event_json, PreviewThrottle::Clock now_ms)
    : options_(options),
      event_json_(std::move(event_json)),
      throttle_(options.preview_interval_ms, std::move(now_ms)) {}

RoomHub::~RoomHub() {
  stop();
}

void RoomHub::start() {
  {
    std::lock_guard lock(feed_mu_);
    if (feed_thread_.joinable() || stopping_) return;
    feed_thread_ = std::thread([this] { feed_loop(); });
  }
  std::lock_guard lock(steps_mu_);
  steps_thread_ = std::thread([this] { steps_loop(); });
}

void RoomHub::stop() {
  {
    std::lock_guard lock(feed_mu_);
    stopping_ = true;
  }
  feed_cv_.notify_all();
  if (feed_thread_.joinable()) feed_thread_.join();
  {
    std::lock_guard lock(steps_mu_);
    steps_stopping_ = true;
  }
  steps_cv_.notify_all();
  if (steps_thread_.joinable()) steps_thread_.join();
}

std::shared_ptr<Room> RoomHub::join(int64_t project, const std::shared_ptr<RoomMember>& member) {
  // Under the hub's lock, so that a room being dropped as empty cannot lose a member joining it.
  std::lock_guard lock(rooms_mu_);
  auto& room = rooms_[project];
  if (!room) room = std::make_shared<Room>(project, options_.presence_interval_ms > 0);
  room->join(member);
  return room;
}

void RoomHub::leave(int64_t project, const RoomMember* member) {
  std::lock_guard lock(rooms_mu_);
  auto it = rooms_.find(project);
  if (it == rooms_.end()) return;
  it->second->leave(member);
  if (it->second->size() == 0) rooms_.erase(it);
}

std::shared_ptr<Room> RoomHub::find(int64_t project) const {
  std::lock_guard lock(rooms_mu_);
  auto it = rooms_.find(project);
  return it == rooms_.end() ? nullptr : it->second;
}

void RoomHub::on_event_committed(const projects::Event& event) {
  {
    std::lock_guard lock(feed_mu_);
    feed_.push_back(event);
    ++queued_total_;
  }
  feed_cv_.notify_one();
}

void RoomHub::enqueue_step(StepItem item) {
  {
    std::lock_guard lock(steps_mu_);
    if (!steps_thread_.joinable()) return;  // not started (or stopped): nobody would send it
    if (!item.frame) {
      for (auto& queued : steps_) {
        if (!queued.frame && queued.job == item.job) {
          queued = std::move(item);  // still waiting: the newer step replaces it
          return;
        }
      }
    }
    steps_.push_back(std::move(item));
    ++steps_queued_;
  }
  steps_cv_.notify_one();
}

void RoomHub::steps_loop() {
  set_current_thread_name("room-steps");
  std::unique_lock lock(steps_mu_);
  for (;;) {
    steps_cv_.wait(lock, [&] { return steps_stopping_ || !steps_.empty(); });
    if (steps_.empty()) break;  // stopping, and everything queued went out
    StepItem item = std::move(steps_.front());
    steps_.pop_front();
    lock.unlock();
    send_step(item);
    lock.lock();
    ++steps_sent_;
    steps_sent_cv_.notify_all();
  }
  steps_sent_ = steps_queued_;
  steps_sent_cv_.notify_all();
}

void RoomHub::flush() {
  {
    std::unique_lock lock(feed_mu_);
    const uint64_t target = queued_total_;
    flushed_cv_.wait(lock, [&] { return broadcast_total_ >= target || !feed_thread_.joinable(); });
  }
  std::unique_lock lock(steps_mu_);
  const uint64_t target = steps_queued_;
  steps_sent_cv_.wait(lock, [&] { return steps_sent_ >= target || !steps_thread_.joinable(); });
}

void RoomHub::feed_loop() {
  set_current_thread_name("room-feed");
  const auto tick = std::chrono::milliseconds(std::max<int64_t>(options_.presence_interval_ms, 1));
  auto next_tick = std::chrono::steady_clock::now() + tick;
  std::unique_lock lock(feed_mu_);
  for (;;) {
    feed_cv_.wait_until(lock, next_tick, [&] { return stopping_ || !feed_.empty(); });
    if (std::chrono::steady_clock::now() >= next_tick) {
      lock.unlock();
      announce_presence_changes();
      lock.lock();
      next_tick = std::chrono::steady_clock::now() + tick;
    }
    if (feed_.empty()) {
      if (stopping_) break;  // everything queued went out
      continue;
    }
    projects::Event event = std::move(feed_.front());
    feed_.pop_front();
    lock.unlock();
    try {
      broadcast(event);
    } catch (const std::exception& e) {
      log::warn("broadcasting event {} of project {} failed: {}", event.seq, event.project_id,
                e.what());
    }
    lock.lock();
    ++broadcast_total_;
    flushed_cv_.notify_all();
  }
  broadcast_total_ = queued_total_;
  flushed_cv_.notify_all();
}

void RoomHub::send_step(const StepItem& item) {
  auto room = find(item.project);
  if (!room) return;
  try {
    if (item.frame) {
      room->broadcast_preview(item.job, item.frame);
    } else {
      room->broadcast_progress(item.job, item.step, item.steps, item.at_us);
    }
  } catch (const std::exception& e) {
    log::warn("sending a step of job {} failed: {}", item.job, e.what());
  }
}

void RoomHub::announce_presence_changes() {
  std::vector<std::shared_ptr<Room>> rooms;
  {
    std::lock_guard lock(rooms_mu_);
    for (const auto& [id, room] : rooms_) rooms.push_back(room);
  }
  for (const auto& room : rooms) room->announce_presence_if_changed();
}

void RoomHub::broadcast(const projects::Event& event) {
  if (event.type.starts_with("job.") && event.type != "job.queued") {
    if (auto data = nlohmann::json::parse(event.data_json, nullptr, false);
        data.is_object() && data.contains("id") && data["id"].is_number_integer()) {
      if (event.type == "job.started") {
        throttle_.start(data["id"].get<int64_t>());
      } else {
        throttle_.forget(data["id"].get<int64_t>());  // over: no more previews for it
      }
    }
  }
  std::shared_ptr<Room> room = find(event.project_id);
  if (!room) return;
  if (event.type == "project.deleted") {
    room->remove_all("project_deleted");
    return;
  }
  room->broadcast_event(event.seq, event_json_(event));
  events_broadcast_.fetch_add(1, std::memory_order_relaxed);
  if (event.type == "member.removed" || event.type == "member.left") {
    auto data = nlohmann::json::parse(event.data_json, nullptr, false);
    if (data.is_object() && data.contains("user_id") && data["user_id"].is_number_integer()) {
      room->remove_user(data["user_id"].get<int64_t>(),
                        event.type == "member.removed" ? "removed" : "left");
    }
  }
}

bool RoomHub::wants_preview(int64_t project, int64_t job) const {
  auto room = find(project);
  return room && room->size() > 0 && throttle_.due(job);
}

void RoomHub::on_step(int64_t project, int64_t job, int step, int steps,
                      const image::Image* preview) {
  if (!find(project)) return;
  const int64_t at_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  enqueue_step(StepItem{project, job, step, steps, at_us, nullptr});
  if (!preview || !throttle_.admit(job)) return;
  auto frame = encode_preview_frame(project, job, step, steps, *preview);
  if (!frame.is_ok()) {
    log::warn("preview of job {} not encoded: {}", job, frame.status().message());
    return;
  }
  previews_encoded_.fetch_add(1, std::memory_order_relaxed);
  enqueue_step(StepItem{project, job, step, steps, at_us, std::move(*frame)});
}

void RoomHub::job_finished(int64_t job) {
  throttle_.forget(job);
}

RoomHubStats RoomHub::stats() const {
  RoomHubStats s;
  s.events_broadcast = events_broadcast_.load();
  s.previews_encoded = previews_encoded_.load();
  std::lock_guard lock(rooms_mu_);
  s.rooms = rooms_.size();
  return s;
}

}  // namespace atelier::rooms
