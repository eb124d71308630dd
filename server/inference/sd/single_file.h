// Single-file checkpoints: one `*.safetensors` holding a whole Stable Diffusion model in the
// original layout (LDM for SD 1.x/2.x, SGM for SDXL), as model sites and A1111/ComfyUI users keep
// them. The family is detected from the header alone, the family's published configs describe
// the components (or a sidecar's), and every tensor is mapped to the diffusers name the
// component builds take (checkpoint_keys.h).
//
// Rules:
//   * Families: SD 1.x (CLIP-L under cond_stage_model.transformer.), SD 2.x (OpenCLIP under
//     cond_stage_model.model., its last layer unused as diffusers does), SDXL base
//     (conditioner.embedders.0.transformer. and .1.model., label_emb). SD3, Flux, the SDXL
//     refiner, LoRA files, lone VAEs or UNets are refused by name; anything else as
//     "unrecognised checkpoint: <example names>". The UNet's cross-attention width must equal the
//     text encoders' widths.
//   * Sidecar `<name>.json` next to the file (optional): {"prediction_type": "epsilon" |
//     "v_prediction", "config_dir": "<folder of diffusers configs>"}; config_dir relative to the
//     sidecar's folder. Unknown keys and bad values are refused, naming the key. Without
//     config_dir the family's published configs are used, with in_channels (inpainting models)
//     and the transformers' projection kind read from the weights. SD 2.x defaults to SD 2.1's
//     v-prediction (not detectable from weights).
//   * Every tensor a component needs must be present with its shape (up to trailing 1s: LDM's
//     1x1-convolution attention in the VAE; [C] or [C, 1, 1] biases); tensors under a
//     component's prefix that nothing takes are errors, by name. Ignored: everything outside
//     the component prefixes (model_ema.*, the noise schedule, denoiser.*), position_ids,
//     OpenCLIP's logit_scale / attn_mask, SD 2.x's unused last OpenCLIP layer and projection,
//     the VAE's training loss.
//   * OpenCLIP's text_projection: real checkpoints hold `text_projection` [width, proj]
//     (transposed on load); files written by diffusers' conversion script hold
//     `text_projection.weight` [proj, width] (used as is).
// Costs: inspect reads the header and the sidecar and builds the components on the meta device
// (milliseconds, no tensor data touched). load reads the memory-mapped file one tensor at a time
// into `dtype` on `device`: peak memory is the loaded weights plus one tensor in the file's dtype.
// Threads: no shared state; File mappings are read-only, so several loads may run at once.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/safetensors.h"
#include "common/status.h"
#include "server/inference/sd/synthetic_model.h"
#include "server/inference/sd/weights.h"

namespace atelier::sd {

enum class Family { kSd1, kSd2, kSdxl };
std::string_view family_name(Family family);  // "sd1" | "sd2" | "sdxl"

// Tensor name -> shape, as a safetensors header lists them.
using TensorShapes = std::map<std::string, std::vector<int64_t>>;

// The family from names and shapes only (what inspect_single_file uses on the header).
Result<Family> detect_family(const TensorShapes& tensors);

// sd15_configs(), sd21_configs() or sdxl_configs().
ModelConfigs family_configs(Family family);
// The same adapted to what a checkpoint's tensors show: the UNet's in_channels (9 for inpainting
// models) and whether its transformers project with Linear layers or 1x1 convolutions.
ModelConfigs default_configs(Family family, const TensorShapes& tensors);

// OK when `tensors` hold exactly what the components of `configs` take in `family`'s layout
// (ignored names aside); otherwise one error naming each missing, misshapen and unexpected
// tensor, as Weights::check does.
Status check_layout(const TensorShapes& tensors, Family family, const ModelConfigs& configs);

struct SingleFileInfo {
  std::string path;
  Family family = Family::kSd1;
  ModelConfigs configs;    // the family's (adapted to the weights) or config_dir's, sidecar applied
  std::string sidecar;     // the sidecar's path when there was one
  std::string config_dir;  // the folder the configs came from (sidecar or --config), if any
};

// Header and sidecar only: family, configs, and the layout checked against them. Errors: the
// file's (not found, truncated, corrupt header), the sidecar's, detection's, check_layout's.
// `config_dir`: as a sidecar's config_dir, overriding it (atelier generate's --config).
Result<SingleFileInfo> inspect_single_file(const std::string& path,
                                           const std::string& config_dir = "");

struct SingleFileWeights {
  Weights unet, vae, text_encoder;
  std::optional<Weights> text_encoder_2;  // SDXL
};

// Every component tensor under its diffusers name, in `dtype` on `device`, ready for
// UNet/Vae/ClipTextEncoder::build with info.configs' parsed configs.
Result<SingleFileWeights> load_single_file(const std::string& path, const SingleFileInfo& info,
                                           torch::Dtype dtype = torch::kFloat32,
                                           torch::Device device = torch::kCPU);

// The reverse, for tests and benchmarks: component weights in the diffusers layout as tensors
// named as in a real `family` checkpoint (OpenCLIP q/k/v fused, text_projection transposed, VAE
// attention as [C, C, 1, 1] convolutions with [C] biases). Meta tensors give shapes only.
Result<std::map<std::string, torch::Tensor>> to_single_file_layout(
    Family family, const ModelConfigs& configs, const SingleFileWeights& weights);

// Random N(0, 0.02) weights for every component of `configs`, as the builds take them (on the
// meta device: shapes only, nothing allocated).
Result<SingleFileWeights> synthetic_components(const ModelConfigs& configs, uint64_t seed,
                                               torch::Device device = torch::kCPU);

// Writes a `family` checkpoint of random weights for `configs` to `path` (kF32, kF16 or kBF16).
Status write_synthetic_single_file(const std::string& path, Family family,
                                   const ModelConfigs& configs, uint64_t seed,
                                   safetensors::DType dtype = safetensors::DType::kF16);

}  // namespace atelier::sd
