#include "server/inference/sd/single_file_layout.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include "server/inference/sd/clip_text_encoder.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"

namespace atelier::sd::layout {

std::vector<Component> components(Family f) {
  std::vector<Component> c{
      {"unet", Kind::kUnet, kUnetPrefix, &ModelConfigs::unet, &SingleFileWeights::unet},
      {"vae", Kind::kVae, kVaePrefix, &ModelConfigs::vae, &SingleFileWeights::vae}};
  if (f == Family::kSd1) {
    c.push_back({"text_encoder", Kind::kClip, kSd1Clip, &ModelConfigs::text_encoder,
                 &SingleFileWeights::text_encoder});
  } else if (f == Family::kSd2) {
    c.push_back({"text_encoder", Kind::kOpenClip, kSd2OpenClip, &ModelConfigs::text_encoder,
                 &SingleFileWeights::text_encoder});
  } else {
    c.push_back({"text_encoder", Kind::kClip, kSdxlClip, &ModelConfigs::text_encoder,
                 &SingleFileWeights::text_encoder});
    c.push_back(
        {"text_encoder_2", Kind::kOpenClip, kSdxlOpenClip, &ModelConfigs::text_encoder_2, nullptr});
  }
  return c;
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// The diffusers names and shapes a component's build takes, and its original-name map.
struct Expected {
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, OriginalTensor> originals;
  int64_t text_layers = 0;  // text encoders: num_hidden_layers
  bool projection = false;  // text encoders: with_projection
};

template <class Model, class Config>
std::map<std::string, std::vector<int64_t>> shapes_of(const Config& config, Status& status) {
  Weights w = Weights::synthetic(0, torch::kFloat32, torch::Device(torch::kMeta));
  status = Model::build(config, w).status();
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& [name, t] : w.tensors()) out[name] = t.sizes().vec();
  return out;
}

Result<Expected> expected_of(const Component& c, const ModelConfigs& configs) {
  const std::string& text = configs.*c.config;
  if (text.empty()) return Status::invalid_argument(std::string(c.label) + ": no config");
  Expected e;
  Status st;
  auto plain = [](const std::map<std::string, std::string>& m) {
    std::map<std::string, OriginalTensor> out;
    for (const auto& [k, v] : m) out[k] = OriginalTensor{v};
    return out;
  };
  if (c.kind == Kind::kUnet) {
    auto cfg = parse_unet_config(text);
    if (!cfg.is_ok()) return cfg.status();
    e.shapes = shapes_of<UNet>(*cfg, st);
    e.originals = plain(unet_original_names(*cfg));
  } else if (c.kind == Kind::kVae) {
    auto cfg = parse_vae_config(text);
    if (!cfg.is_ok()) return cfg.status();
    e.shapes = shapes_of<Vae>(*cfg, st);
    e.originals = plain(vae_original_names(*cfg));
  } else {
    auto cfg = parse_clip_text_config(text);
    if (!cfg.is_ok()) {
      return Status::invalid_argument(std::string(c.label) + ": " + cfg.status().message());
    }
    e.shapes = shapes_of<ClipTextEncoder>(*cfg, st);
    e.originals =
        c.kind == Kind::kClip ? plain(clip_original_names(*cfg)) : open_clip_original_tensors(*cfg);
    e.text_layers = cfg->num_hidden_layers;
    e.projection = cfg->with_projection;
  }
  if (!st.is_ok()) return st;
  return e;
}

std::vector<int64_t> without_trailing_ones(std::vector<int64_t> s) {
  while (!s.empty() && s.back() == 1) s.pop_back();
  return s;
}

// Whether a tensor of shape `have` can be read as `e`.
bool fits(const Entry& e, const std::vector<int64_t>& have) {
  if (e.part >= 0) {
    if (have.empty() || have.size() != e.shape.size() || have[0] != 3 * e.shape[0]) return false;
    return std::equal(have.begin() + 1, have.end(), e.shape.begin() + 1);
  }
  if (e.transposed) {
    return have.size() == 2 && e.shape.size() == 2 && have[0] == e.shape[1] &&
           have[1] == e.shape[0];
  }
  return have == e.shape || without_trailing_ones(have) == without_trailing_ones(e.shape);
}

// Checkpoint tensors under a component's prefix that are there but unused: training-only state,
// buffers, SD 2.x's dropped OpenCLIP layer.
bool ignored(const Component& c, const Expected& e, const std::string& rest) {
  switch (c.kind) {
    case Kind::kUnet:
      return false;
    case Kind::kVae:
      return starts_with(rest, "loss.");  // the discriminator and LPIPS of VAE training
    case Kind::kClip:
      return rest == "text_model.embeddings.position_ids" || rest == "embeddings.position_ids";
    case Kind::kOpenClip:
      if (rest == "logit_scale" || rest == "attn_mask") return true;
      if (!e.projection) {
        // SD 2.x uses the penultimate layer: diffusers' text encoder has one layer fewer than
        // the tower, and no projection.
        const std::string extra = "transformer.resblocks." + std::to_string(e.text_layers) + ".";
        return starts_with(rest, extra) || rest == "text_projection" ||
               rest == "text_projection.weight";
      }
      return false;
  }
  return false;
}

}  // namespace

