// Stable Diffusion model folders with random weights: the real component configs of SD 1.5 and
// SD 2.1 (or any others) written out in the diffusers layout with N(0, 0.02) weights under the
// tensor names real checkpoints use. Benchmarks and GPU checks load them through the same
// StableDiffusion::load as downloaded models, at full size, without any downloaded weights.
#pragma once

#include <cstdint>
#include <string>

#include "common/safetensors.h"
#include "common/status.h"

namespace atelier::sd {

// The texts of each component's config file.
struct ModelConfigs {
  std::string unet, vae, text_encoder, scheduler, tokenizer;  // tokenizer: tokenizer_config.json
};

// The published configs of runwayml/stable-diffusion-v1-5 and stabilityai/stable-diffusion-2-1
// (the keys that shape the model; a DDIM scheduler with each model's training settings).
ModelConfigs sd15_configs();
ModelConfigs sd21_configs();

struct ParameterCounts {
  int64_t text_encoder = 0, unet = 0, vae = 0;
};

// The parameters each component of `configs` has (built on the meta device: nothing allocated).
Result<ParameterCounts> count_parameters(const ModelConfigs& configs);

// Writes `dir` (created; existing files replaced): model_index.json, every component's config,
// the vocabulary of `vocab_dir` (its vocab.json and merges.txt) and weights drawn from `seed`,
// stored as `dtype` (kF32 or kF16).
Status write_synthetic_model(const std::string& dir, const ModelConfigs& configs,
                             const std::string& vocab_dir, uint64_t seed,
                             safetensors::DType dtype = safetensors::DType::kF16);

}  // namespace atelier::sd
