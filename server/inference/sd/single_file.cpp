#include "server/inference/sd/single_file.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <tuple>

#include "server/inference/sd/clip_text_encoder.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/single_file_layout.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace layout;

bool any_name(const TensorShapes& t, const std::function<bool(const std::string&)>& pred) {
  return std::any_of(t.begin(), t.end(), [&](const auto& kv) { return pred(kv.first); });
}

bool has_prefix(const TensorShapes& t, std::string_view prefix) {
  auto it = t.lower_bound(std::string(prefix));
  return it != t.end() && starts_with(it->first, prefix);
}

bool contains(const TensorShapes& t, std::string_view part) {
  return any_name(t, [&](const std::string& n) { return n.find(part) != std::string::npos; });
}

// A tensor's first dimension, or -1 when absent or a scalar.
int64_t dim0(const TensorShapes& t, const std::string& name) {
  auto it = t.find(name);
  return it == t.end() || it->second.empty() ? -1 : it->second[0];
}

std::string examples(const TensorShapes& t) {
  std::string s;
  size_t n = 0;
  for (auto it = t.begin(); it != t.end() && n < 5; ++it, ++n) s += (n ? ", " : "") + it->first;
  return t.empty() ? std::string("no tensors") : s;
}

}  // namespace

ModelConfigs default_configs(Family family, const TensorShapes& tensors) {
  ModelConfigs c = family_configs(family);
  json unet = json::parse(c.unet);
  bool changed = false;
  auto in = tensors.find(std::string(kUnetPrefix) + "input_blocks.0.0.weight");
  if (in != tensors.end() && in->second.size() == 4 && in->second[1] != unet["in_channels"]) {
    unet["in_channels"] = in->second[1];
    changed = true;
  }
  auto proj = std::find_if(tensors.begin(), tensors.end(), [](const auto& kv) {
    return starts_with(kv.first, kUnetPrefix) && kv.first.ends_with(".proj_in.weight");
  });
  if (proj != tensors.end()) {
    const bool linear = proj->second.size() == 2;
    if (linear != unet["use_linear_projection"].get<bool>()) {
      unet["use_linear_projection"] = linear;
      changed = true;
    }
  }
  if (changed) c.unet = unet.dump(2);
  return c;
}

namespace {

// Sidecar `<stem>.json`, applied to `info.configs`; `config_dir_override` (atelier generate's
// --config) replaces the sidecar's config_dir, and works without a sidecar.
Status apply_sidecar(SingleFileInfo& info, const std::string& config_dir_override) {
  fs::path side = fs::path(info.path);
  side.replace_extension(".json");
  std::error_code ec;
  json j = json::object();
  auto bad = [&](const std::string& msg) {
    return Status::invalid_argument("sidecar " + side.string() + ": " + msg);
  };
  if (fs::exists(side, ec)) {
    info.sidecar = side.string();
    auto text = read_model_file(side.string());
    if (!text.is_ok()) return text.status();
    j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "prediction_type" && key != "config_dir") {
      return bad("unknown key '" + key + "' (known: prediction_type, config_dir)");
    }
  }
  if (!config_dir_override.empty()) {
    j["config_dir"] = fs::absolute(config_dir_override).string();
    side = fs::path(config_dir_override) / "(--config)";  // names the source in messages
  }
  if (auto it = j.find("config_dir"); it != j.end()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return bad("config_dir must be a folder path (a string)");
    }
    fs::path dir(it->get<std::string>());
    if (dir.is_relative()) dir = side.parent_path() / dir;
    if (!fs::is_directory(dir, ec)) return bad("config_dir '" + dir.string() + "' is not a folder");
    info.config_dir = dir.string();
    ModelConfigs& c = info.configs;
    struct File {
      const char* path;
      std::string ModelConfigs::*slot;
      bool required;
    };
    const bool xl = info.family == Family::kSdxl;
    for (const File& f :
         {File{"unet/config.json", &ModelConfigs::unet, true},
          File{"vae/config.json", &ModelConfigs::vae, true},
          File{"text_encoder/config.json", &ModelConfigs::text_encoder, true},
          File{"text_encoder_2/config.json", &ModelConfigs::text_encoder_2, xl},
          File{"scheduler/scheduler_config.json", &ModelConfigs::scheduler, true},
          File{"model_index.json", &ModelConfigs::model_index, false},
          File{"tokenizer/tokenizer_config.json", &ModelConfigs::tokenizer, false},
          File{"tokenizer_2/tokenizer_config.json", &ModelConfigs::tokenizer_2, false}}) {
      if (!xl && std::string_view(f.path).find("_2/") != std::string_view::npos) continue;
      const fs::path file = dir / f.path;
      if (!fs::exists(file, ec)) {
        if (f.required) return bad("config_dir has no " + std::string(f.path));
        continue;
      }
      auto content = read_model_file(file.string());
      if (!content.is_ok()) return bad("config_dir: " + content.status().message());
      c.*f.slot = *content;
    }
  }
  if (auto it = j.find("prediction_type"); it != j.end()) {
    if (!it->is_string() || (*it != "epsilon" && *it != "v_prediction")) {
      return bad("prediction_type must be \"epsilon\" or \"v_prediction\", not " + it->dump());
    }
    json sched = json::parse(info.configs.scheduler, nullptr, false);
    if (sched.is_discarded() || !sched.is_object()) {
      return bad("the scheduler config is not a JSON object");
    }
    sched["prediction_type"] = *it;
    info.configs.scheduler = sched.dump(2);
  }
  return Status::ok();
}

