#include "server/inference/torch_runtime.h"

#include <torch/torch.h>

#include <thread>

namespace atelier::inference {

namespace {

// What a worker thread keeps: guards are thread-local RAII objects, so they are created and
// destroyed on the worker's own thread (the shared_ptr is released when the thread ends).
struct WorkerThreadState {
  c10::InferenceMode inference_mode;
};

}  // namespace

Result<std::vector<std::string>> resolve_worker_devices(
    const std::vector<std::string>& configured) {
  const int cuda_count = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  std::vector<std::string> out;
  for (const std::string& entry : configured) {
    if (entry == "auto") {
      if (cuda_count == 0) {
        out.push_back("cpu");
      } else {
        for (int i = 0; i < cuda_count; ++i) out.push_back("cuda:" + std::to_string(i));
      }
      continue;
    }
    if (entry == "cpu") {
      out.push_back(entry);
      continue;
    }
    std::string device = entry == "cuda" ? "cuda:0" : entry;
    int index = std::stoi(device.substr(5));
    if (index >= cuda_count) {
      return Status::unavailable("worker device " + device + " is not available (this libtorch " +
                                 "sees " + std::to_string(cuda_count) + " CUDA device(s))");
    }
    out.push_back(device);
  }
  return out;
}

void configure_torch_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

std::shared_ptr<void> torch_worker_thread_init(const std::string& device) {
  (void)device;  // generators place their tensors on their own device explicitly
  return std::make_shared<WorkerThreadState>();
}

std::string torch_description() {
  std::string out = TORCH_VERSION;
  const int cuda_count = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  if (cuda_count > 0) {
    out += " (CUDA, " + std::to_string(cuda_count) + " device(s))";
  } else {
    out += " (CPU, " + std::to_string(torch::get_num_threads()) + " threads)";
  }
  return out;
}

}  // namespace atelier::inference