Plan plan(const TensorShapes& tensors, Family family, const ModelConfigs& configs) {
  Plan p;
  std::set<std::string> used;
  const std::vector<Component> parts = components(family);
  for (size_t ci = 0; ci < parts.size(); ++ci) {
    const Component& c = parts[ci];
    auto expected = expected_of(c, configs);
    if (!expected.is_ok()) {
      p.problems.push_back(expected.status().message());
      continue;
    }
    for (const auto& [target, shape] : expected->shapes) {
      auto o = expected->originals.find(target);
      if (o == expected->originals.end()) {
        p.problems.push_back(std::string(c.label) + " tensor '" + target +
                             "' has no single-file counterpart");
        continue;
      }
      Entry e{target, c.prefix + o->second.name, shape, o->second.part, o->second.transposed, ci};
      if (c.kind == Kind::kOpenClip && e.transposed && !tensors.count(e.source) &&
          tensors.count(e.source + ".weight")) {
        e.source += ".weight";  // diffusers' conversion script keeps the Linear layout
        e.transposed = false;
      }
      if (c.kind == Kind::kClip && !tensors.count(e.source) &&
          starts_with(o->second.name, "text_model.")) {
        // transformers before 4.x named the text model's modules without "text_model."
        const std::string old = c.prefix + o->second.name.substr(std::strlen("text_model."));
        if (tensors.count(old)) e.source = old;
      }
      auto have = tensors.find(e.source);
      if (have == tensors.end()) {
        p.problems.push_back("missing tensor '" + e.source + "'");
        continue;
      }
      used.insert(e.source);
      if (!fits(e, have->second)) {
        p.problems.push_back("tensor '" + e.source + "' has shape " + shape_text(have->second) +
                             ", expected " + shape_text(e.shape) + " for " + c.label + " '" +
                             target + "'");
        continue;
      }
      p.entries.push_back(std::move(e));
    }
    for (auto it = tensors.lower_bound(c.prefix);
         it != tensors.end() && starts_with(it->first, c.prefix); ++it) {
      if (used.count(it->first) || ignored(c, *expected, it->first.substr(c.prefix.size())))
        continue;
      p.problems.push_back("unexpected tensor '" + it->first + "'");
    }
  }
  return p;
}

Status problems_status(const std::string& origin, const std::vector<std::string>& all) {
  if (all.empty()) return Status::ok();
  std::string msg = origin + ": ";
  const size_t shown = std::min<size_t>(all.size(), 12);
  for (size_t i = 0; i < shown; ++i) msg += (i ? "; " : "") + all[i];
  if (all.size() > shown) msg += "; and " + std::to_string(all.size() - shown) + " more";
  return Status::invalid_argument(msg);
}
}  // namespace atelier::sd::layout

namespace atelier::sd {

using namespace layout;

Status check_layout(const TensorShapes& tensors, Family family, const ModelConfigs& configs) {
  return problems_status(std::string(family_name(family)) + " checkpoint",
                         plan(tensors, family, configs).problems);
}

Result<std::map<std::string, torch::Tensor>> to_single_file_layout(
    Family family, const ModelConfigs& configs, const SingleFileWeights& weights) {
  std::map<std::string, torch::Tensor> out;
  for (const Component& c : components(family)) {
    const Weights* w = c.weights ? &(weights.*c.weights)
                                 : (weights.text_encoder_2 ? &*weights.text_encoder_2 : nullptr);
    if (!w) return Status::invalid_argument(std::string(c.label) + ": no weights");
    auto expected = expected_of(c, configs);
    if (!expected.is_ok()) return expected.status();
    std::map<std::string, std::array<torch::Tensor, 3>> fused;
    for (const auto& [name, t] : w->tensors()) {
      auto o = expected->originals.find(name);
      if (o == expected->originals.end()) {
        return Status::invalid_argument(std::string(c.label) + " tensor '" + name +
                                        "' has no single-file counterpart");
      }
      const std::string full = c.prefix + o->second.name;
      if (o->second.part >= 0) {
        fused[full][static_cast<size_t>(o->second.part)] = t;
      } else if (o->second.transposed) {
        out[full] = t.t().contiguous();
      } else if (c.kind == Kind::kVae && t.dim() == 2 &&
                 o->second.name.find(".attn_1.") != std::string::npos) {
        out[full] = t.reshape({t.size(0), t.size(1), 1, 1});  // LDM's 1x1 convolutions
      } else {
        out[full] = t;
      }
    }
    for (auto& [name, qkv] : fused) {
      if (!qkv[0].defined() || !qkv[1].defined() || !qkv[2].defined()) {
        return Status::invalid_argument("'" + name + "' lacks one of q, k, v");
      }
      out[name] = torch::cat({qkv[0], qkv[1], qkv[2]}, 0);
    }
  }
  return out;
}

}  // namespace atelier::sd
