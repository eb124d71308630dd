#include "common/readiness.h"

namespace atelier {

void Readiness::set_pending(const std::string& name, const std::string& reason) {
  MutexLock lock(mu_);
  checks_[name] = reason.empty() ? "starting" : reason;
}

void Readiness::set_ready(const std::string& name) {
  MutexLock lock(mu_);
  checks_[name] = "ok";
}

void Readiness::set_shutting_down() {
  MutexLock lock(mu_);
  shutting_down_ = true;
}

Readiness::Snapshot Readiness::snapshot() const {
  MutexLock lock(mu_);
  Snapshot s;
  s.checks = checks_;
  s.shutting_down = shutting_down_;
  // No checks registered means nothing has started yet: not ready.
  s.ready = !shutting_down_ && !checks_.empty();
  for (const auto& [name, state] : checks_) {
    if (state != "ok") s.ready = false;
  }
  return s;
}

}  // namespace atelier
