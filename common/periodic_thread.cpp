#include "common/periodic_thread.h"

#include "common/thread_name.h"

namespace atelier {

void PeriodicThread::start() {
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    set_current_thread_name(name_);
    loop();
  });
}

void PeriodicThread::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeriodicThread::loop() {
  MutexLock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, interval_);
    if (stopping_) break;
    lock.unlock();
    task_();
    lock.lock();
  }
}

}  // namespace atelier
