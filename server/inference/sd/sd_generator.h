// The `sd` model family as the server sees it. Under the models directory, every folder with a
// diffusers model_index.json (SD 1.x/2.x, SDXL) and every `*.safetensors` single-file checkpoint
// (single_file.h; id: the file name without the extension) becomes a model whose parameter
// ranges and samplers come from its configs, and whose generator runs the libtorch pipeline.
// A model that cannot be used (truncated, corrupt, unrecognised, an unsupported architecture)
// is still listed, unavailable, with its reason. LoRA files (`*.safetensors` in the LoRA
// directory) are listed with their family; one whose keys fit no layer of its family is listed
// unavailable. Every model and LoRA file gets its sha256 (remembered across restarts by the
// FileHashCache). No torch in this header: the app includes it.
//
// Pipelines load lazily on first use, into a per-worker cache with a memory budget; the least
// recently used ones are dropped when a load would exceed it, and a model larger than the
// budget fails its jobs with both sizes. On CUDA they run in fp16 unless configured otherwise
// (VAEs marked force_upcast stay float32); on the CPU in fp32. LoRA sets switch per job on the
// cached weights (lora.h), never reloading the model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/inference/file_hash.h"
#include "server/inference/model_registry.h"

namespace atelier::inference {

struct SdOptions {
  int64_t cache_bytes = int64_t{8} << 30;  // per worker
  bool fp16_on_cuda = true;
  std::string loras_dir;   // empty: <models_dir>/loras
  std::string clip_vocab;  // OpenAI's BPE file for single files; empty: the one Atelier ships
  FileHashCache* hashes = nullptr;  // nullptr: hashed in memory, once per discovery
};

struct SdDiscovery {
  std::vector<ModelEntry> models;     // available or not
  std::vector<LoraInfo> loras;        // available or not
  std::vector<std::string> problems;  // each unusable model or LoRA, with its reason
};

// Scans `models_dir` (a missing directory is no models, not an error) and the LoRA directory.
SdDiscovery discover_sd_models(const std::string& models_dir, const SdOptions& options);

// One folder's or single file's ModelInfo (id = its name), or why it is not a usable model.
// No hash (discovery adds it). `config_dir`: for a single file, its configs' folder (as a
// sidecar's config_dir).
Result<ModelInfo> sd_model_info(const std::string& source, const std::string& config_dir = "");

// The generator of an available model (sd_generator.cpp).
GeneratorFactory sd_generator_factory(ModelInfo info, std::string source, SdOptions options);

}  // namespace atelier::inference
