// Discovery of sd models and LoRA files (the contract is in sd_generator.h).
#include <algorithm>
#include <filesystem>
#include <list>
#include <map>
#include <nlohmann/json.hpp>

#include "server/inference/sd/lora.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/sd_generator.h"
#include "server/inference/sd/single_file.h"
#include "server/inference/sd/unet.h"

namespace atelier::inference {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Result<json> parse_object(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument(what + " is not a JSON object");
  }
  return j;
}

Result<json> read_json(const fs::path& path) {
  auto text = sd::read_model_file(path.string());
  if (!text.is_ok()) return text.status();
  return parse_object(*text, path.string());
}

// The configs a model's ranges come from, however it is stored.
struct Configs {
  json unet, vae, scheduler;
  std::string pipeline_class;
  std::string family;      // "sd1" | "sd2" | "sdxl"
  sd::ModelConfigs texts;  // what the components are built from (LoRA checks on the meta device)
};

std::string family_of(const json& text_encoder, bool xl) {
  if (xl) return "sdxl";
  // SD 2.x conditions on OpenCLIP ViT-H (1024 wide); SD 1.x on CLIP ViT-L (768).
  return text_encoder.value("hidden_size", int64_t{768}) >= 1024 ? "sd2" : "sd1";
}

int64_t latent_channels(const Configs& c) {
  return c.vae.value("latent_channels", int64_t{4});
}

// A 9-channel UNet (4 latent, 1 mask, 4 masked-image latent channels) is an inpainting model.
bool is_inpainting(const Configs& c) {
  return c.unet.value("in_channels", int64_t{4}) == 2 * latent_channels(c) + 1;
}

// UNets that take other inputs besides the latents (depth, instruct-pix2pix) are not built.
Status check_channels(const Configs& c) {
  const int64_t in = c.unet.value("in_channels", int64_t{4});
  if (in == latent_channels(c) || is_inpainting(c)) return Status::ok();
  return Status::invalid_argument("a UNet with " + std::to_string(in) +
                                  " input channels is not supported (only the VAE's latent "
                                  "channels, or an inpainting UNet's 2 x latent + 1)");
}

Result<Configs> folder_configs(const fs::path& root) {
  auto index = read_json(root / "model_index.json");
  if (!index.is_ok()) return index.status();
  Configs c;
  c.pipeline_class = index->value("_class_name", "");
  const bool xl = c.pipeline_class == "StableDiffusionXLPipeline" ||
                  c.pipeline_class == "StableDiffusionXLImg2ImgPipeline" ||
                  c.pipeline_class == "StableDiffusionXLInpaintPipeline";
  if (c.pipeline_class != "StableDiffusionPipeline" &&
      c.pipeline_class != "StableDiffusionImg2ImgPipeline" &&
      c.pipeline_class != "StableDiffusionInpaintPipeline" &&
      c.pipeline_class != "LatentConsistencyModelPipeline" && !xl) {
    return Status::invalid_argument("pipeline class '" + c.pipeline_class + "' is not supported");
  }
  std::vector<const char*> parts{"tokenizer/vocab.json",     "tokenizer/merges.txt",
                                 "text_encoder/config.json", "unet/config.json",
                                 "vae/config.json",          "scheduler/scheduler_config.json"};
  if (xl) {
    parts.insert(parts.end(), {"tokenizer_2/vocab.json", "tokenizer_2/merges.txt",
                               "text_encoder_2/config.json"});
  }
  for (const char* part : parts) {
    if (!fs::exists(root / part)) return Status::not_found(std::string("missing ") + part);
  }
  auto unet = read_json(root / "unet/config.json");
  auto vae = read_json(root / "vae/config.json");
  auto sched = read_json(root / "scheduler/scheduler_config.json");
  auto te = read_json(root / "text_encoder/config.json");
  for (const auto* r : {&unet, &vae, &sched, &te}) {
    if (!r->is_ok()) return r->status();
  }
  // The UNet config must be one the pipeline can build (SDXL's added conditioning included).
  if (auto parsed = sd::parse_unet_config(unet->dump()); !parsed.is_ok()) return parsed.status();
  c.texts.unet = unet->dump();
  c.texts.vae = vae->dump();
  c.texts.text_encoder = te->dump();
  c.texts.scheduler = sched->dump();
  if (xl) {
    auto te2 = read_json(root / "text_encoder_2/config.json");
    if (!te2.is_ok()) return te2.status();
    c.texts.text_encoder_2 = te2->dump();
  }
  c.unet = std::move(*unet);
  c.vae = std::move(*vae);
  c.scheduler = std::move(*sched);
  c.family = family_of(*te, xl);
  if (Status st = check_channels(c); !st.is_ok()) return st;
  return c;
}

