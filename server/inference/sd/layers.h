// The building blocks the UNet and the VAE share, as diffusers defines them: convolutions, group
// norms, resnet blocks (optionally time-conditioned), multi-head attention (self or cross) and
// the spatial transformer. Each is loaded from Weights under a name prefix with shapes computed
// from the config, so a misfit checkpoint is refused before it runs.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "server/inference/sd/weights.h"

namespace atelier::sd {

// Floating-point operations (multiply-adds count 2) the layers below have run on this thread;
// benchmarks reset and read it. Counted only for convolutions, linear maps and attention.
int64_t& flop_counter();

struct Conv {
  torch::Tensor w, b;
  int64_t stride = 1, padding = 0;
  static Conv load(Weights& w, const std::string& name, int64_t in, int64_t out, int64_t k,
                   int64_t stride = 1, int64_t padding = -1);
  torch::Tensor operator()(const torch::Tensor& x) const;
};

struct Linear {
  torch::Tensor w, b;  // b undefined: no bias
  static Linear load(Weights& w, const std::string& name, int64_t in, int64_t out, bool bias);
  torch::Tensor operator()(const torch::Tensor& x) const;
};

struct GroupNorm {
  torch::Tensor w, b;
  int64_t groups = 32;
  double eps = 1e-5;
  static GroupNorm load(Weights& w, const std::string& name, int64_t channels, int64_t groups,
                        double eps);
  torch::Tensor operator()(const torch::Tensor& x) const;
};

struct LayerNorm {
  torch::Tensor w, b;
  double eps = 1e-5;
  static LayerNorm load(Weights& w, const std::string& name, int64_t dim, double eps);
  torch::Tensor operator()(const torch::Tensor& x) const;
};

// ResnetBlock2D: norm, silu, conv, (+ time embedding), norm, silu, conv, plus the input (through
// a 1x1 conv when the channel count changes).
struct Resnet {
  GroupNorm norm1, norm2;
  Conv conv1, conv2;
  std::optional<Conv> shortcut;
  std::optional<Linear> time_proj;
  static Resnet load(Weights& w, const std::string& name, int64_t in, int64_t out,
                     int64_t temb_channels, int64_t groups, double eps);
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& temb) const;
};

// Multi-head attention over [B, N, C] (keys and values from `context`, or from x itself).
struct Attention {
  Linear q, k, v, out;
  int64_t heads = 1;
  static Attention load(Weights& w, const std::string& name, int64_t query_dim, int64_t context_dim,
                        int64_t heads, int64_t dim_head, bool qkv_bias);
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& context) const;
};

// Transformer2DModel with one or more BasicTransformerBlocks (self-attention, cross-attention,
// GEGLU feed-forward), between a group norm + projection in and a projection out.
struct SpatialTransformer {
  struct Block {
    LayerNorm norm1, norm2, norm3;
    Attention attn1, attn2;
    Linear ff_in, ff_out;
  };
  GroupNorm norm;
  bool linear_projection = false;
  Conv proj_in_conv, proj_out_conv;
  Linear proj_in_linear, proj_out_linear;
  std::vector<Block> blocks;
  static SpatialTransformer load(Weights& w, const std::string& name, int64_t channels,
                                 int64_t heads, int64_t context_dim, int64_t layers, int64_t groups,
                                 bool linear_projection);
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& context) const;
};

// The VAE's single-head attention over the pixels of a feature map, with its residual.
struct SpatialSelfAttention {
  GroupNorm norm;
  Attention attn;
  static SpatialSelfAttention load(Weights& w, const std::string& name, int64_t channels,
                                   int64_t groups);
  torch::Tensor operator()(const torch::Tensor& x) const;
};

}  // namespace atelier::sd
