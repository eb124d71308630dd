// The `sd` model family as the server sees it: every folder under the models directory with a
// diffusers model_index.json becomes a model (id: the folder's name) whose parameter ranges and
// samplers come from its configs, and whose generator runs the libtorch pipeline (pipeline.h).
// No torch in this header: the app includes it.
//
// Pipelines load lazily on first use, into a per-worker cache with a memory budget; the least
// recently used ones are dropped when a load would exceed it. On CUDA they run in fp16 unless
// configured otherwise; on the CPU in fp32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/inference/model_registry.h"

namespace atelier::inference {

struct SdOptions {
  int64_t cache_bytes = int64_t{8} << 30;  // per worker
  bool fp16_on_cuda = true;
};

struct SdDiscovery {
  std::vector<ModelEntry> models;
  std::vector<std::string> problems;  // folders skipped, each with its reason
};

// Scans `models_dir` (a missing directory is no models, not an error).
SdDiscovery discover_sd_models(const std::string& models_dir, const SdOptions& options);

// One folder's ModelInfo (id = folder name), or why it is not a usable model.
Result<ModelInfo> sd_model_info(const std::string& dir);

}  // namespace atelier::inference
