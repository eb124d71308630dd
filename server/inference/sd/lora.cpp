#include "server/inference/sd/lora.h"

#include <cctype>
#include <cmath>
#include <filesystem>

#include "common/safetensors.h"
#include "server/inference/sd/checkpoint_keys.h"

namespace atelier::sd {
namespace {

constexpr std::string_view kDown = "lora_down.weight", kUp = "lora_up.weight", kAlpha = "alpha";
constexpr std::string_view kUnet = "lora_unet_", kTe = "lora_te_", kTe1 = "lora_te1_",
                           kTe2 = "lora_te2_";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string shape_str(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Errors about a LoRA are the caller's input: the API answers them as 400 on `loras`.
Status bad(const std::string& label, const std::string& msg) {
  return Status::invalid_argument("LoRA '" + label + "': " + msg, "loras");
}

Result<torch::Tensor> read_tensor(const safetensors::File& file, const safetensors::TensorInfo& t,
                                  const std::string& label) {
  auto values = file.to_float(t);
  if (!values.is_ok()) return bad(label, "'" + t.name + "': " + values.status().message());
  torch::Tensor x = torch::from_blob(values->data(), t.shape, torch::kFloat32).clone();
  if (!torch::isfinite(x).all().item<bool>()) {
    return bad(label, "'" + t.name + "' holds values that are not finite");
  }
  return x;
}

// The depth index after "transformer_blocks_" in a module name, or -1.
int64_t transformer_block_index(std::string_view name) {
  constexpr std::string_view kTb = "transformer_blocks_";
  const size_t at = name.find(kTb);
  if (at == std::string_view::npos) return -1;
  int64_t v = 0;
  size_t i = at + kTb.size();
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i)
    v = v * 10 + (name[i] - '0');
  return v;
}

// SDXL signs (see the contract): te1/te2 modules, the added-conditioning embedding, transformer
// depth above 1 (SD 1.x/2.x have depth 1 everywhere), cross-attention keys 2048 wide.
LoraFamily detect_family(const std::vector<LoraModule>& modules) {
  for (const auto& m : modules) {
    if (starts_with(m.name, kTe1) || starts_with(m.name, kTe2)) return LoraFamily::kSdxl;
    if (!starts_with(m.name, kUnet)) continue;
    const std::string_view path = std::string_view(m.name).substr(kUnet.size());
    if (starts_with(path, "label_emb") || starts_with(path, "add_embedding"))
      return LoraFamily::kSdxl;
    if (transformer_block_index(path) >= 1) return LoraFamily::kSdxl;
    if ((ends_with(path, "attn2_to_k") || ends_with(path, "attn2_to_v")) && m.down.size(1) == 2048)
      return LoraFamily::kSdxl;
  }
  return LoraFamily::kSd1;
}

// "down_blocks.0.resnets.0.conv1.weight" -> "down_blocks_0_resnets_0_conv1"
std::string kohya_path(std::string_view param) {
  std::string s(param.substr(0, param.size() - std::string_view(".weight").size()));
  for (char& c : s) c = c == '.' ? '_' : c;
  return s;
}

// Linear and convolution weights only: norms are 1-D, and CLIP's token and position embeddings
// are 2-D lookups that kohya never targets.
bool patchable(const std::string& name, const torch::Tensor& t) {
  return ends_with(name, ".weight") && (t.dim() == 2 || t.dim() == 4) &&
         name.find("embeddings.") == std::string::npos;
}

}  // namespace

std::string_view lora_family_name(LoraFamily family) {
  return family == LoraFamily::kSdxl ? "SDXL" : "SD 1.x";
}

LoraFamily model_lora_family(const UNetConfig& unet) {
  return unet.text_time ? LoraFamily::kSdxl : LoraFamily::kSd1;
}

Result<Lora> Lora::load(const std::string& path) {
  auto file = safetensors::File::open(path);
  if (!file.is_ok()) return file.status().with_context("LoRA " + path);
  return parse(*file, std::filesystem::path(path).stem().string());
}

Result<Lora> Lora::parse(const safetensors::File& file, std::string label) {
  struct Parts {
    const safetensors::TensorInfo *down = nullptr, *up = nullptr, *alpha = nullptr;
    std::vector<std::string> all;
    bool other = false;  // a part of another form (LoHa, LoKr, DoRA, ...)
  };
  Lora lora;
  lora.label_ = std::move(label);
  const std::string& lb = lora.label_;
  std::map<std::string, Parts> groups;
  for (const auto& t : file.tensors()) {
    // Kohya module names contain no '.', so the first '.' starts the part name.
    const size_t dot = t.name.find('.');
    const std::string module = t.name.substr(0, dot);
    const std::string_view part =
        dot == std::string::npos ? std::string_view() : std::string_view(t.name).substr(dot + 1);
    if (!starts_with(module, kUnet) && !starts_with(module, kTe) && !starts_with(module, kTe1) &&
        !starts_with(module, kTe2)) {
      lora.unsupported_.push_back(t.name);
      continue;
    }
    Parts& p = groups[module];
    p.all.push_back(t.name);
    if (part == kDown)
      p.down = &t;
    else if (part == kUp)
      p.up = &t;
    else if (part == kAlpha)
      p.alpha = &t;
    else
      p.other = true;
  }
  for (auto& [name, p] : groups) {
    if (p.other) {  // not applied at all: half a module of another form would be wrong
      lora.unsupported_.insert(lora.unsupported_.end(), p.all.begin(), p.all.end());
      continue;
    }
    if (!p.down || !p.up) {
      const std::string have = name + "." + std::string(p.down ? kDown : p.up ? kUp : kAlpha);
      const std::string want = p.down ? "lora_up.weight"
                               : p.up ? "lora_down.weight"
                                      : "lora_down/lora_up pair";
      return bad(lb, "'" + have + "' has no " + want);
    }
    LoraModule m;
    m.name = name;
    auto down = read_tensor(file, *p.down, lb);
    if (!down.is_ok()) return down.status();
    auto up = read_tensor(file, *p.up, lb);
    if (!up.is_ok()) return up.status();
    m.down = std::move(*down);
    m.up = std::move(*up);
    if (!(m.down.dim() == 2 || m.down.dim() == 4) || m.down.size(0) < 1) {
      return bad(lb, "'" + p.down->name + "' has shape " + shape_str(m.down.sizes()) +
                         ", expected [rank, in] or [rank, in, k, k]");
    }
    if (!(m.up.dim() == 2 || (m.up.dim() == 4 && m.up.size(2) == 1 && m.up.size(3) == 1))) {
      return bad(lb, "'" + p.up->name + "' has shape " + shape_str(m.up.sizes()) +
                         ", expected [out, rank] or [out, rank, 1, 1]");
    }
    if (m.up.size(1) != m.down.size(0)) {
      return bad(lb, "rank mismatch: '" + p.down->name + "' has rank " +
                         std::to_string(m.down.size(0)) + ", '" + p.up->name + "' " +
                         std::to_string(m.up.size(1)));
    }
    m.alpha = static_cast<double>(m.rank());
    if (p.alpha) {
      auto a = read_tensor(file, *p.alpha, lb);
      if (!a.is_ok()) return a.status();
      if (a->numel() != 1) {
        return bad(lb, "'" + p.alpha->name + "' has shape " + shape_str(a->sizes()) +
                           ", expected one value");
      }
      m.alpha = a->item<double>();
      m.has_alpha = true;
    }
    lora.modules_.push_back(std::move(m));
  }
  lora.family_ = detect_family(lora.modules_);
  return lora;
}

int64_t Lora::key_count() const {
  int64_t n = static_cast<int64_t>(unsupported_.size());
  for (const auto& m : modules_) n += m.key_count();
  return n;
}

int64_t Lora::bytes() const {
  int64_t n = 0;
  for (const auto& m : modules_) n += (m.down.numel() + m.up.numel()) * 4;
  return n;
}

Result<LoraPatcher> LoraPatcher::create(const UNetConfig& unet, Parameters parameters) {
  LoraPatcher p;
  p.family_ = model_lora_family(unet);
  p.params_ = std::move(parameters);
  auto add = [&](const std::string& kohya, const Key& key) -> Status {
    auto [it, fresh] = p.index_.emplace(kohya, key);
    if (!fresh && it->second != key) {
      return Status::internal("LoRA name '" + kohya + "' fits both " + it->second.second + " and " +
                              key.second);
    }
    return Status::ok();
  };
  for (const auto& [component, tensors] : p.params_) {
    const std::string_view prefix = component == "unet" ? kUnet
                                    : component == "text_encoder"
                                        ? (p.family_ == LoraFamily::kSdxl ? kTe1 : kTe)
                                    : component == "text_encoder_2" ? kTe2
                                                                    : std::string_view();
    if (prefix.empty()) continue;
    for (const auto& [name, t] : tensors) {
      if (!t.defined())
        return Status::invalid_argument(component + " weight '" + name + "' is empty");
      if (patchable(name, t)) {
        ATELIER_RETURN_IF_ERROR(add(std::string(prefix) + kohya_path(name), {component, name}));
      }
    }
    if (component != "unet") continue;
    // The original (LDM/SGM) path of every UNet weight: SDXL kohya files use these.
    for (const auto& [diffusers, original] : unet_original_names(unet)) {
      auto it = tensors.find(diffusers);
      if (it == tensors.end() || !patchable(diffusers, it->second) ||
          !ends_with(original, ".weight"))
        continue;
      ATELIER_RETURN_IF_ERROR(
          add(std::string(prefix) + kohya_path(original), {component, diffusers}));
    }
  }
  return p;
}

Result<LoraMatch> LoraPatcher::match(const Lora& lora) const {
  const std::string& lb = lora.label();
  const std::string model = std::string(lora_family_name(family_));
  if (lora.modules().empty()) {
    std::string msg = "has no LoRA module in the kohya form (lora_down/lora_up)";
    if (!lora.unsupported_keys().empty()) msg += ", e.g. '" + lora.unsupported_keys()[0] + "'";
    return bad(lb, msg);
  }
  if (lora.family() != family_) {
    return bad(lb, "is a " + std::string(lora_family_name(lora.family())) +
                       " LoRA; this model is " + model);
  }
  LoraMatch m;
  for (size_t i = 0; i < lora.modules().size(); ++i) {
    const LoraModule& mod = lora.modules()[i];
    auto it = index_.find(mod.name);
    if (it == index_.end()) {
      m.unmatched_keys.push_back(mod.name + "." + std::string(kDown));
      m.unmatched_keys.push_back(mod.name + "." + std::string(kUp));
      if (mod.has_alpha) m.unmatched_keys.push_back(mod.name + "." + std::string(kAlpha));
      continue;
    }
    const auto& [component, param] = it->second;
    const torch::Tensor& w = params_.at(component).at(param);
    // Taps of the target (1 for Linear); a 2-D down fits 1x1 taps, a 4-D one the same taps.
    const int64_t kh = w.dim() == 4 ? w.size(2) : 1, kw = w.dim() == 4 ? w.size(3) : 1;
    const bool down_ok =
        mod.down.size(1) == w.size(1) &&
        (mod.down.dim() == 2 ? kh * kw == 1 : mod.down.size(2) == kh && mod.down.size(3) == kw);
    const bool up_ok = mod.up.size(0) == w.size(0);
    if (!down_ok || !up_ok) {
      const std::string key = mod.name + "." + std::string(down_ok ? kUp : kDown);
      return bad(lb, "'" + key + "' has shape " +
                         shape_str(down_ok ? mod.up.sizes() : mod.down.sizes()) +
                         ", which does not fit " + component + " weight '" + param + "' " +
                         shape_str(w.sizes()));
    }
    m.targets.push_back({i, component, param});
    m.matched_keys += mod.key_count();
  }
  m.unmatched_keys.insert(m.unmatched_keys.end(), lora.unsupported_keys().begin(),
                          lora.unsupported_keys().end());
  if (m.targets.empty()) {
    return bad(lb, "matches no layer of this " + model + " model (none of its " +
                       std::to_string(lora.key_count()) + " keys, e.g. '" + m.unmatched_keys[0] +
                       "')");
  }
  return m;
}

void LoraPatcher::restore() {
  torch::NoGradGuard no_grad;
  for (const auto& [key, backup] : backups_) params_[key.first][key.second].copy_(backup);
  backups_.clear();
}

Result<std::vector<LoraReport>> LoraPatcher::apply(const std::vector<LoraUse>& set) {
  auto same = [&] {
    if (set.size() != applied_.size()) return false;
    for (size_t i = 0; i < set.size(); ++i) {
      if (set[i].lora != applied_[i].lora || set[i].weight != applied_[i].weight) return false;
    }
    return true;
  };
  if (same()) return reports_;
  // Pair the whole set before touching a weight, so a refused set changes nothing.
  std::vector<LoraReport> reports;
  std::map<Key, std::vector<std::pair<size_t, size_t>>> plan;  // weight -> (entry, module)
  for (size_t i = 0; i < set.size(); ++i) {
    if (!set[i].lora) return Status::invalid_argument("empty LoRA entry", "loras");
    const Lora& lora = *set[i].lora;
    if (!std::isfinite(set[i].weight)) return bad(lora.label(), "weight is not a finite number");
    auto m = match(lora);
    if (!m.is_ok()) return m.status();
    reports.push_back({lora.label(), set[i].weight, static_cast<int64_t>(m->targets.size()),
                       m->matched_keys, static_cast<int64_t>(m->unmatched_keys.size())});
    if (set[i].weight == 0) continue;
    for (const auto& t : m->targets) plan[{t.component, t.parameter}].push_back({i, t.module});
  }
  torch::NoGradGuard no_grad;
  try {
    restore();
    applied_.clear();
    reports_.clear();
    for (const auto& [key, parts] : plan) {
      torch::Tensor& w = params_[key.first][key.second];
      // The backup is the base weight itself (restored above), in its own dtype: exact.
      backups_[key] = w.to(torch::kCPU, w.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
      torch::Tensor acc = w.to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
      for (const auto& [entry, index] : parts) {
        const LoraModule& mod = set[entry].lora->modules()[index];
        const int64_t r = mod.rank();
        // diffusers' fuse order: up scaled by alpha / rank, the product, then the weight.
        torch::Tensor up = mod.up.reshape({mod.up.size(0), r}).to(acc.device());
        torch::Tensor down = mod.down.reshape({r, -1}).to(acc.device());
        torch::Tensor delta = torch::mm(up.mul(mod.alpha).div(r), down).reshape(acc.sizes());
        acc.add_(delta.mul_(set[entry].weight));
      }
      w.copy_(acc);
    }
  } catch (const c10::Error& e) {
    // Leave the base model rather than half a set.
    try {
      restore();
    } catch (const c10::Error&) {
    }
    return Status::internal(std::string("applying LoRAs: ") + e.what_without_backtrace());
  }
  applied_ = set;
  reports_ = reports;
  return reports_;
}

}  // namespace atelier::sd
