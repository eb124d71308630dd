#include "server/jobs/dispatcher.h"

#include <algorithm>
#include <utility>

namespace atelier::jobs {

QueuedJob queued_entry(const Job& job) {
  return QueuedJob{job.id, job.project_id, job.submitted_by.value_or(0), job.params.priority,
                   job.queued_at};
}

void Dispatcher::add(const Job& job) {
  MutexLock lock(mu_);
  scheduler_.add(queued_entry(job));
}

void Dispatcher::wake() {
  work_cv_.notify_all();
}

void Dispatcher::remove(int64_t job_id) {
  MutexLock lock(mu_);
  scheduler_.remove(job_id);
}

std::optional<int64_t> Dispatcher::position(int64_t job_id, SysTime now) const {
  MutexLock lock(mu_);
  return scheduler_.position(job_id, now);
}

std::unordered_map<int64_t, int64_t> Dispatcher::positions(const std::vector<int64_t>& job_ids,
                                                           SysTime now) const {
  MutexLock lock(mu_);
  return scheduler_.positions(job_ids, now);
}

size_t Dispatcher::queued() const {
  MutexLock lock(mu_);
  return scheduler_.size();
}

size_t Dispatcher::idle_workers() const {
  MutexLock lock(mu_);
  return idle_.size();
}

Dispatcher::Work Dispatcher::wait_for_work(const std::string& worker, SysTime now) {
  MutexLock lock(mu_);
  idle_.push_back(worker);
  work_cv_.wait(lock, [&]() ATELIER_REQUIRES(mu_) {
    if (auto r = handoffs_.find(worker); r != handoffs_.end()) return r->second.has_value();
    return stopping_ || scheduler_.size() > 0;
  });
  std::erase(idle_, worker);
  Work work;
  if (auto r = handoffs_.find(worker); r != handoffs_.end()) {
    work.handed = std::move(*r->second);
    handoffs_.erase(r);
    if (stopping_) work.handed->cancel->cancel();
    return work;
  }
  if (!stopping_) work.picked = scheduler_.pop_next(now);
  return work;
}

void Dispatcher::undo_pop(const QueuedJob& job) {
  {
    MutexLock lock(mu_);
    scheduler_.undo_pop(job);
  }
  work_cv_.notify_all();
}

std::optional<Dispatcher::Reservation> Dispatcher::reserve(SysTime now) {
  MutexLock lock(mu_);
  if (stopping_ || idle_.empty()) return std::nullopt;
  auto picked = scheduler_.pop_next(now);
  if (!picked) return std::nullopt;
  Reservation r{idle_.back(), *picked};
  idle_.pop_back();
  handoffs_[r.worker] = std::nullopt;  // reserved: the worker now waits for the commit
  return r;
}

void Dispatcher::hand_over(const Reservation& r, std::optional<Run> run) {
  {
    MutexLock lock(mu_);
    if (run) {
      handoffs_[r.worker] = std::move(run);
    } else {
      handoffs_.erase(r.worker);  // the picked job was no longer queued: back to waiting
      idle_.push_back(r.worker);
    }
  }
  work_cv_.notify_all();
}

void Dispatcher::cancel_reservation(const Reservation& r) {
  {
    MutexLock lock(mu_);
    scheduler_.undo_pop(r.picked);
    handoffs_.erase(r.worker);
    idle_.push_back(r.worker);
  }
  work_cv_.notify_all();
}

void Dispatcher::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
}

void Dispatcher::restart() {
  MutexLock lock(mu_);
  stopping_ = false;
}

bool Dispatcher::stopping() const {
  MutexLock lock(mu_);
  return stopping_;
}

}  // namespace atelier::jobs
