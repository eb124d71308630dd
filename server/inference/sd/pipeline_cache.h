// The Stable Diffusion pipelines one worker holds: loaded on first use, kept within a memory
// budget, the least recently used dropped first when a load would go over it. A model source is
// a diffusers folder or a single-file checkpoint (single_file.h).
//
// Contract: one cache per worker thread (not thread-safe); a pointer from get() stays valid
// until the next get(). Memory is counted as the parameters' bytes in the dtype they are loaded
// as (read from the safetensors headers, nothing loaded; a force_upcast VAE in float32). Models
// are dropped before a load so that two never have to fit at once. A model larger than the
// whole budget is refused with both sizes (kResourceExhausted), and so is a load that runs out
// of memory: the job fails, the worker goes on.
// Each pipeline carries its LoRA patcher (lora.h), created on first use: switching LoRA sets
// between jobs patches the cached weights in place and never reloads the model.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/lora.h"
#include "server/inference/sd/pipeline.h"

namespace atelier::sd {

// The bytes the weights of `source` (a model folder or a single file) take in `dtype`.
Result<int64_t> parameter_bytes(const std::string& source, torch::Dtype dtype);

struct CachedPipeline {
  StableDiffusion pipeline;
  std::optional<LoraPatcher> loras;  // created by the first job that asks for a LoRA
};

class PipelineCache {
 public:
  using Loader = std::function<Result<StableDiffusion>(const std::string& source, torch::Dtype,
                                                       torch::Device)>;

  // Folders through StableDiffusion::load, files through load_single_file_pipeline tokenized
  // with `clip_vocab` (empty: the vocabulary Atelier ships).
  static Loader default_loader(std::string clip_vocab = "");

  explicit PipelineCache(int64_t budget_bytes, Loader loader = default_loader());

  Result<CachedPipeline*> get(const std::string& source, torch::Dtype dtype, torch::Device device);

  std::vector<std::string> loaded() const;  // most recently used first
  int64_t used_bytes() const { return used_; }

 private:
  struct Entry {
    std::string source;
    torch::Dtype dtype;
    torch::Device device;
    CachedPipeline cached;
    int64_t bytes = 0;
  };
  int64_t budget_;
  Loader loader_;
  std::list<Entry> entries_;
  int64_t used_ = 0;
};

}  // namespace atelier::sd
