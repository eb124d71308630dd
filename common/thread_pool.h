// A fixed set of threads for CPU-heavy work that must not run on I/O threads (password hashing
// today, image encoding later), with a bounded queue so a burst cannot pile up without limit.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <string_view>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace atelier {

class ThreadPool {
 public:
  // `threads` >= 1 workers, named `name`-0, -1, ...; at most `max_queued` tasks wait beyond
  // the running ones.
  ThreadPool(size_t threads, size_t max_queued, std::string_view name = "pool");
  // Runs what is queued, then joins.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task`; false (and the task is dropped) when the queue is full or the pool stopping,
  // so the caller can answer "busy" (503) instead of waiting.
  bool try_submit(std::function<void()> task);
  // Stops taking tasks, finishes the queued ones, joins the threads. Idempotent.
  void stop();

 private:
  void worker();

  const size_t max_queued_;
  Mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::function<void()>> queue_ ATELIER_GUARDED_BY(mu_);
  bool stopping_ ATELIER_GUARDED_BY(mu_) = false;
  // The owner's: written by the constructor and stop(), which must not run concurrently.
  std::vector<std::thread> threads_;
};

}  // namespace atelier