// A tensor's bytes as a CPU tensor of the file's dtype (copied: the mapping need not be aligned).
Result<torch::Tensor> read_raw(const safetensors::File& file, const safetensors::TensorInfo& t) {
  torch::Dtype d;
  switch (t.dtype) {
    case safetensors::DType::kF32:
      d = torch::kFloat32;
      break;
    case safetensors::DType::kF16:
      d = torch::kFloat16;
      break;
    case safetensors::DType::kBF16:
      d = torch::kBFloat16;
      break;
    case safetensors::DType::kF64:
      d = torch::kFloat64;
      break;
    default:
      return Status::invalid_argument("tensor '" + t.name + "' is " +
                                      std::string(safetensors::dtype_name(t.dtype)) +
                                      ", not a floating-point type");
  }
  torch::Tensor out = torch::empty(t.shape, torch::TensorOptions().dtype(d));
  auto bytes = file.bytes(t);
  if (!bytes.empty()) std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
  return out;
}

TensorShapes shapes_of_header(const safetensors::File& file) {
  TensorShapes out;
  for (const auto& t : file.tensors()) out[t.name] = t.shape;
  return out;
}

}  // namespace

std::string_view family_name(Family family) {
  switch (family) {
    case Family::kSd1:
      return "sd1";
    case Family::kSd2:
      return "sd2";
    case Family::kSdxl:
      return "sdxl";
  }
  return "?";
}

ModelConfigs family_configs(Family family) {
  switch (family) {
    case Family::kSd1:
      return sd15_configs();
    case Family::kSd2:
      return sd21_configs();
    case Family::kSdxl:
      return sdxl_configs();
  }
  return sd15_configs();
}

