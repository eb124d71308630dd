// The `atelier` binary as the crash tests run it: a fresh process on a data directory that
// survives it, optionally with crash points armed (ATELIER_TEST_CRASH_AT, server/app/app.cpp),
// killed and restarted by the test again and again.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace atelier::testing {

class CrashServer {
 public:
  // Starts `bin serve` on port 0 with `dir`/data, no web root and `extra` arguments, logging to
  // `dir`/server-<cycle>.log. With `crash_at` armed, the process may kill itself at a crash
  // point during start-up (recovery runs jobs before the listener opens): that is a crash like
  // any other, and listening() is then false. Any other failure to start throws.
  CrashServer(const std::string& bin, const TempDir& dir, int cycle, const std::string& crash_at,
              const std::vector<std::string>& extra) {
    using namespace std::chrono_literals;
    std::vector<std::string> args = {bin,          "serve",
                                     "--port",     "0",
                                     "--data-dir", (dir / "data").string(),
                                     "--web-root", (dir / "no-web").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::map<std::string, std::string> env;
    if (!crash_at.empty()) env["ATELIER_TEST_CRASH_AT"] = crash_at;
    child_ = std::make_unique<ChildProcess>(
        args, dir / ("server-" + std::to_string(cycle) + ".log"), env);
    auto out = child_->wait_for_output("listening on", 30s);
    if (!out) {
      if (!crash_at.empty() && child_->wait(10s) &&
          child_->output().find("test crash point") != std::string::npos) {
        return;
      }
      throw std::runtime_error("server did not start: " + child_->output());
    }
    port_ = parse_listening_port(*out);
  }
  // False: the process killed itself at a crash point before it was listening.
  bool listening() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  ChildProcess& child() { return *child_; }

 private:
  std::unique_ptr<ChildProcess> child_;
  uint16_t port_ = 0;
};

}  // namespace atelier::testing
