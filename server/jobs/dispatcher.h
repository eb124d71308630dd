// Dispatcher: the queue in memory and its hand-off to workers. It mirrors the queued rows in a
// FairScheduler (which job starts next, and each queued job's position), keeps the workers
// waiting for work, and lets a submit hand its job straight to an idle worker.
//
// Dispatch at submit: when a worker waits idle, the submit transaction reserves it and claims
// the scheduler's next job for it in the same transaction (one commit and one writer round trip
// less for a lone job). The worker then waits for that commit: hand_over() gives it the run, or
// sends it back to waiting when the job could not be claimed; a rolled-back submit calls
// cancel_reservation(), which puts the job and the worker back as they were.
//
// Threads: thread-safe. wait_for_work() blocks a worker thread; everything else is short.
// Nothing here touches the database.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "server/jobs/job.h"
#include "server/jobs/run.h"
#include "server/jobs/scheduler.h"

namespace atelier::jobs {

class Dispatcher {
 public:
  explicit Dispatcher(FairScheduler::Options options) : scheduler_(options) {}

  // ---- the queue ----
  // A queued job. Waiting workers are not woken: call wake() once the job is committed (a
  // submit adds it inside its transaction, and a worker woken then would only claim it in a
  // transaction of its own, losing the dispatch at submit).
  void add(const Job& job) ATELIER_EXCLUDES(mu_);
  void wake();
  void remove(int64_t job_id) ATELIER_EXCLUDES(mu_);
  // 1-based start position; nullopt when not in the queue.
  std::optional<int64_t> position(int64_t job_id, SysTime now) const ATELIER_EXCLUDES(mu_);
  std::unordered_map<int64_t, int64_t> positions(const std::vector<int64_t>& job_ids,
                                                 SysTime now) const ATELIER_EXCLUDES(mu_);
  size_t queued() const ATELIER_EXCLUDES(mu_);
  size_t idle_workers() const ATELIER_EXCLUDES(mu_);

  // ---- workers ----
  // What a waiting worker gets: a run a submit claimed for it, or the next job to claim
  // itself, or neither (stopping).
  struct Work {
    std::optional<Run> handed;
    std::optional<QueuedJob> picked;
  };
  // Blocks until there is work for `worker` or the dispatcher stops. A worker reserved by a
  // submit waits for that commit even when stopping: its run may be committed and must then be
  // ended properly (the run comes back with its cancel token set).
  Work wait_for_work(const std::string& worker, SysTime now) ATELIER_EXCLUDES(mu_);
  // The picked job could not be claimed for a reason unrelated to it: back in its place.
  void undo_pop(const QueuedJob& job) ATELIER_EXCLUDES(mu_);

  // ---- dispatch at submit ----
  struct Reservation {
    std::string worker;
    QueuedJob picked;
  };
  // An idle worker and the job it is to run, both taken out; nullopt when no worker is idle
  // (or the queue is empty, or stopping).
  std::optional<Reservation> reserve(SysTime now) ATELIER_EXCLUDES(mu_);
  // The submit committed: the worker gets `run`, or goes back to waiting when empty.
  void hand_over(const Reservation& r, std::optional<Run> run) ATELIER_EXCLUDES(mu_);
  // The submit rolled back: job and worker as before the reservation.
  void cancel_reservation(const Reservation& r) ATELIER_EXCLUDES(mu_);

  // Wakes and releases every waiting worker (they get no work); restart() undoes it.
  void stop() ATELIER_EXCLUDES(mu_);
  void restart() ATELIER_EXCLUDES(mu_);
  bool stopping() const ATELIER_EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  std::condition_variable_any work_cv_;  // workers wait here
  FairScheduler scheduler_ ATELIER_GUARDED_BY(mu_);
  // Waiting in wait_for_work() and not reserved.
  std::vector<std::string> idle_ ATELIER_GUARDED_BY(mu_);
  // Reserved workers, with their run once the submit committed (empty while it is in flight).
  std::unordered_map<std::string, std::optional<Run>> handoffs_ ATELIER_GUARDED_BY(mu_);
  bool stopping_ ATELIER_GUARDED_BY(mu_) = false;
};

// The scheduler's view of a queued job.
QueuedJob queued_entry(const Job& job);

}  // namespace atelier::jobs
