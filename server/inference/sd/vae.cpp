#include "server/inference/sd/vae.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace atelier::sd {

namespace {

using nlohmann::json;
constexpr double kEps = 1e-6;

Status bad(const std::string& msg) {
  return Status::invalid_argument("vae/config.json: " + msg);
}

}  // namespace

Result<VaeConfig> parse_vae_config(const std::string& json_text) {
  auto j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  VaeConfig c;
  for (auto [key, slot] :
       {std::pair{"in_channels", &c.in_channels}, std::pair{"out_channels", &c.out_channels},
        std::pair{"latent_channels", &c.latent_channels},
        std::pair{"layers_per_block", &c.layers_per_block},
        std::pair{"norm_num_groups", &c.norm_num_groups}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 100'000)
      return bad(std::string(key) + " is not a positive integer");
    *slot = it->get<int64_t>();
  }
  if (auto it = j.find("block_out_channels"); it != j.end()) {
    if (!it->is_array() || it->empty() || it->size() > 8)
      return bad("block_out_channels is not a list");
    c.block_out_channels.clear();
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
          v.get<int64_t>() % c.norm_num_groups != 0) {
        return bad("block_out_channels entries must be multiples of norm_num_groups");
      }
      c.block_out_channels.push_back(v.get<int64_t>());
    }
  }
  if (auto it = j.find("scaling_factor"); it != j.end() && it->is_number()) {
    c.scaling_factor = it->get<double>();
  }
  if (auto it = j.find("force_upcast"); it != j.end() && it->is_boolean()) {
    c.force_upcast = it->get<bool>();
  }
  for (const char* key : {"down_block_types", "up_block_types"}) {
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_array() || it->size() != c.block_out_channels.size()) {
        return bad(std::string(key) + " does not match block_out_channels");
      }
      for (const auto& t : *it) {
        if (t != "DownEncoderBlock2D" && t != "UpDecoderBlock2D") {
          return bad(std::string(key) + ": " + t.dump() + " is not supported");
        }
      }
    }
  }
  return c;
}

Result<Vae> Vae::load(const std::string& dir, torch::Dtype dtype, torch::Device device) {
  return load_component<Vae>(dir, "diffusion_pytorch_model.safetensors", parse_vae_config, dtype,
                             device);
}

Result<Vae> Vae::build(const VaeConfig& config, Weights& w) {
  const VaeConfig& c = config;
  const auto& ch = c.block_out_channels;
  const auto n = static_cast<int64_t>(ch.size());
  const int64_t g = c.norm_num_groups, lat = c.latent_channels;
  auto mid = [&](const std::string& p, int64_t channels) {
    return Mid{Resnet::load(w, p + ".resnets.0", channels, channels, 0, g, kEps),
               Resnet::load(w, p + ".resnets.1", channels, channels, 0, g, kEps),
               SpatialSelfAttention::load(w, p + ".attentions.0", channels, g)};
  };

  Vae v;
  v.config_ = c;
  v.enc_in_ = Conv::load(w, "encoder.conv_in", c.in_channels, ch[0], 3);
  int64_t channels = ch[0];
  for (int64_t i = 0; i < n; ++i) {
    const std::string p = "encoder.down_blocks." + std::to_string(i);
    Level l;
    for (int64_t j = 0; j < c.layers_per_block; ++j) {
      l.resnets.push_back(Resnet::load(w, p + ".resnets." + std::to_string(j),
                                       j == 0 ? channels : ch[i], ch[i], 0, g, kEps));
    }
    // Stride 2 without padding, after padding right and bottom by one (see encode()).
    if (i + 1 < n) l.sampler = Conv::load(w, p + ".downsamplers.0.conv", ch[i], ch[i], 3, 2, 0);
    channels = ch[i];
    v.down_.push_back(std::move(l));
  }
  v.enc_mid_ = mid("encoder.mid_block", ch.back());
  v.enc_norm_out_ = GroupNorm::load(w, "encoder.conv_norm_out", ch.back(), g, kEps);
  v.enc_out_ = Conv::load(w, "encoder.conv_out", ch.back(), 2 * lat, 3);
  v.quant_conv_ = Conv::load(w, "quant_conv", 2 * lat, 2 * lat, 1);

  v.post_quant_conv_ = Conv::load(w, "post_quant_conv", lat, lat, 1);
  v.dec_in_ = Conv::load(w, "decoder.conv_in", lat, ch.back(), 3);
  v.dec_mid_ = mid("decoder.mid_block", ch.back());
  int64_t prev = ch.back();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t out = ch[static_cast<size_t>(n - 1 - i)];
    const std::string p = "decoder.up_blocks." + std::to_string(i);
    Level l;
    for (int64_t j = 0; j <= c.layers_per_block; ++j) {
      l.resnets.push_back(Resnet::load(w, p + ".resnets." + std::to_string(j), j == 0 ? prev : out,
                                       out, 0, g, kEps));
    }
    if (i + 1 < n) l.sampler = Conv::load(w, p + ".upsamplers.0.conv", out, out, 3);
    prev = out;
    v.up_.push_back(std::move(l));
  }
  v.dec_norm_out_ = GroupNorm::load(w, "decoder.conv_norm_out", ch[0], g, kEps);
  v.dec_out_ = Conv::load(w, "decoder.conv_out", ch[0], c.out_channels, 3);
  if (Status st = w.check(); !st.is_ok()) return st;
  return v;
}

LatentDistribution Vae::encode(const torch::Tensor& image,
                               std::map<std::string, torch::Tensor>* trace) const {
  torch::Tensor x = enc_in_(image);
  for (const Level& l : down_) {
    for (const Resnet& r : l.resnets) x = r(x, {});
    if (l.sampler) x = (*l.sampler)(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));
  }
  x = enc_mid_.r1(enc_mid_.attn(enc_mid_.r0(x, {})), {});
  x = enc_out_(torch::silu(enc_norm_out_(x)));
  torch::Tensor moments = quant_conv_(x);
  if (trace) (*trace)["moments"] = moments;
  auto parts = moments.chunk(2, 1);
  LatentDistribution d;
  d.mean = parts[0];
  d.logvar = parts[1].clamp(-30.0, 20.0);
  d.std = torch::exp(0.5 * d.logvar);
  return d;
}

torch::Tensor Vae::decode(const torch::Tensor& latents,
                          std::map<std::string, torch::Tensor>* trace) const {
  torch::Tensor z = post_quant_conv_(latents);
  if (trace) (*trace)["post_quant_conv"] = z;
  torch::Tensor x = dec_in_(z);
  x = dec_mid_.r1(dec_mid_.attn(dec_mid_.r0(x, {})), {});
  if (trace) (*trace)["mid_block"] = x;
  for (const Level& l : up_) {
    for (const Resnet& r : l.resnets) x = r(x, {});
    if (l.sampler) x = (*l.sampler)(torch::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2}));
  }
  return dec_out_(torch::silu(dec_norm_out_(x)));
}

}  // namespace atelier::sd