Result<Configs> file_configs(const fs::path& file, const std::string& config_dir) {
  auto info = sd::inspect_single_file(file.string(), config_dir);
  if (!info.is_ok()) return info.status();
  Configs c;
  auto unet = parse_object(info->configs.unet, "unet config");
  auto vae = parse_object(info->configs.vae, "vae config");
  auto sched = parse_object(info->configs.scheduler, "scheduler config");
  for (const auto* r : {&unet, &vae, &sched}) {
    if (!r->is_ok()) return r->status();
  }
  c.unet = std::move(*unet);
  c.vae = std::move(*vae);
  c.scheduler = std::move(*sched);
  c.family = std::string(sd::family_name(info->family));
  c.texts = info->configs;
  c.pipeline_class = c.family == "sdxl" ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline";
  if (Status st = check_channels(c); !st.is_ok()) return st;
  return c;
}

ModelInfo info_from(const std::string& id, const Configs& c) {
  const auto vae_blocks = c.vae.value("block_out_channels", json::array({1, 1, 1, 1})).size();
  const auto unet_blocks = c.unet.value("block_out_channels", json::array({1, 1, 1, 1})).size();
  const int64_t f = int64_t{1} << (std::max<size_t>(vae_blocks, 1) - 1);
  const int64_t multiple = f * (int64_t{1} << (std::max<size_t>(unet_blocks, 1) - 1));
  const int64_t sample = c.unet.value("sample_size", int64_t{64});
  const int64_t native = std::max<int64_t>(sample * f, multiple);
  const std::string sched_cls = c.scheduler.value("_class_name", "");
  // LCM-distilled UNets embed the guidance (diffusers' LCM pipelines default to 8); LCM-LoRA
  // style models use classifier-free guidance, best near 1.
  const bool embedded_guidance = c.unet.value("time_cond_proj_dim", json()).is_number_integer();
  const bool lcm = sched_cls == "LCMScheduler" ||
                   c.pipeline_class == "LatentConsistencyModelPipeline" || embedded_guidance;
  const bool xl = c.family == "sdxl";

  ModelInfo m;
  m.id = id;
  m.kind = "sd";
  m.family = c.family;
  const char* family_label = xl ? "SDXL" : c.family == "sd2" ? "SD 2.x" : "SD 1.x";
  m.description = std::string("Stable Diffusion ") + family_label + " (" + m.id + ", native " +
                  std::to_string(native) +
                  " px): draws what the prompt describes; the negative prompt steers away.";
  const int64_t max_size =
      std::max<int64_t>(native, std::min<int64_t>(2048, native * 2) / multiple * multiple);
  m.width = {multiple, max_size, native, multiple};
  m.height = m.width;
  m.steps = {1, 150, lcm ? 4 : xl ? 30 : 25, 1};
  m.count = {1, 4, 1, 1};
  m.guidance = {0.0, 30.0, embedded_guidance ? 8.0 : lcm ? 1.0 : xl ? 5.0 : 7.5};
  m.strength = {0.05, 1.0, 0.6};
  std::vector<std::string> samplers{"euler", "euler_a", "ddim", "lcm"};
  std::string first = lcm                                                            ? "lcm"
                      : sched_cls == "EulerAncestralDiscreteScheduler"               ? "euler_a"
                      : sched_cls == "DDIMScheduler" || sched_cls == "PNDMScheduler" ? "ddim"
                                                                                     : "euler";
  std::stable_partition(samplers.begin(), samplers.end(),
                        [&](const auto& s) { return s == first; });
  m.samplers = samplers;
  m.upscale_factors = {2};
  m.modes = {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix,
             Mode::kUpscale, Mode::kInpaint,   Mode::kOutpaint};
  if (is_inpainting(c)) {
    // Its UNet wants a mask and a masked image: txt2img runs as an inpaint of a blank canvas;
    // img2img modes have no mask to give it.
    m.inpainting_model = true;
    m.upscale_factors.clear();
    m.modes = {Mode::kTxt2Img, Mode::kInpaint, Mode::kOutpaint};
    m.description = std::string("Stable Diffusion ") + family_label + " inpainting (" + m.id +
                    ", native " + std::to_string(native) +
                    " px): repaints the masked part of an image as the prompt describes.";
  }
  m.size_conditioning = xl;
  m.max_loras = c.family == "sd2" ? 0 : 5;  // no SD 2.x LoRA format is read (lora.h)
  return m;
}

