#include "server/inference/sd/unet.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace atelier::sd {

namespace {

using nlohmann::json;

Status bad(const std::string& msg) {
  return Status::invalid_argument("unet/config.json: " + msg);
}

}  // namespace

Result<UNetConfig> parse_unet_config(const std::string& json_text) {
  auto j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  UNetConfig c;
  auto get_int = [&](const char* key, int64_t& out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 100'000)
      return bad(std::string(key) + " is not a non-negative integer");
    out = it->get<int64_t>();
    return Status::ok();
  };
  for (auto [key, slot] :
       {std::pair{"in_channels", &c.in_channels}, std::pair{"out_channels", &c.out_channels},
        std::pair{"layers_per_block", &c.layers_per_block},
        std::pair{"cross_attention_dim", &c.cross_attention_dim},
        std::pair{"norm_num_groups", &c.norm_num_groups}, std::pair{"freq_shift", &c.freq_shift}}) {
    if (Status st = get_int(key, *slot); !st.is_ok()) return st;
  }
  if (auto it = j.find("block_out_channels"); it != j.end()) {
    if (!it->is_array() || it->empty()) return bad("block_out_channels is not a list");
    c.block_out_channels.clear();
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < 1)
        return bad("block_out_channels has a bad entry");
      c.block_out_channels.push_back(v.get<int64_t>());
    }
  }
  const size_t n = c.block_out_channels.size();
  auto block_types = [&](const char* key, std::vector<bool>& cross, const char* with,
                         const char* without) -> Status {
    auto it = j.find(key);
    if (it == j.end()) {
      if (cross.size() != n) return bad(std::string(key) + " is missing");
      return Status::ok();
    }
    if (!it->is_array() || it->size() != n)
      return bad(std::string(key) + " does not match block_out_channels");
    cross.clear();
    for (const auto& v : *it) {
      const std::string t = v.is_string() ? v.get<std::string>() : "";
      if (t != with && t != without)
        return bad(std::string(key) + ": '" + t + "' is not supported");
      cross.push_back(t == with);
    }
    return Status::ok();
  };
  if (Status st = block_types("down_block_types", c.down_cross_attention, "CrossAttnDownBlock2D",
                              "DownBlock2D");
      !st.is_ok())
    return st;
  if (Status st =
          block_types("up_block_types", c.up_cross_attention, "CrossAttnUpBlock2D", "UpBlock2D");
      !st.is_ok())
    return st;
  if (auto it = j.find("mid_block_type");
      it != j.end() && !it->is_null() && *it != "UNetMidBlock2DCrossAttn") {
    return bad("mid_block_type '" + it->dump() + "' is not supported");
  }
  // diffusers' naming quirk: attention_head_dim is the number of heads unless
  // num_attention_heads is given. An int applies to every block, a list gives one per block.
  json heads = j.contains("num_attention_heads") && !j["num_attention_heads"].is_null()
                   ? j["num_attention_heads"]
                   : (j.contains("attention_head_dim") ? j["attention_head_dim"] : json(8));
  c.heads.assign(n, 8);
  if (heads.is_number_integer()) {
    c.heads.assign(n, heads.get<int64_t>());
  } else if (heads.is_array() && heads.size() == n) {
    for (size_t i = 0; i < n; ++i)
      c.heads[i] = heads[i].is_number_integer() ? heads[i].get<int64_t>() : 0;
  } else {
    return bad("attention_head_dim is neither a number nor one per block");
  }
  for (size_t i = 0; i < n; ++i) {
    if (c.heads[i] < 1 || c.block_out_channels[i] % c.heads[i] != 0) {
      return bad("block " + std::to_string(i) + "'s channels are not a multiple of its heads");
    }
    if (c.block_out_channels[i] % c.norm_num_groups != 0) {
      return bad("block " + std::to_string(i) +
                 "'s channels are not a multiple of norm_num_groups");
    }
  }
  if (auto it = j.find("norm_eps"); it != j.end() && it->is_number())
    c.norm_eps = it->get<double>();
  if (auto it = j.find("use_linear_projection"); it != j.end() && it->is_boolean())
    c.use_linear_projection = it->get<bool>();
  if (auto it = j.find("flip_sin_to_cos"); it != j.end() && it->is_boolean())
    c.flip_sin_to_cos = it->get<bool>();
  c.transformer_layers.assign(n, 1);
  if (auto it = j.find("transformer_layers_per_block"); it != j.end() && !it->is_null()) {
    if (it->is_number_integer()) {
      c.transformer_layers.assign(n, it->get<int64_t>());
    } else if (it->is_array() && it->size() == n) {
      for (size_t i = 0; i < n; ++i) {
        c.transformer_layers[i] = (*it)[i].is_number_integer() ? (*it)[i].get<int64_t>() : 0;
      }
    } else {
      return bad("transformer_layers_per_block is neither a number nor one per block");
    }
    for (int64_t layers : c.transformer_layers) {
      if (layers < 1 || layers > 100) return bad("transformer_layers_per_block must be 1 to 100");
    }
  }
  if (auto it = j.find("time_cond_proj_dim"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 2 || it->get<int64_t>() > 4096) {
      return bad("time_cond_proj_dim must be an integer from 2 to 4096");
    }
    c.time_cond_proj_dim = it->get<int64_t>();
  }
  if (auto it = j.find("addition_embed_type"); it != j.end() && !it->is_null()) {
    if (*it != "text_time") return bad("addition_embed_type '" + it->dump() + "' is not supported");
    c.text_time = true;
    for (auto [key, slot] : {std::pair{"addition_time_embed_dim", &c.addition_time_embed_dim},
                             std::pair{"projection_class_embeddings_input_dim",
                                       &c.projection_class_embeddings_input_dim}}) {
      auto v = j.find(key);
      if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() < 2 ||
          v->get<int64_t>() > 1'000'000) {
        return bad(std::string(key) + " must be a positive integer with text_time conditioning");
      }
      *slot = v->get<int64_t>();
    }
  }
  for (const char* unsupported : {"class_embed_type", "encoder_hid_dim"}) {
    if (auto it = j.find(unsupported); it != j.end() && !it->is_null()) {
      return bad(std::string(unsupported) + " is not supported");
    }
  }
  if (auto it = j.find("resnet_time_scale_shift");
      it != j.end() && it->is_string() && *it != "default") {
    return bad("resnet_time_scale_shift '" + it->get<std::string>() + "' is not supported");
  }
  return c;
}

