// A single-file checkpoint (single_file.h) as a ready pipeline: the components built from the
// family's (or the sidecar's) configs and the mapped weights, tokenized with the sidecar's
// config_dir tokenizers when it has them, else with the CLIP vocabulary Atelier ships (single
// files carry none), padded as the configs say ("!" for OpenCLIP encoders).
//
// Costs: as load_single_file (the weights once, in `dtype`); a VAE marked force_upcast is
// converted to float32. Threads: none shared.
#pragma once

#include <torch/torch.h>

#include <string>

#include "common/status.h"
#include "server/inference/sd/pipeline.h"

namespace atelier::sd {

// `clip_vocab`: OpenAI's bpe_simple_vocab_16e6.txt.gz (empty: shipped_clip_vocab()).
// `config_dir`: a folder of diffusers configs overriding the sidecar's (atelier generate's
// --config).
Result<StableDiffusion> load_single_file_pipeline(const std::string& path,
                                                  torch::Dtype dtype = torch::kFloat32,
                                                  torch::Device device = torch::kCPU,
                                                  const std::string& clip_vocab = "",
                                                  const std::string& config_dir = "");

}  // namespace atelier::sd