Result<Family> detect_family(const TensorShapes& t) {
  auto refuse = [](const std::string& what) {
    return Status::invalid_argument(what + " checkpoints are not supported");
  };
  // Other architectures first, by the names that only they have.
  if (any_name(t, [](const std::string& n) {
        return starts_with(n, "lora_unet_") || starts_with(n, "lora_te") ||
               n.find(".lora_down.") != std::string::npos ||
               n.find(".lora_A.") != std::string::npos;
      })) {
    return Status::invalid_argument(
        "a LoRA file, not a model checkpoint (it belongs in the LoRA folder)");
  }
  if (contains(t, "joint_blocks.")) return refuse("SD3 (Stable Diffusion 3, MMDiT)");
  if (contains(t, "double_blocks.") || contains(t, "single_blocks.")) return refuse("Flux");
  if (has_prefix(t, "control_model.")) return refuse("ControlNet");
  if (has_prefix(t, "conditioner.embedders.0.model.") &&
      !has_prefix(t, "conditioner.embedders.1.")) {
    return refuse("SDXL refiner");
  }
  if (!has_prefix(t, kUnetPrefix)) {
    if (t.count("encoder.conv_in.weight") && t.count("decoder.conv_in.weight")) {
      return Status::invalid_argument("a standalone VAE, not a model checkpoint");
    }
    if (t.count("conv_in.weight") && contains(t, "down_blocks.")) {
      return Status::invalid_argument(
          "a diffusers component file, not a single-file checkpoint (use the model folder)");
    }
    return Status::invalid_argument("unrecognised checkpoint: " + examples(t));
  }
  // The UNet's cross-attention width: what its text conditioning must add up to.
  int64_t context = -1;
  for (const auto& [name, shape] : t) {
    if (starts_with(name, kUnetPrefix) && name.ends_with(".attn2.to_k.weight") &&
        shape.size() == 2) {
      context = shape[1];
      break;
    }
  }
  const bool clip = has_prefix(t, kSd1Clip), open_clip = has_prefix(t, kSd2OpenClip);
  const bool xl = has_prefix(t, kSdxlClip) && has_prefix(t, kSdxlOpenClip);
  const bool label_emb = has_prefix(t, std::string(kUnetPrefix) + "label_emb.");
  const bool vae = has_prefix(t, kVaePrefix);
  std::optional<Family> family;
  int64_t width = -1;
  if (xl && !clip && !open_clip && label_emb) {
    family = Family::kSdxl;
    const int64_t a = dim0(t, std::string(kSdxlClip) + "text_model.final_layer_norm.weight");
    const int64_t b = dim0(t, std::string(kSdxlOpenClip) + "ln_final.weight");
    width = a < 0 || b < 0 ? -1 : a + b;
  } else if (clip && !open_clip && !xl && !label_emb) {
    family = Family::kSd1;
    width = dim0(t, std::string(kSd1Clip) + "text_model.final_layer_norm.weight");
    if (width < 0) width = dim0(t, std::string(kSd1Clip) + "final_layer_norm.weight");
  } else if (open_clip && !clip && !xl && !label_emb) {
    family = Family::kSd2;
    width = dim0(t, std::string(kSd2OpenClip) + "ln_final.weight");
  } else if (label_emb && !xl) {
    return refuse("class-conditioned (SD 2.x unCLIP or upscaler)");
  }
  if (!family || context < 0)
    return Status::invalid_argument("unrecognised checkpoint: " + examples(t));
  const std::string name(family_name(*family));
  if (!vae)
    return Status::invalid_argument(name + " checkpoint without a VAE (first_stage_model.*)");
  if (width != context) {
    return Status::invalid_argument(
        name + " checkpoint whose UNet attends to " + std::to_string(context) +
        "-wide text but whose text encoders give " + std::to_string(width));
  }
  return *family;
}

Result<SingleFileInfo> inspect_single_file(const std::string& path, const std::string& config_dir) {
  auto file = safetensors::File::open(path);
  if (!file.is_ok()) return Status(file.status().code(), path + ": " + file.status().message());
  const TensorShapes tensors = shapes_of_header(*file);
  auto family = detect_family(tensors);
  if (!family.is_ok()) return Status::invalid_argument(path + ": " + family.status().message());
  SingleFileInfo info;
  info.path = path;
  info.family = *family;
  info.configs = default_configs(*family, tensors);
  if (Status st = apply_sidecar(info, config_dir); !st.is_ok()) return st;
  Plan p = plan(tensors, info.family, info.configs);
  if (Status st = problems_status(path, p.problems); !st.is_ok()) return st;
  return info;
}

