#include "server/jobs/lease_keeper.h"

#include "common/thread_name.h"

namespace atelier::jobs {

void LeaseKeeper::start() {
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    set_current_thread_name("job-reaper");
    loop();
  });
}

void LeaseKeeper::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::loop() {
  MutexLock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, interval_);
    if (stopping_) break;
    lock.unlock();
    reap_();
    lock.lock();
  }
}

}  // namespace atelier::jobs
