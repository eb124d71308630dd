// AutoencoderKL (diffusers), built from a model folder's vae/config.json: the encoder (image to
// the latent distribution's mean and log-variance) and the decoder (latents to an image in
// [-1, 1]). scaling_factor and the downscale factor (2 per extra resolution level: 8 for SD,
// 2 for the tiny fixture) come from the config.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/layers.h"

namespace atelier::sd {

struct VaeConfig {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> block_out_channels{128, 256, 512, 512};
  int64_t layers_per_block = 2;
  int64_t norm_num_groups = 32;
  double scaling_factor = 0.18215;
  // The VAE overflows in fp16 (SDXL's): decode it in float32 whatever the pipeline's dtype.
  bool force_upcast = false;
  int64_t downscale_factor() const { return int64_t{1} << (block_out_channels.size() - 1); }
};

Result<VaeConfig> parse_vae_config(const std::string& json_text);

struct LatentDistribution {
  torch::Tensor mean, logvar, std;
};

class Vae {
 public:
  static Result<Vae> load(const std::string& dir, torch::Dtype dtype = torch::kFloat32,
                          torch::Device device = torch::kCPU);
  // The same from a parsed config and weights already read (or synthetic ones).
  static Result<Vae> build(const VaeConfig& config, Weights& weights);

  // image [B, 3, H, W] in [-1, 1] -> the latent distribution (unscaled).
  LatentDistribution encode(const torch::Tensor& image,
                            std::map<std::string, torch::Tensor>* trace = nullptr) const;
  // latents (already divided by scaling_factor) -> image [B, 3, H*f, W*f] in about [-1, 1].
  torch::Tensor decode(const torch::Tensor& latents,
                       std::map<std::string, torch::Tensor>* trace = nullptr) const;
  const VaeConfig& config() const { return config_; }

 private:
  struct Level {
    std::vector<Resnet> resnets;
    std::optional<Conv> sampler;
  };
  struct Mid {
    Resnet r0, r1;
    SpatialSelfAttention attn;
  };
  VaeConfig config_;
  Conv enc_in_, enc_out_, quant_conv_, post_quant_conv_, dec_in_, dec_out_;
  GroupNorm enc_norm_out_, dec_norm_out_;
  std::vector<Level> down_, up_;
  Mid enc_mid_, dec_mid_;
};

}  // namespace atelier::sd