torch::Tensor guidance_embedding(double w, int64_t dim) {
  const int64_t half = dim / 2;
  const double step = std::log(10000.0) / static_cast<double>(half - 1);
  torch::Tensor freqs = torch::exp(torch::arange(half, torch::kFloat32) * -step);
  torch::Tensor args = static_cast<float>(w * 1000.0) * freqs.unsqueeze(0);
  torch::Tensor emb = torch::cat({torch::sin(args), torch::cos(args)}, 1);
  if (dim % 2 == 1) emb = torch::constant_pad_nd(emb, {0, 1});
  return emb;
}

Result<UNet> UNet::load(const std::string& dir, torch::Dtype dtype, torch::Device device) {
  return load_component<UNet>(dir, "diffusion_pytorch_model.safetensors", parse_unet_config, dtype,
                              device);
}

Result<UNet> UNet::build(const UNetConfig& config, Weights& w) {
  const UNetConfig& c = config;
  const auto& ch = c.block_out_channels;
  const int64_t n = static_cast<int64_t>(ch.size());
  const int64_t temb = ch[0] * 4, g = c.norm_num_groups;
  const double eps = c.norm_eps;
  auto transformer = [&](const std::string& name, int64_t channels, int64_t heads, int64_t layers) {
    return SpatialTransformer::load(w, name, channels, heads, c.cross_attention_dim, layers, g,
                                    c.use_linear_projection);
  };

  UNet u;
  u.config_ = c;
  u.time_linear_1_ = Linear::load(w, "time_embedding.linear_1", ch[0], temb, true);
  u.time_linear_2_ = Linear::load(w, "time_embedding.linear_2", temb, temb, true);
  if (c.time_cond_proj_dim > 0) {
    u.cond_proj_ = Linear::load(w, "time_embedding.cond_proj", c.time_cond_proj_dim, ch[0], false);
  }
  if (c.text_time) {
    u.add_linear_1_ = Linear::load(w, "add_embedding.linear_1",
                                   c.projection_class_embeddings_input_dim, temb, true);
    u.add_linear_2_ = Linear::load(w, "add_embedding.linear_2", temb, temb, true);
  }
  u.conv_in_ = Conv::load(w, "conv_in", c.in_channels, ch[0], 3);
  int64_t channels = ch[0];
  for (int64_t i = 0; i < n; ++i) {
    const std::string p = "down_blocks." + std::to_string(i);
    Block b;
    for (int64_t j = 0; j < c.layers_per_block; ++j) {
      const std::string r = p + ".resnets." + std::to_string(j);
      b.resnets.push_back(Resnet::load(w, r, j == 0 ? channels : ch[i], ch[i], temb, g, eps));
      if (c.down_cross_attention[i])
        b.attentions.push_back(transformer(p + ".attentions." + std::to_string(j), ch[i],
                                           c.heads[i], c.transformer_layers[i]));
    }
    channels = ch[i];
    if (i + 1 < n) b.sampler = Conv::load(w, p + ".downsamplers.0.conv", ch[i], ch[i], 3, 2, 1);
    u.down_.push_back(std::move(b));
  }
  const int64_t mid = ch.back();
  u.mid_.resnets.push_back(Resnet::load(w, "mid_block.resnets.0", mid, mid, temb, g, eps));
  u.mid_.attentions.push_back(
      transformer("mid_block.attentions.0", mid, c.heads.back(), c.transformer_layers.back()));
  u.mid_.resnets.push_back(Resnet::load(w, "mid_block.resnets.1", mid, mid, temb, g, eps));
  // Up blocks mirror the down blocks; each resnet also takes one skip connection.
  int64_t prev = ch.back();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t out = ch[static_cast<size_t>(n - 1 - i)];
    const int64_t skip_in = ch[static_cast<size_t>(std::max<int64_t>(n - 2 - i, 0))];
    const int64_t heads = c.heads[static_cast<size_t>(n - 1 - i)];
    const int64_t layers = c.transformer_layers[static_cast<size_t>(n - 1 - i)];
    const std::string p = "up_blocks." + std::to_string(i);
    Block b;
    for (int64_t j = 0; j <= c.layers_per_block; ++j) {
      const int64_t skip = j == c.layers_per_block ? skip_in : out;
      const int64_t in = (j == 0 ? prev : out) + skip;
      b.resnets.push_back(
          Resnet::load(w, p + ".resnets." + std::to_string(j), in, out, temb, g, eps));
      if (c.up_cross_attention[static_cast<size_t>(i)])
        b.attentions.push_back(
            transformer(p + ".attentions." + std::to_string(j), out, heads, layers));
    }
    if (i + 1 < n) b.sampler = Conv::load(w, p + ".upsamplers.0.conv", out, out, 3);
    prev = out;
    u.up_.push_back(std::move(b));
  }
  u.norm_out_ = GroupNorm::load(w, "conv_norm_out", ch[0], g, eps);
  u.conv_out_ = Conv::load(w, "conv_out", ch[0], c.out_channels, 3);
  if (Status st = w.check(); !st.is_ok()) return st;
  return u;
}

