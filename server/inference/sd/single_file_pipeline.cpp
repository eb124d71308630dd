#include "server/inference/sd/single_file_pipeline.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "server/inference/sd/model_files.h"
#include "server/inference/sd/single_file.h"

namespace atelier::sd {

namespace {

namespace fs = std::filesystem;

// The padding token and length a tokenizer_config.json names (CLIP-L's defaults otherwise).
std::pair<std::string, int> pad_and_length(const std::string& tokenizer_config) {
  std::pair<std::string, int> out{"<|endoftext|>", 77};
  auto j = nlohmann::json::parse(tokenizer_config, nullptr, false);
  if (!j.is_object()) return out;
  if (auto p = j.find("pad_token"); p != j.end()) {
    if (p->is_string()) out.first = p->get<std::string>();
    if (p->is_object() && p->contains("content") && (*p)["content"].is_string()) {
      out.first = (*p)["content"].get<std::string>();
    }
  }
  if (auto m = j.find("model_max_length"); m != j.end() && m->is_number_integer() &&
                                           m->get<int64_t>() >= 2 && m->get<int64_t>() <= 4096) {
    out.second = static_cast<int>(m->get<int64_t>());
  }
  return out;
}

Result<ClipTokenizer> tokenizer_for(const fs::path& config_dir, const char* sub,
                                    const std::string& tokenizer_config,
                                    const std::string& vocab_text) {
  if (!config_dir.empty() && fs::exists(config_dir / sub / "vocab.json")) {
    return ClipTokenizer::load((config_dir / sub).string());
  }
  auto [pad, length] = pad_and_length(tokenizer_config);
  return ClipTokenizer::from_openai_bpe(vocab_text, pad, length);
}

}  // namespace

Result<StableDiffusion> load_single_file_pipeline(const std::string& path, torch::Dtype dtype,
                                                  torch::Device device,
                                                  const std::string& clip_vocab,
                                                  const std::string& config_dir_override) {
  auto info = inspect_single_file(path, config_dir_override);
  if (!info.is_ok()) return info.status();
  const ModelConfigs& c = info->configs;
  auto unet_config = parse_unet_config(c.unet);
  if (!unet_config.is_ok()) return unet_config.status();
  auto vae_config = parse_vae_config(c.vae);
  if (!vae_config.is_ok()) return vae_config.status();
  auto te_config = parse_clip_text_config(c.text_encoder);
  if (!te_config.is_ok()) return te_config.status();
  auto schedule = parse_schedule_config(c.scheduler);
  if (!schedule.is_ok()) return schedule.status();

  const fs::path config_dir = info->config_dir;
  std::string vocab_text;
  const bool own_tokenizer = !config_dir.empty() && fs::exists(config_dir / "tokenizer/vocab.json");
  if (!own_tokenizer) {
    auto text = read_gzip_file(clip_vocab.empty() ? shipped_clip_vocab() : clip_vocab);
    if (!text.is_ok()) return Status::not_found("the CLIP vocabulary: " + text.status().message());
    vocab_text = std::move(*text);
  }

  auto weights = load_single_file(path, *info, dtype, device);
  if (!weights.is_ok()) return weights.status();
  PipelineParts parts;
  parts.dtype = dtype;
  parts.device = device;
  parts.schedule = *schedule;
  auto tokenizer = tokenizer_for(config_dir, "tokenizer", c.tokenizer, vocab_text);
  if (!tokenizer.is_ok()) return tokenizer.status();
  parts.tokenizer = std::move(*tokenizer);
  auto te = ClipTextEncoder::build(*te_config, weights->text_encoder);
  if (!te.is_ok()) return te.status();
  parts.text_encoder = std::move(*te);
  parts.parameters["text_encoder"] = weights->text_encoder.tensors();
  auto unet = UNet::build(*unet_config, weights->unet);
  if (!unet.is_ok()) return unet.status();
  parts.unet = std::move(*unet);
  parts.parameters["unet"] = weights->unet.tensors();
  // A VAE that overflows in half precision runs in float32 (it is small next to the UNet).
  parts.vae_dtype = vae_config->force_upcast ? torch::kFloat32 : dtype;
  Weights vae_weights = std::move(weights->vae);
  if (parts.vae_dtype != dtype) {
    std::map<std::string, torch::Tensor> up;
    for (const auto& [name, t] : vae_weights.tensors()) up[name] = t.to(parts.vae_dtype);
    vae_weights = Weights::from_tensors(path, std::move(up));
  }
  auto vae = Vae::build(*vae_config, vae_weights);
  if (!vae.is_ok()) return vae.status();
  parts.vae = std::move(*vae);
  if (weights->text_encoder_2) {
    auto te2_config = parse_clip_text_config(c.text_encoder_2);
    if (!te2_config.is_ok()) return te2_config.status();
    auto te2 = ClipTextEncoder::build(*te2_config, *weights->text_encoder_2);
    if (!te2.is_ok()) return te2.status();
    parts.text_encoder_2 = std::move(*te2);
    parts.parameters["text_encoder_2"] = weights->text_encoder_2->tensors();
    auto tokenizer_2 = tokenizer_for(config_dir, "tokenizer_2", c.tokenizer_2, vocab_text);
    if (!tokenizer_2.is_ok()) return tokenizer_2.status();
    parts.tokenizer_2 = std::move(*tokenizer_2);
    auto index =
        nlohmann::json::parse(c.model_index.empty() ? "{}" : c.model_index, nullptr, false);
    auto zeros = index.is_object() ? index.find("force_zeros_for_empty_prompt") : index.end();
    parts.force_zeros_for_empty_prompt =
        !index.is_object() || zeros == index.end() || !zeros->is_boolean() || *zeros;
  }
  return StableDiffusion::from_parts(std::move(parts));
}

}  // namespace atelier::sd
