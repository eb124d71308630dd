// LeaseKeeper: the thread that takes jobs back from workers that stopped responding. Every
// `interval` it calls `reap` (JobService::reap_expired: one transaction that releases every
// running job whose lease ran out). The leases themselves are rows in the database; workers
// extend theirs as they report steps (RunTable::note_step decides when).
//
// Threads: one thread ("job-reaper") between start() and stop(); stop() wakes and joins it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <thread>

#include "common/mutex.h"

namespace atelier::jobs {

class LeaseKeeper {
 public:
  LeaseKeeper(std::chrono::milliseconds interval, std::function<void()> reap)
      : interval_(interval), reap_(std::move(reap)) {}
  ~LeaseKeeper() { stop(); }
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  void start() ATELIER_EXCLUDES(mu_);
  void stop() ATELIER_EXCLUDES(mu_);  // idempotent

 private:
  void loop() ATELIER_EXCLUDES(mu_);

  const std::chrono::milliseconds interval_;
  const std::function<void()> reap_;
  Mutex mu_;
  std::condition_variable_any cv_;
  bool stopping_ ATELIER_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace atelier::jobs
