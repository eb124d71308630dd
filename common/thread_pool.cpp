#include "common/thread_pool.h"

#include <string>

#include "common/thread_name.h"

namespace atelier {

ThreadPool::ThreadPool(size_t threads, size_t max_queued, std::string_view name)
    : max_queued_(max_queued) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, label = std::string(name) + "-" + std::to_string(i)] {
      set_current_thread_name(label);
      worker();
    });
  }
}

ThreadPool::~ThreadPool() {
  stop();
}

bool ThreadPool::try_submit(std::function<void()> task) {
  {
    MutexLock lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void ThreadPool::stop() {
  {
    MutexLock lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void ThreadPool::worker() {
  while (true) {
    std::function<void()> task;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) cv_.wait(lock);
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace atelier