// A patcher over the meta-device layout of a model's components: tells a LoRA that fits no
// layer at all before any job asks for it (nothing is allocated).
Result<sd::LoraPatcher> layout_patcher(const sd::ModelConfigs& configs) {
  auto unet = sd::parse_unet_config(configs.unet);
  if (!unet.is_ok()) return unet.status();
  auto weights = sd::synthetic_components(configs, 0, torch::kMeta);
  if (!weights.is_ok()) return weights.status();
  sd::LoraPatcher::Parameters params{{"unet", weights->unet.tensors()},
                                     {"text_encoder", weights->text_encoder.tensors()}};
  if (weights->text_encoder_2) params["text_encoder_2"] = weights->text_encoder_2->tensors();
  return sd::LoraPatcher::create(*unet, std::move(params));
}

// The models of one family a LoRA is checked against: the listed ones, or the family's
// published layout when none is listed.
struct FamilyModels {
  std::vector<const sd::ModelConfigs*> configs;
  std::vector<std::optional<sd::LoraPatcher>> patchers;  // built on first need
};

std::vector<LoraInfo> discover_loras(const fs::path& dir, FileHashCache& hashes,
                                     std::map<std::string, FamilyModels>& families,
                                     std::vector<std::string>& problems) {
  std::vector<LoraInfo> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && e.path().extension() == ".safetensors") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  const sd::ModelConfigs sd1_defaults = sd::family_configs(sd::Family::kSd1);
  const sd::ModelConfigs sdxl_defaults = sd::family_configs(sd::Family::kSdxl);
  for (const auto& file : files) {
    LoraInfo info;
    info.name = file.stem().string();
    auto hash = hashes.sha256(file);
    if (hash.is_ok()) info.hash = *hash;
    auto lora = sd::Lora::load(file.string());
    Status st = hash.is_ok() ? Status::ok() : hash.status();
    if (st.is_ok() && !lora.is_ok()) st = lora.status();
    if (st.is_ok()) {
      const bool xl = lora->family() == sd::LoraFamily::kSdxl;
      info.family = xl ? "sdxl" : "sd1";
      FamilyModels& models = families[info.family];
      if (models.configs.empty()) models.configs.push_back(xl ? &sdxl_defaults : &sd1_defaults);
      models.patchers.resize(models.configs.size());
      // Usable when it fits at least one model of its family (the first refusal says why not).
      Status first = Status::ok();
      bool fits = false;
      for (size_t i = 0; i < models.configs.size() && !fits; ++i) {
        if (!models.patchers[i]) {
          auto p = layout_patcher(*models.configs[i]);
          if (!p.is_ok()) {
            if (first.is_ok()) first = p.status();
            continue;
          }
          models.patchers[i] = std::move(*p);
        }
        auto match = models.patchers[i]->match(*lora);
        fits = match.is_ok();
        if (!fits && first.is_ok()) first = match.status();
      }
      if (!fits) st = first;
    }
    if (!st.is_ok()) {
      info.available = false;
      info.reason = st.message();
      problems.push_back(file.string() + ": " + st.message());
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

Result<ModelInfo> sd_model_info(const std::string& source, const std::string& config_dir) {
  const fs::path path(source);
  std::error_code ec;
  const bool folder = fs::is_directory(path, ec);
  auto configs = folder ? folder_configs(path) : file_configs(path, config_dir);
  if (!configs.is_ok()) return configs.status();
  return info_from(folder ? path.filename().string() : path.stem().string(), *configs);
}

SdDiscovery discover_sd_models(const std::string& models_dir, const SdOptions& options) {
  SdDiscovery d;
  FileHashCache local("");
  FileHashCache& hashes = options.hashes ? *options.hashes : local;
  const fs::path loras_dir =
      options.loras_dir.empty() ? fs::path(models_dir) / "loras" : fs::path(options.loras_dir);
  std::error_code ec;
  std::map<std::string, FamilyModels> families;
  std::list<sd::ModelConfigs> model_configs;  // stable addresses for `families`
  auto finish = [&] {
    d.loras = discover_loras(loras_dir, hashes, families, d.problems);
    return d;
  };
  if (!fs::is_directory(models_dir, ec)) return finish();
  std::vector<fs::path> sources;
  for (const auto& e : fs::directory_iterator(models_dir, ec)) {
    if ((e.is_directory(ec) && fs::exists(e.path() / "model_index.json")) ||
        (e.is_regular_file(ec) && e.path().extension() == ".safetensors")) {
      sources.push_back(e.path());
    }
  }
  std::sort(sources.begin(), sources.end());
  std::vector<std::string> ids;
  for (const auto& source : sources) {
    const bool folder = fs::is_directory(source, ec);
    const std::string id = folder ? source.filename().string() : source.stem().string();
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
      d.problems.push_back(source.string() + ": another model is already called '" + id + "'");
      continue;
    }
    ids.push_back(id);
    const fs::path path(source);
    auto configs = folder ? folder_configs(path) : file_configs(path, "");
    auto info = configs.is_ok() ? Result<ModelInfo>(info_from(id, *configs))
                                : Result<ModelInfo>(configs.status());
    // The file whose hash identifies the model: the checkpoint, or a folder's UNet weights.
    const fs::path hashed = folder ? source / "unet/diffusion_pytorch_model.safetensors" : source;
    auto hash = hashes.sha256(hashed);
    if (!info.is_ok() || !hash.is_ok()) {
      const Status st = info.is_ok() ? hash.status() : info.status();
      d.problems.push_back(source.string() + ": " + st.message());
      ModelInfo m;
      m.id = id;
      m.kind = "sd";
      m.description = "Unavailable: " + st.message();
      m.available = false;
      m.unavailable_reason = st.message();
      if (hash.is_ok()) m.hash = *hash;
      d.models.push_back(ModelEntry{
          m, [st](const std::string&) -> Result<std::unique_ptr<Generator>> { return st; }});
      continue;
    }
    info->hash = *hash;
    model_configs.push_back(configs->texts);
    families[configs->family].configs.push_back(&model_configs.back());
    SdOptions generator_options = options;
    generator_options.loras_dir = loras_dir.string();
    generator_options.hashes = nullptr;  // the generator needs no hashes
    d.models.push_back(
        ModelEntry{*info, sd_generator_factory(*info, source.string(), generator_options)});
  }
  return finish();
}

}  // namespace atelier::inference
