// Readiness: whether this process should receive traffic (GET /readyz).
//
// Components register a named check at start-up as "not ready: <reason>" and mark it ready
// once they are (the store after migrations, the worker pool once its workers run). Shutdown
// flips the whole process to "shutting down" first, so load balancers stop sending work before
// connections close. Thread-safe.
#pragma once

#include <map>
#include <string>

#include "common/mutex.h"

namespace atelier {

class Readiness {
 public:
  struct Snapshot {
    bool ready = false;
    bool shutting_down = false;
    std::map<std::string, std::string> checks;  // name -> "ok" or the reason it is not
  };

  void set_pending(const std::string& name, const std::string& reason);
  void set_ready(const std::string& name);
  void set_shutting_down();
  Snapshot snapshot() const;

 private:
  mutable Mutex mu_;
  std::map<std::string, std::string> checks_ ATELIER_GUARDED_BY(mu_);
  bool shutting_down_ ATELIER_GUARDED_BY(mu_) = false;
};

}  // namespace atelier