Result<SingleFileWeights> load_single_file(const std::string& path, const SingleFileInfo& info,
                                           torch::Dtype dtype, torch::Device device) {
  auto file = safetensors::File::open(path);
  if (!file.is_ok()) return Status(file.status().code(), path + ": " + file.status().message());
  Plan p = plan(shapes_of_header(*file), info.family, info.configs);
  if (Status st = problems_status(path, p.problems); !st.is_ok()) return st;
  // By source, so that the three parts of a fused q/k/v tensor are read once, one after another.
  std::sort(p.entries.begin(), p.entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.source, a.part) < std::tie(b.source, b.part);
  });
  const std::vector<Component> parts = components(info.family);
  std::vector<std::map<std::string, torch::Tensor>> by_component(parts.size());
  std::string cached_name;
  torch::Tensor cached;  // the source last read: a fused q/k/v tensor serves three entries
  for (const Entry& e : p.entries) {
    if (e.source != cached_name) {
      auto raw = read_raw(*file, *file->find(e.source));
      if (!raw.is_ok()) return Status::invalid_argument(path + ": " + raw.status().message());
      cached_name = e.source;
      cached = *raw;
    }
    torch::Tensor x = cached;
    if (e.part >= 0) x = x.narrow(0, e.part * e.shape[0], e.shape[0]);
    if (e.transposed) x = x.t();
    x = x.reshape(e.shape).to(device, dtype).contiguous();
    if (e.part >= 0 && x.is_alias_of(cached)) x = x.clone();  // not a view of the fused tensor
    by_component[e.component][e.target] = std::move(x);
  }
  cached = torch::Tensor();
  SingleFileWeights out;
  for (size_t i = 0; i < parts.size(); ++i) {
    Weights w =
        Weights::from_tensors(path + " (" + parts[i].label + ")", std::move(by_component[i]));
    if (parts[i].weights) {
      out.*parts[i].weights = std::move(w);
    } else {
      out.text_encoder_2 = std::move(w);
    }
  }
  return out;
}

Result<SingleFileWeights> synthetic_components(const ModelConfigs& configs, uint64_t seed,
                                               torch::Device device) {
  SingleFileWeights out;
  auto make = [&](auto parse, auto build, const std::string& text, uint64_t s) -> Result<Weights> {
    auto c = parse(text);
    if (!c.is_ok()) return c.status();
    Weights w = Weights::synthetic(s, torch::kFloat32, device);
    if (Status st = build(*c, w); !st.is_ok()) return st;
    return w;
  };
  auto unet = make(
      parse_unet_config, [](const UNetConfig& c, Weights& w) { return UNet::build(c, w).status(); },
      configs.unet, seed);
  if (!unet.is_ok()) return unet.status();
  auto vae = make(
      parse_vae_config, [](const VaeConfig& c, Weights& w) { return Vae::build(c, w).status(); },
      configs.vae, seed + 1);
  if (!vae.is_ok()) return vae.status();
  auto text_build = [](const ClipTextConfig& c, Weights& w) {
    return ClipTextEncoder::build(c, w).status();
  };
  auto text = make(parse_clip_text_config, text_build, configs.text_encoder, seed + 2);
  if (!text.is_ok()) return text.status();
  out.unet = std::move(*unet);
  out.vae = std::move(*vae);
  out.text_encoder = std::move(*text);
  if (!configs.text_encoder_2.empty()) {
    auto text2 = make(parse_clip_text_config, text_build, configs.text_encoder_2, seed + 3);
    if (!text2.is_ok()) return text2.status();
    out.text_encoder_2 = std::move(*text2);
  }
  return out;
}

Status write_synthetic_single_file(const std::string& path, Family family,
                                   const ModelConfigs& configs, uint64_t seed,
                                   safetensors::DType dtype) {
  torch::Dtype as;
  switch (dtype) {
    case safetensors::DType::kF32:
      as = torch::kFloat32;
      break;
    case safetensors::DType::kF16:
      as = torch::kFloat16;
      break;
    case safetensors::DType::kBF16:
      as = torch::kBFloat16;
      break;
    default:
      return Status::invalid_argument("synthetic checkpoints are stored as F32, F16 or BF16");
  }
  auto weights = synthetic_components(configs, seed);
  if (!weights.is_ok()) return weights.status();
  auto tensors = to_single_file_layout(family, configs, *weights);
  if (!tensors.is_ok()) return tensors.status();
  std::vector<safetensors::TensorData> data;
  for (auto& [name, t] : *tensors) {
    torch::Tensor c = t.to(torch::kCPU, as).contiguous();
    safetensors::TensorData d{name, dtype, c.sizes().vec(), {}};
    d.bytes.resize(static_cast<size_t>(c.numel() * c.element_size()));
    if (!d.bytes.empty()) std::memcpy(d.bytes.data(), c.data_ptr(), d.bytes.size());
    t = torch::Tensor();  // one tensor at a time in both forms
    data.push_back(std::move(d));
  }
  auto bytes = safetensors::serialize(data, {{"format", "pt"}});
  if (!bytes.is_ok()) return bytes.status();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return Status::io_error("could not write " + path);
  return Status::ok();
}

}  // namespace atelier::sd
