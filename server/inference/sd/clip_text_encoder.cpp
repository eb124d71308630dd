#include "server/inference/sd/clip_text_encoder.h"

#include <torch/version.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/inference/sd/weights.h"

namespace atelier::sd {

namespace F = torch::nn::functional;

Result<ClipTextConfig> parse_clip_text_config(const std::string& json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument("text_encoder/config.json is not a JSON object");
  }
  ClipTextConfig c;
  for (auto [key, slot] :
       {std::pair{"vocab_size", &c.vocab_size}, std::pair{"hidden_size", &c.hidden_size},
        std::pair{"intermediate_size", &c.intermediate_size},
        std::pair{"num_attention_heads", &c.num_attention_heads},
        std::pair{"num_hidden_layers", &c.num_hidden_layers},
        std::pair{"max_position_embeddings", &c.max_position_embeddings}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1'000'000) {
      return Status::invalid_argument(std::string("text_encoder/config.json: ") + key +
                                      " is not a positive integer");
    }
    *slot = it->get<int64_t>();
  }
  if (c.hidden_size % c.num_attention_heads != 0) {
    return Status::invalid_argument(
        "text_encoder/config.json: hidden_size is not a multiple of num_attention_heads");
  }
  if (auto it = j.find("layer_norm_eps"); it != j.end() && it->is_number()) {
    c.layer_norm_eps = it->get<double>();
  }
  if (auto it = j.find("hidden_act"); it != j.end()) {
    const std::string act = it->is_string() ? it->get<std::string>() : "";
    if (act != "quick_gelu" && act != "gelu") {
      return Status::invalid_argument("text_encoder/config.json: hidden_act '" + act +
                                      "' is not supported");
    }
    c.quick_gelu = act == "quick_gelu";
  }
  // transformers writes the class it was saved from; only WithProjection has text_projection.
  if (auto it = j.find("architectures"); it != j.end() && it->is_array()) {
    for (const auto& a : *it) {
      if (a == "CLIPTextModelWithProjection") c.with_projection = true;
    }
  }
  if (auto it = j.find("projection_dim"); it != j.end() && it->is_number_integer()) {
    c.projection_dim = it->get<int64_t>();
  }
  if (c.with_projection && (c.projection_dim < 1 || c.projection_dim > 1'000'000)) {
    return Status::invalid_argument("text_encoder/config.json: projection_dim is not positive");
  }
  return c;
}

Result<ClipTextEncoder> ClipTextEncoder::load(const std::string& dir, torch::Dtype dtype,
                                              torch::Device device) {
  return load_component<ClipTextEncoder>(dir, "model.safetensors", parse_clip_text_config, dtype,
                                         device);
}

Result<ClipTextEncoder> ClipTextEncoder::build(const ClipTextConfig& config, Weights& w) {
  const ClipTextConfig& c = config;
  const int64_t h = c.hidden_size, m = c.intermediate_size;
  ClipTextEncoder e;
  e.config_ = c;
  e.token_embedding_ = w.take("text_model.embeddings.token_embedding.weight", {c.vocab_size, h});
  e.position_embedding_ =
      w.take("text_model.embeddings.position_embedding.weight", {c.max_position_embeddings, h});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "text_model.encoder.layers." + std::to_string(i) + ".";
    Layer l;
    l.ln1_w = w.take(p + "layer_norm1.weight", {h});
    l.ln1_b = w.take(p + "layer_norm1.bias", {h});
    l.q_w = w.take(p + "self_attn.q_proj.weight", {h, h});
    l.q_b = w.take(p + "self_attn.q_proj.bias", {h});
    l.k_w = w.take(p + "self_attn.k_proj.weight", {h, h});
    l.k_b = w.take(p + "self_attn.k_proj.bias", {h});
    l.v_w = w.take(p + "self_attn.v_proj.weight", {h, h});
    l.v_b = w.take(p + "self_attn.v_proj.bias", {h});
    l.o_w = w.take(p + "self_attn.out_proj.weight", {h, h});
    l.o_b = w.take(p + "self_attn.out_proj.bias", {h});
    l.ln2_w = w.take(p + "layer_norm2.weight", {h});
    l.ln2_b = w.take(p + "layer_norm2.bias", {h});
    l.fc1_w = w.take(p + "mlp.fc1.weight", {m, h});
    l.fc1_b = w.take(p + "mlp.fc1.bias", {m});
    l.fc2_w = w.take(p + "mlp.fc2.weight", {h, m});
    l.fc2_b = w.take(p + "mlp.fc2.bias", {h});
    e.layers_.push_back(std::move(l));
  }
  e.final_ln_w_ = w.take("text_model.final_layer_norm.weight", {h});
  e.final_ln_b_ = w.take("text_model.final_layer_norm.bias", {h});
  if (c.with_projection)
    e.text_projection_ = w.take("text_projection.weight", {c.projection_dim, h});
  // position_ids is a buffer some checkpoints carry; the positions are 0..L-1 regardless.
  if (Status st = w.check({"text_model.embeddings.position_ids"}); !st.is_ok()) return st;
  return e;
}