// diffusers' get_timestep_embedding: `dim` sinusoids of each value in t [N], float32.
torch::Tensor UNet::sinusoids(const torch::Tensor& t, int64_t dim) const {
  const int64_t half = dim / 2;
  torch::Tensor freqs =
      torch::exp(-std::log(10000.0) * torch::arange(half, t.options().dtype(torch::kFloat32)) /
                 static_cast<double>(half - config_.freq_shift));
  torch::Tensor args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
  torch::Tensor emb = config_.flip_sin_to_cos ? torch::cat({torch::cos(args), torch::sin(args)}, 1)
                                              : torch::cat({torch::sin(args), torch::cos(args)}, 1);
  if (dim % 2 == 1) emb = torch::constant_pad_nd(emb, {0, 1});
  return emb;
}

torch::Tensor UNet::forward(const torch::Tensor& sample, const torch::Tensor& timesteps,
                            const torch::Tensor& context,
                            std::map<std::string, torch::Tensor>* trace,
                            const torch::Tensor& guidance, const AddedConditioning* added) const {
  auto keep = [&](const char* name, const torch::Tensor& t) {
    if (trace) (*trace)[name] = t;
  };
  const int64_t b = sample.size(0);
  torch::Tensor t = timesteps.to(torch::kFloat32).reshape({-1}).expand({b});
  torch::Tensor t_emb = sinusoids(t, config_.block_out_channels[0]).to(sample.scalar_type());
  keep("time_proj", t_emb);
  if (cond_proj_ && guidance.defined()) {
    t_emb = t_emb + (*cond_proj_)(guidance.to(sample.options()).expand({b, -1}));
  }
  torch::Tensor emb = time_linear_2_(torch::silu(time_linear_1_(t_emb)));
  keep("time_embedding", emb);
  if (add_linear_1_) {
    TORCH_CHECK(added && added->text_embeds.defined() && added->time_ids.defined(),
                "this UNet needs text_embeds and time_ids");
    torch::Tensor ids = added->time_ids.to(sample.device(), torch::kFloat32).reshape({-1});
    torch::Tensor id_emb = sinusoids(ids, config_.addition_time_embed_dim);
    keep("add_time_proj", id_emb);
    torch::Tensor in = torch::cat(
        {added->text_embeds.to(sample.options()), id_emb.reshape({b, -1}).to(sample.scalar_type())},
        1);
    keep("add_embedding_input", in);
    torch::Tensor aug = (*add_linear_2_)(torch::silu((*add_linear_1_)(in)));
    keep("add_embedding", aug);
    emb = emb + aug;
  }

  torch::Tensor x = conv_in_(sample);
  keep("conv_in", x);
  std::vector<torch::Tensor> skips{x};
  for (size_t i = 0; i < down_.size(); ++i) {
    const Block& blk = down_[i];
    for (size_t j = 0; j < blk.resnets.size(); ++j) {
      x = blk.resnets[j](x, emb);
      if (!blk.attentions.empty()) x = blk.attentions[j](x, context);
      skips.push_back(x);
    }
    if (blk.sampler) {
      x = (*blk.sampler)(x);
      skips.push_back(x);
    }
    if (trace) (*trace)["down_blocks_" + std::to_string(i)] = x;
  }
  x = mid_.resnets[0](x, emb);
  x = mid_.attentions[0](x, context);
  x = mid_.resnets[1](x, emb);
  keep("mid_block", x);
  for (size_t i = 0; i < up_.size(); ++i) {
    const Block& blk = up_[i];
    for (size_t j = 0; j < blk.resnets.size(); ++j) {
      x = torch::cat({x, skips.back()}, 1);
      skips.pop_back();
      x = blk.resnets[j](x, emb);
      if (!blk.attentions.empty()) x = blk.attentions[j](x, context);
    }
    if (blk.sampler) {
      x = (*blk.sampler)(torch::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2}));
    }
    if (trace) (*trace)["up_blocks_" + std::to_string(i)] = x;
  }
  x = norm_out_(x);
  keep("conv_norm_out", x);
  return conv_out_(torch::silu(x));
}

}  // namespace atelier::sd
