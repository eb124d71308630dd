#include "server/inference/sd/checkpoint_keys.h"

#include <optional>
#include <string_view>
#include <vector>

namespace atelier::sd {
namespace {

// The names a build takes, from a build on the meta device (nothing allocated). Empty when the
// build refuses the config.
template <class Model, class Config>
std::vector<std::string> parameter_names(const Config& config) {
  Weights w = Weights::synthetic(0, torch::kFloat32, torch::Device(torch::kMeta));
  if (!Model::build(config, w).is_ok()) return {};
  std::vector<std::string> names;
  for (const auto& [name, t] : w.tensors()) names.push_back(name);
  return names;
}

// `name` split at dots.
std::vector<std::string> split(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(name.substr(start, dot - start));
  }
  parts.push_back(name.substr(start));
  return parts;
}

// parts[from...] joined with dots.
std::string join(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) out += (out.empty() ? "" : ".") + parts[i];
  return out;
}

int64_t number(const std::string& s) {
  return std::stoll(s);
}

// Inside a UNet resnet: diffusers' names for the openaimodel ResBlock's sequentials.
std::string unet_resnet(const std::vector<std::string>& p, size_t at) {
  static const std::map<std::string, std::string> kRenames = {
      {"norm1", "in_layers.0"},  {"conv1", "in_layers.2"},  {"time_emb_proj", "emb_layers.1"},
      {"norm2", "out_layers.0"}, {"conv2", "out_layers.3"}, {"conv_shortcut", "skip_connection"}};
  auto it = kRenames.find(p[at]);
  return (it == kRenames.end() ? p[at] : it->second) + "." + join(p, at + 1);
}

// One UNet parameter's original name; nullopt for ones the original layout does not have.
std::optional<std::string> unet_original(const UNetConfig& c, const std::string& name) {
  const std::vector<std::string> p = split(name);
  const int64_t per_level = c.layers_per_block + 1;  // openaimodel's blocks per level
  const std::string& head = p[0];
  if (head == "time_embedding" && p[1] == "linear_1") return "time_embed.0." + join(p, 2);
  if (head == "time_embedding" && p[1] == "linear_2") return "time_embed.2." + join(p, 2);
  if (head == "add_embedding" && p[1] == "linear_1") return "label_emb.0.0." + join(p, 2);
  if (head == "add_embedding" && p[1] == "linear_2") return "label_emb.0.2." + join(p, 2);
  if (head == "conv_in") return "input_blocks.0.0." + join(p, 1);
  if (head == "conv_norm_out") return "out.0." + join(p, 1);
  if (head == "conv_out") return "out.2." + join(p, 1);
  if (head == "down_blocks" && p.size() > 4) {
    // input_blocks: conv_in, then each level's resnets (with their attentions), then its
    // downsampler.
    const int64_t i = number(p[1]), j = number(p[3]);
    const std::string block = "input_blocks." + std::to_string(i * per_level + j + 1);
    if (p[2] == "resnets") return block + ".0." + unet_resnet(p, 4);
    if (p[2] == "attentions") return block + ".1." + join(p, 4);
    if (p[2] == "downsamplers") {
      return "input_blocks." + std::to_string((i + 1) * per_level) + ".0.op." + join(p, 5);
    }
  }
  if (head == "mid_block" && p.size() > 3) {
    if (p[1] == "resnets")
      return "middle_block." + std::string(p[2] == "0" ? "0." : "2.") + unet_resnet(p, 3);
    if (p[1] == "attentions") return "middle_block.1." + join(p, 3);
  }
  if (head == "up_blocks" && p.size() > 4) {
    const int64_t i = number(p[1]), j = number(p[3]);
    const std::string block = "output_blocks." + std::to_string(i * per_level + j);
    if (p[2] == "resnets") return block + ".0." + unet_resnet(p, 4);
    if (p[2] == "attentions") return block + ".1." + join(p, 4);
    if (p[2] == "upsamplers") {
      // After the level's last resnet, and its attention when the level has one.
      const bool attention = c.up_cross_attention[static_cast<size_t>(i)];
      return "output_blocks." + std::to_string(i * per_level + c.layers_per_block) +
             (attention ? ".2." : ".1.") + join(p, 4);
    }
  }
  return std::nullopt;
}

std::string vae_resnet(const std::vector<std::string>& p, size_t at) {
  return (p[at] == "conv_shortcut" ? std::string("nin_shortcut") : p[at]) + "." + join(p, at + 1);
}

