// The CLIP text encoder of Stable Diffusion (transformers' CLIPTextModel), built from a model
// folder's text_encoder/config.json and its safetensors weights: token and position embeddings,
// pre-norm transformer layers with causal self-attention and a quick_gelu (or gelu) MLP, and a
// final layer norm. The UNet is conditioned on last_hidden_state.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/weights.h"

namespace atelier::sd {

struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_attention_heads = 12;
  int64_t num_hidden_layers = 12;
  int64_t max_position_embeddings = 77;
  double layer_norm_eps = 1e-5;
  bool quick_gelu = true;  // hidden_act "quick_gelu" (SD 1.x) or "gelu" (SD 2.x)
  // CLIPTextModelWithProjection (SDXL's second encoder): text_projection.weight
  // [projection_dim, hidden_size], no bias, applied to the pooled output.
  bool with_projection = false;
  int64_t projection_dim = 0;
};

Result<ClipTextConfig> parse_clip_text_config(const std::string& json_text);

struct ClipTextOutput {
  torch::Tensor last_hidden_state;           // [B, L, hidden], after the final layer norm
  std::vector<torch::Tensor> hidden_states;  // embeddings, then each layer's output
  torch::Tensor pooler_output;               // [B, hidden] at each row's largest id (end token)
  torch::Tensor text_embeds;  // [B, projection_dim]: text_projection(pooler_output), if any
};

class ClipTextEncoder {
 public:
  // `dir`: the folder's text_encoder/ (config.json and model.safetensors). Missing, misshapen
  // or unexpected weights are refused, each named.
  static Result<ClipTextEncoder> load(const std::string& dir, torch::Dtype dtype = torch::kFloat32,
                                      torch::Device device = torch::kCPU);
  // The same from a parsed config and weights already read (or synthetic ones).
  static Result<ClipTextEncoder> build(const ClipTextConfig& config, Weights& weights);

  // input_ids: [B, L] int64, L <= max_position_embeddings.
  ClipTextOutput forward(const torch::Tensor& input_ids) const;
  const ClipTextConfig& config() const { return config_; }

 private:
  struct Layer {
    torch::Tensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
    torch::Tensor ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
  };
  torch::Tensor attention(const Layer& l, const torch::Tensor& x) const;

  ClipTextConfig config_;
  torch::Tensor token_embedding_, position_embedding_, final_ln_w_, final_ln_b_;
  torch::Tensor text_projection_;  // undefined without projection
  std::vector<Layer> layers_;
};

}  // namespace atelier::sd
