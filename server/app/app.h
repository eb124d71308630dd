// App: one running Atelier server — the wiring of config, store, router and HTTP server, and
// the order in which they start and stop.
//
// Start-up: lock the data dir, open the store (migrations), build the routes, listen.
// Shutdown (SIGINT/SIGTERM or request_stop()): /readyz turns 503, the listener closes, requests
// in flight finish (idle connections close at once), then the store is flushed and closed —
// all within config.shutdown_timeout_ms.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "common/config.h"
#include "common/status.h"
#include "server/inference/model_registry.h"

namespace atelier::app {

// Seams for tests; the `atelier` binary leaves them empty.
struct AppHooks {
  // Runs once the built-in and discovered models and LoRAs are registered, before any worker
  // starts: tests add fake models and LoRAs here.
  std::function<Status(inference::ModelRegistry&)> register_models;
};

class App {
 public:
  explicit App(ServerConfig config, AppHooks hooks = {});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  Status start();
  // The port actually listened on (after start()).
  uint16_t port() const;
  // Blocks until SIGINT/SIGTERM or request_stop(), then shuts down. Returns the exit status.
  int run_until_stopped();
  // Thread-safe; makes run_until_stopped() return after a graceful shutdown.
  void request_stop();
  // Graceful shutdown; idempotent. run_until_stopped() calls it.
  void shutdown();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace atelier::app