torch::Tensor ClipTextEncoder::attention(const Layer& l, const torch::Tensor& x) const {
  const int64_t b = x.size(0), n = x.size(1), heads = config_.num_attention_heads;
  const int64_t d = config_.hidden_size / heads;
  auto split = [&](const torch::Tensor& t) { return t.view({b, n, heads, d}).transpose(1, 2); };
  torch::Tensor q = split(F::linear(x, l.q_w, l.q_b));
  torch::Tensor k = split(F::linear(x, l.k_w, l.k_b));
  torch::Tensor v = split(F::linear(x, l.v_w, l.v_b));
  torch::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  out = at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
#else
  // The explicit form: scores scaled before the product, a causal mask of the dtype's lowest
  // value above the diagonal, softmax, weighted sum (as transformers' eager attention).
  torch::Tensor scores =
      torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(d))), k.transpose(-1, -2));
  torch::Tensor mask =
      torch::full({n, n}, -std::numeric_limits<float>::infinity(), scores.options()).triu(1);
  out = torch::matmul(torch::softmax(scores + mask, -1), v);
#endif
  out = out.transpose(1, 2).reshape({b, n, config_.hidden_size});
  return F::linear(out, l.o_w, l.o_b);
}

ClipTextOutput ClipTextEncoder::forward(const torch::Tensor& input_ids) const {
  const int64_t n = input_ids.size(1);
  const std::vector<int64_t> norm_shape{config_.hidden_size};
  ClipTextOutput out;
  torch::Tensor x =
      F::embedding(input_ids, token_embedding_) + position_embedding_.narrow(0, 0, n).unsqueeze(0);
  out.hidden_states.push_back(x);
  for (const Layer& l : layers_) {
    torch::Tensor r = x;
    x = r +
        attention(l, torch::layer_norm(x, norm_shape, l.ln1_w, l.ln1_b, config_.layer_norm_eps));
    r = x;
    torch::Tensor hdn =
        F::linear(torch::layer_norm(x, norm_shape, l.ln2_w, l.ln2_b, config_.layer_norm_eps),
                  l.fc1_w, l.fc1_b);
    hdn = config_.quick_gelu ? hdn * torch::sigmoid(1.702 * hdn) : torch::gelu(hdn);
    x = r + F::linear(hdn, l.fc2_w, l.fc2_b);
    out.hidden_states.push_back(x);
  }
  out.last_hidden_state =
      torch::layer_norm(x, norm_shape, final_ln_w_, final_ln_b_, config_.layer_norm_eps);
  torch::Tensor at = input_ids.argmax(-1);
  out.pooler_output =
      out.last_hidden_state.index({torch::arange(input_ids.size(0), input_ids.options()), at});
  if (text_projection_.defined()) out.text_embeds = F::linear(out.pooler_output, text_projection_);
  return out;
}

}  // namespace atelier::sd
