// RunTable: the runs in progress, in memory: each one's attempt (the fence), cancel token, last
// step and when its lease was last extended. The database holds the lease itself; this table
// decides when a step must extend it, lets a cancel or a lost lease reach the generator, and
// gives a running job's step to readers between lease extensions.
//
// Rules: every operation names the attempt it is about, and an entry of another attempt is left
// alone, so a stale worker can never touch the run that replaced it.
// Threads: thread-safe; one short lock per call, never held while calling out.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "common/clock.h"
#include "common/mutex.h"
#include "server/jobs/run.h"

namespace atelier::jobs {

class RunTable {
 public:
  // Registered before the claim commits, so a cancel committed right after finds it.
  void add(const Run& run, SysTime now) ATELIER_EXCLUDES(mu_);
  // The run ended (any outcome). Nothing when another attempt owns the entry.
  void remove(int64_t job_id, int attempt) ATELIER_EXCLUDES(mu_);

  struct StepNoted {
    bool current = false;       // the attempt still holds the job
    bool extend_lease = false;  // and its lease is due to be extended (recorded as done now)
  };
  // A step of the run: remembered, and whether the lease needs extending (once every
  // `extend_every`).
  StepNoted note_step(const Run& run, int step, SysTime now, std::chrono::milliseconds extend_every)
      ATELIER_EXCLUDES(mu_);
  // The attempt lost the job (lease expired, or the database says so): its steps are ignored
  // from now on and its generator is told to stop.
  void lose(int64_t job_id, int attempt) ATELIER_EXCLUDES(mu_);
  // Tells the run's generator to stop at its next step (a requested cancel).
  void cancel(int64_t job_id) ATELIER_EXCLUDES(mu_);
  void cancel_all() ATELIER_EXCLUDES(mu_);  // shutdown
  // The last step the attempt reported, when it is the current run.
  std::optional<int> step(int64_t job_id, int attempt) const ATELIER_EXCLUDES(mu_);

 private:
  struct Entry {
    int attempt = 0;
    std::shared_ptr<inference::CancelToken> cancel;
    int step = 0;
    SysTime lease_extended_at;
    bool lost = false;
  };
  mutable Mutex mu_;
  std::unordered_map<int64_t, Entry> runs_ ATELIER_GUARDED_BY(mu_);  // by job id
};

}  // namespace atelier::jobs
