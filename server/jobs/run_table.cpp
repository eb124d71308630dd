#include "server/jobs/run_table.h"

namespace atelier::jobs {

void RunTable::add(const Run& run, SysTime now) {
  MutexLock lock(mu_);
  runs_[run.job.id] = Entry{run.job.attempt, run.cancel, 0, now, false};
}

void RunTable::remove(int64_t job_id, int attempt) {
  MutexLock lock(mu_);
  auto it = runs_.find(job_id);
  if (it != runs_.end() && it->second.attempt == attempt) runs_.erase(it);
}

RunTable::StepNoted RunTable::note_step(const Run& run, int step, SysTime now,
                                        std::chrono::milliseconds extend_every) {
  MutexLock lock(mu_);
  auto it = runs_.find(run.job.id);
  if (it == runs_.end() || it->second.attempt != run.job.attempt || it->second.lost) return {};
  it->second.step = step;
  StepNoted out{true, false};
  if (now - it->second.lease_extended_at >= extend_every) {
    out.extend_lease = true;
    it->second.lease_extended_at = now;
  }
  return out;
}

void RunTable::lose(int64_t job_id, int attempt) {
  MutexLock lock(mu_);
  auto it = runs_.find(job_id);
  if (it == runs_.end() || it->second.attempt != attempt) return;
  it->second.lost = true;
  it->second.cancel->cancel();
}

void RunTable::cancel(int64_t job_id) {
  MutexLock lock(mu_);
  if (auto it = runs_.find(job_id); it != runs_.end()) it->second.cancel->cancel();
}

void RunTable::cancel_all() {
  MutexLock lock(mu_);
  for (auto& [id, entry] : runs_) entry.cancel->cancel();
}

std::optional<int> RunTable::step(int64_t job_id, int attempt) const {
  MutexLock lock(mu_);
  auto it = runs_.find(job_id);
  if (it == runs_.end() || it->second.attempt != attempt) return std::nullopt;
  return it->second.step;
}

}  // namespace atelier::jobs
