// The torch-wide settings of the worker pool, kept behind a torch-free header: which devices the
// workers run on, how many CPU threads torch uses, and the per-thread state each worker holds.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace atelier::inference {

// Expands the configured worker list: "auto" becomes every CUDA device ("cuda:0", ...) or, with
// none, "cpu"; "cuda" becomes "cuda:0". kUnavailable when a CUDA device is asked for that this
// build of libtorch cannot see (a CPU-only libtorch, no driver, or an index out of range).
Result<std::vector<std::string>> resolve_worker_devices(const std::vector<std::string>& configured);

// Sets torch's CPU intra-op thread count, process-wide (0: one per core). Call once at start-up.
void configure_torch_threads(int threads);

// Runs first on each worker thread: turns on inference mode (no autograd bookkeeping) for the
// thread's life and, for CUDA, makes the worker's device current. Keep the result alive for as
// long as the thread runs.
std::shared_ptr<void> torch_worker_thread_init(const std::string& device);

// "1.13.1 (CPU)" / "2.4.0 (CUDA, 2 devices)", for the start-up log.
std::string torch_description();

}  // namespace atelier::inference
