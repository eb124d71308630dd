// PeriodicThread: one named thread that calls `task` every `interval` between start() and stop()
// (the job service's lease reaper, the SSE keep-alive). The first call comes one interval after
// start(); stop() wakes the thread and joins it, without a last call.
//
// Threads: start() and stop() from the owner's thread; `task` runs on the periodic thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <string>
#include <thread>

#include "common/mutex.h"

namespace atelier {

class PeriodicThread {
 public:
  PeriodicThread(std::string name, std::chrono::milliseconds interval, std::function<void()> task)
      : name_(std::move(name)), interval_(interval), task_(std::move(task)) {}
  ~PeriodicThread() { stop(); }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  void start() ATELIER_EXCLUDES(mu_);
  void stop() ATELIER_EXCLUDES(mu_);  // idempotent

 private:
  void loop() ATELIER_EXCLUDES(mu_);

  const std::string name_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> task_;
  Mutex mu_;
  std::condition_variable_any cv_;
  bool stopping_ ATELIER_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace atelier
