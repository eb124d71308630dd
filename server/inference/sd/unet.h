// UNet2DConditionModel (diffusers), built from a model folder's unet/config.json: sinusoidal
// timestep embedding, conv_in, down blocks (resnets, optional cross-attention transformers,
// downsampling), the mid block, up blocks with skip connections and upsampling, and the output
// head. Channels, layers per block, heads, cross-attention width, linear or convolutional
// projections and norm groups all come from the config, so the tiny fixture, SD 1.x and SD 2.x
// load through the same code.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/layers.h"

namespace atelier::sd {

struct UNetConfig {
  int64_t in_channels = 4, out_channels = 4;
  std::vector<int64_t> block_out_channels{320, 640, 1280, 1280};
  std::vector<bool> down_cross_attention{true, true, true, false};  // per down block
  std::vector<bool> up_cross_attention{false, true, true, true};    // per up block
  std::vector<int64_t> heads{8, 8, 8, 8};                           // per down block
  int64_t layers_per_block = 2;
  int64_t cross_attention_dim = 768;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  bool use_linear_projection = false;
  bool flip_sin_to_cos = true;
  int64_t freq_shift = 0;
  // BasicTransformerBlocks per Transformer2DModel, one entry per down block (the up blocks use
  // the list reversed, the mid block its last entry): SDXL's (1, 2, 10).
  std::vector<int64_t> transformer_layers{1, 1, 1, 1};
  // SDXL's added conditioning (addition_embed_type "text_time"): the pooled text embedding and
  // six size/crop ids, each id embedded with addition_time_embed_dim sinusoids, through
  // add_embedding (projection_class_embeddings_input_dim inputs) into the time embedding.
  bool text_time = false;
  int64_t addition_time_embed_dim = 256;
  int64_t projection_class_embeddings_input_dim = 2816;
  // LCM-distilled models: the guidance scale enters as an embedding of this width added to the
  // timestep's (time_embedding.cond_proj), so they take no unconditional pass. 0: none.
  int64_t time_cond_proj_dim = 0;
};

// The embedding LCM-distilled UNets take for guidance `w` (diffusers'
// get_guidance_scale_embedding: sinusoids of w * 1000, sines then cosines): [1, dim], float32.
torch::Tensor guidance_embedding(double w, int64_t dim);

Result<UNetConfig> parse_unet_config(const std::string& json_text);

// SDXL's added conditioning (UNetConfig::text_time): the pooled embedding of the second text
// encoder [B, P] and the six size ids [B, 6] (original h, w, crop top, left, target h, w).
struct AddedConditioning {
  torch::Tensor text_embeds, time_ids;
};

class UNet {
 public:
  static Result<UNet> load(const std::string& dir, torch::Dtype dtype = torch::kFloat32,
                           torch::Device device = torch::kCPU);
  // From weights already at hand (Weights::synthetic() for benchmarks).
  static Result<UNet> build(const UNetConfig& config, Weights& weights);

  // sample [B, C, H, W]; timesteps [B] or [1] (float); context [B, 77, cross_attention_dim].
  // `trace`, when given, receives the named intermediates the fixture lists (time_proj,
  // time_embedding, conv_in, down_blocks_i, mid_block, up_blocks_i, conv_norm_out).
  // `guidance`: guidance_embedding() for models with time_cond_proj_dim (ignored otherwise).
  // `added`: required by text_time models (then also traced: add_time_proj,
  // add_embedding_input, add_embedding), ignored otherwise.
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timesteps,
                        const torch::Tensor& context,
                        std::map<std::string, torch::Tensor>* trace = nullptr,
                        const torch::Tensor& guidance = {},
                        const AddedConditioning* added = nullptr) const;
  const UNetConfig& config() const { return config_; }

 private:
  struct Block {
    std::vector<Resnet> resnets;
    std::vector<SpatialTransformer> attentions;  // empty, or one per resnet
    std::optional<Conv> sampler;                 // down: stride-2 conv; up: conv after upsampling
  };
  torch::Tensor sinusoids(const torch::Tensor& t, int64_t dim) const;

  UNetConfig config_;
  Linear time_linear_1_, time_linear_2_;
  std::optional<Linear> cond_proj_;                    // time_cond_proj_dim > 0
  std::optional<Linear> add_linear_1_, add_linear_2_;  // text_time
  Conv conv_in_, conv_out_;
  GroupNorm norm_out_;
  std::vector<Block> down_, up_;
  Block mid_;
};

}  // namespace atelier::sd
