// Stable Diffusion model folders with random weights: the real component configs of SD 1.5,
// SD 2.1 and SDXL base (or any others) written out in the diffusers layout with N(0, 0.02) weights
// under the tensor names real checkpoints use. Benchmarks and GPU checks load them through the same
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
  // SDXL's second text encoder (config.json) and tokenizer (tokenizer_config.json); empty for
  // single-encoder models.
  std::string text_encoder_2, tokenizer_2;
  // model_index.json (pipeline class, force_zeros_for_empty_prompt); empty: an SD 1.x/2.x
  // StableDiffusionPipeline index.
  std::string model_index;
};

// The published configs of runwayml/stable-diffusion-v1-5 and stabilityai/stable-diffusion-2-1
// (the keys that shape the model; a DDIM scheduler with each model's training settings), and of
// stabilityai/stable-diffusion-xl-base-1.0 (its Euler scheduler, force_zeros_for_empty_prompt,
// VAE scaling 0.13025 with force_upcast, tokenizer_2 padding with "!").
ModelConfigs sd15_configs();
ModelConfigs sd21_configs();
ModelConfigs sdxl_configs();

struct ParameterCounts {
  int64_t text_encoder = 0, unet = 0, vae = 0;
  int64_t text_encoder_2 = 0;  // 0 without one
};

// The parameters each component of `configs` has (built on the meta device: nothing allocated).
Result<ParameterCounts> count_parameters(const ModelConfigs& configs);

// Writes `dir` (created; existing files replaced): model_index.json, every component's config
// (text_encoder_2/ and tokenizer_2/ when configs has them), the vocabulary of `vocab_dir` (its
// vocab.json and merges.txt, for each tokenizer) and weights drawn from `seed`, stored as `dtype`
// (kF32 or kF16).
Status write_synthetic_model(const std::string& dir, const ModelConfigs& configs,
                             const std::string& vocab_dir, uint64_t seed,
                             safetensors::DType dtype = safetensors::DType::kF16);

}  // namespace atelier::sd
