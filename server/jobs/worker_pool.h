// WorkerPool: one thread per device, each owning its own model instances, running the jobs the
// JobService hands out. A worker builds the generator for a job's model on first use and keeps
// it (weights stay on its device); it never touches sockets or SQLite itself.
//
//   WorkerPool pool(service, registry, {.devices = {"cpu"}, .thread_init = torch_thread_init});
//   pool.start();  ...  service.stop(); pool.stop();
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "server/inference/model_registry.h"
#include "server/jobs/job_service.h"

namespace atelier::jobs {

struct WorkerPoolOptions {
  std::vector<std::string> devices = {"cpu"};  // one worker per entry ("cpu", "cuda:0", ...)
  // Runs first on each worker thread with its device; what it returns lives as long as the
  // thread (e.g. a torch::InferenceMode guard). May be empty.
  std::function<std::shared_ptr<void>(const std::string& device)> thread_init;
  std::string name_prefix = "worker";  // worker ids: "<prefix>-<index>-<device>"
};

class WorkerPool {
 public:
  WorkerPool(JobService& service, const inference::ModelRegistry& models,
             WorkerPoolOptions options);
  // Calls stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts the threads; kInvalidArgument when no device is given.
  Status start();
  // Joins the threads. Call JobService::stop() first: it wakes idle workers and interrupts
  // running jobs (which go back to the queue).
  void stop();
  size_t size() const { return threads_.size(); }

 private:
  void run(size_t index, const std::string& device);

  JobService& service_;
  const inference::ModelRegistry& models_;
  const WorkerPoolOptions options_;
  std::vector<std::thread> threads_;
};

}  // namespace atelier::jobs
