// The fair job scheduler: which queued job starts next. Pure in-memory logic, no database, no
// threads and no locks: the caller serializes every call (one FairScheduler behind one mutex or
// strand) and keeps it in step with the jobs table.
//
// Fairness rules, applied in this order on every pick:
//  1. Round-robin across projects. After serving project P the next pick goes to the project
//     with the smallest id greater than P that has queued jobs, wrapping around to the smallest
//     id. One project's thousand jobs therefore never starve another project's single job.
//  2. Within the chosen project, round-robin across its users the same way. Each project
//     remembers the last user it served, also while it has nothing queued, so a user whose
//     project briefly drains does not jump the line when jobs come back.
//  3. Within the chosen user's jobs in that project: highest effective priority first, where
//       effective = priority + floor(max(0, now - enqueued_at) / ageing),
//     so a low-priority job gains standing the longer it waits. Ties go to the lowest id (FIFO,
//     since ids grow with submission order), also for a job re-queued later than newer ones.
//     ageing <= 0 turns ageing off. Waits count in whole ms, saturating rather than overflowing.
//
// Costs, n queued jobs and L distinct priority levels of the chosen user: add, remove and
// pop_next are O(L log n); position() copies the queues and simulates, O(k L log n) for a job
// in place k (about 5-25 ms for 10,000 queued jobs on one core, RelWithDebInfo).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/clock.h"

namespace atelier::jobs {

struct QueuedJob {
  int64_t id = 0;  // job id; ids grow with submission order
  int64_t project_id = 0;
  int64_t user_id = 0;  // the submitter
  int priority = 0;     // higher first; the API allows -10..10
  SysTime enqueued_at;  // when it (last) became queued (the job's queued_at)
};

class FairScheduler {
 public:
  struct Options {
    // Each full `ageing` a job has waited adds 1 to its effective priority; <= 0 disables it.
    std::chrono::milliseconds ageing{60'000};
  };

  // Stands for `explicit FairScheduler(Options options = {})`, which GCC rejects while Options
  // is still incomplete (its default member initializer is parsed after the class).
  FairScheduler();
  explicit FairScheduler(Options options);
  ~FairScheduler();
  FairScheduler(const FairScheduler& other);
  FairScheduler& operator=(const FairScheduler& other);
  // A moved-from scheduler may only be assigned to or destroyed.
  FairScheduler(FairScheduler&&) noexcept;
  FairScheduler& operator=(FairScheduler&&) noexcept;

  // Adds a queued job. A job id already present is replaced (its fields updated); the
  // round-robin cursors are left alone.
  void add(const QueuedJob& job);
  // Removes a job (cancelled, or claimed by someone else). False when it was not queued.
  bool remove(int64_t job_id);
  // Picks the next job by the rules above, removes it and returns it; nullopt when empty.
  std::optional<QueuedJob> pop_next(SysTime now);
  // Puts back a job pop_next() returned when it could not be started after all, as if it had
  // never been popped: same place in its user's queue, and the round-robin cursors restored, so
  // nobody loses their turn. Undoing the latest pops in reverse order restores the cursors
  // exactly; undoing an older pop instead makes that job's project and user the next ones up.
  void undo_pop(const QueuedJob& job);
  // The 1-based place in which `job_id` would start if no more jobs arrived (1 = next),
  // computed by simulating pop_next at `now` on the current state; nullopt when not queued.
  std::optional<int64_t> position(int64_t job_id, SysTime now) const;
  // position() of several jobs from one simulation (a job list shows many): job id -> place,
  // for the ids that are queued.
  std::unordered_map<int64_t, int64_t> positions(const std::vector<int64_t>& job_ids,
                                                 SysTime now) const;
  bool contains(int64_t job_id) const;
  size_t size() const;
  size_t queued_for_user(int64_t user_id) const;  // across all projects
  // Ids of every queued job (any order). For tests and diagnostics.
  std::vector<int64_t> job_ids() const;

 private:
  struct State;  // queues, cursors and indexes; defined in scheduler.cpp
  std::unique_ptr<State> state_;
};

}  // namespace atelier::jobs