std::optional<std::string> vae_original(const VaeConfig& c, const std::string& name) {
  const std::vector<std::string> p = split(name);
  const auto levels = static_cast<int64_t>(c.block_out_channels.size());
  if (p[0] != "encoder" && p[0] != "decoder") return name;  // conv_in/out, (post_)quant_conv
  const std::string& part = p[0];
  if (p.size() > 4 && p[1] == "down_blocks") {
    const std::string level = part + ".down." + p[2];
    if (p[3] == "resnets") return level + ".block." + p[4] + "." + vae_resnet(p, 5);
    if (p[3] == "downsamplers") return level + ".downsample." + join(p, 5);
  }
  if (p.size() > 4 && p[1] == "up_blocks") {
    // The decoder's levels are numbered from the lowest resolution in the original.
    const std::string level = part + ".up." + std::to_string(levels - 1 - number(p[2]));
    if (p[3] == "resnets") return level + ".block." + p[4] + "." + vae_resnet(p, 5);
    if (p[3] == "upsamplers") return level + ".upsample." + join(p, 5);
  }
  if (p.size() > 3 && p[1] == "mid_block") {
    if (p[2] == "resnets") {
      return part + ".mid.block_" + std::string(p[3] == "0" ? "1" : "2") + "." + vae_resnet(p, 4);
    }
    if (p[2] == "attentions" && p.size() > 4) {
      static const std::map<std::string, std::string> kAttn = {{"group_norm", "norm"},
                                                               {"to_q", "q"},
                                                               {"to_k", "k"},
                                                               {"to_v", "v"},
                                                               {"to_out", "proj_out"}};
      auto it = kAttn.find(p[4]);
      if (it == kAttn.end()) return std::nullopt;
      // to_out.0.weight: the index of diffusers' ModuleList has no counterpart.
      return part + ".mid.attn_1." + it->second + "." + join(p, p[4] == "to_out" ? 6 : 5);
    }
  }
  if (p[1] == "conv_norm_out") return part + ".norm_out." + join(p, 2);
  return name;
}

std::optional<OriginalTensor> open_clip_original(const std::string& name) {
  const std::vector<std::string> p = split(name);
  if (name == "text_model.embeddings.token_embedding.weight") {
    return OriginalTensor{"token_embedding.weight"};
  }
  if (name == "text_model.embeddings.position_embedding.weight") {
    return OriginalTensor{"positional_embedding"};
  }
  if (name == "text_projection.weight") return OriginalTensor{"text_projection", -1, true};
  if (p.size() == 3 && p[0] == "text_model" && p[1] == "final_layer_norm") {
    return OriginalTensor{"ln_final." + p[2]};
  }
  if (p.size() >= 6 && p[0] == "text_model" && p[1] == "encoder" && p[2] == "layers") {
    const std::string block = "transformer.resblocks." + p[3] + ".";
    const std::string& module = p[4];
    if (module == "self_attn" && p.size() == 7) {
      static const std::map<std::string, int> kParts = {
          {"q_proj", 0}, {"k_proj", 1}, {"v_proj", 2}};
      if (auto it = kParts.find(p[5]); it != kParts.end()) {
        return OriginalTensor{block + "attn.in_proj_" + p[6], it->second};
      }
      if (p[5] == "out_proj") return OriginalTensor{block + "attn.out_proj." + p[6]};
    }
    if (module == "layer_norm1") return OriginalTensor{block + "ln_1." + p[5]};
    if (module == "layer_norm2") return OriginalTensor{block + "ln_2." + p[5]};
    if (module == "mlp" && p.size() == 7 && p[5] == "fc1") {
      return OriginalTensor{block + "mlp.c_fc." + p[6]};
    }
    if (module == "mlp" && p.size() == 7 && p[5] == "fc2") {
      return OriginalTensor{block + "mlp.c_proj." + p[6]};
    }
  }
  return std::nullopt;
}

}  // namespace

std::map<std::string, std::string> unet_original_names(const UNetConfig& c) {
  std::map<std::string, std::string> out;
  for (const std::string& name : parameter_names<UNet>(c)) {
    if (auto original = unet_original(c, name)) out[name] = *original;
  }
  return out;
}

std::map<std::string, std::string> vae_original_names(const VaeConfig& c) {
  std::map<std::string, std::string> out;
  for (const std::string& name : parameter_names<Vae>(c)) {
    if (auto original = vae_original(c, name)) out[name] = *original;
  }
  return out;
}

std::map<std::string, std::string> clip_original_names(const ClipTextConfig& c) {
  std::map<std::string, std::string> out;
  for (const std::string& name : parameter_names<ClipTextEncoder>(c)) out[name] = name;
  return out;
}

std::map<std::string, OriginalTensor> open_clip_original_tensors(const ClipTextConfig& c) {
  std::map<std::string, OriginalTensor> out;
  for (const std::string& name : parameter_names<ClipTextEncoder>(c)) {
    if (auto original = open_clip_original(name)) out[name] = *original;
  }
  return out;
}

}  // namespace atelier::sd
