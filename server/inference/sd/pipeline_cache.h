// The Stable Diffusion pipelines one worker holds: loaded on first use, kept within a memory
// budget, the least recently used dropped first when a load would go over it.
//
// Contract: one cache per worker thread (not thread-safe); a pointer from get() stays valid
// until the next get(). Memory is counted as the parameters' bytes in the dtype they are loaded
// as (read from the safetensors headers, nothing loaded). Models are dropped before a load so
// that two never have to fit at once; a model larger than the whole budget still loads, alone.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/pipeline.h"

namespace atelier::sd {

// The bytes the weights of model folder `dir` take in `dtype`.
Result<int64_t> parameter_bytes(const std::string& dir, torch::Dtype dtype);

class PipelineCache {
 public:
  using Loader =
      std::function<Result<StableDiffusion>(const std::string& dir, torch::Dtype, torch::Device)>;

  explicit PipelineCache(int64_t budget_bytes, Loader loader = default_loader());

  Result<const StableDiffusion*> get(const std::string& dir, torch::Dtype dtype,
                                     torch::Device device);

  std::vector<std::string> loaded() const;  // most recently used first
  int64_t used_bytes() const { return used_; }

 private:
  static Loader default_loader();
  struct Entry {
    std::string dir;
    torch::Dtype dtype;
    torch::Device device;
    StableDiffusion pipeline;
    int64_t bytes = 0;
  };
  int64_t budget_;
  Loader loader_;
  std::list<Entry> entries_;
  int64_t used_ = 0;
};

}  // namespace atelier::sd
