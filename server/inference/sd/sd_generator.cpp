#include "server/inference/sd/sd_generator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/inference/sd/model_files.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/pipeline_cache.h"

namespace atelier::inference {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Result<json> read_json(const fs::path& path) {
  auto text = sd::read_model_file(path.string());
  if (!text.is_ok()) return text.status();
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument(path.string() + " is not a JSON object");
  }
  return j;
}

// Stable Diffusion 1.x latents to RGB: a linear map good enough for a step preview, with no
// VAE call (published approximation of the SD 1.x latent space).
constexpr float kLatentRgb[4][3] = {{0.3512f, 0.2297f, 0.3227f},
                                    {0.3250f, 0.4974f, 0.2350f},
                                    {-0.2829f, 0.1762f, 0.2721f},
                                    {-0.2120f, -0.2616f, -0.7177f}};

Image preview_of(const torch::Tensor& latents) {
  torch::Tensor x = latents[0].to(torch::kCPU, torch::kFloat32);  // C x h x w
  const int64_t c = x.size(0), h = x.size(1), w = x.size(2);
  torch::Tensor rgb;
  if (c == 4) {
    torch::Tensor m = torch::from_blob(const_cast<float*>(&kLatentRgb[0][0]), {4, 3}).clone();
    rgb = torch::einsum("chw,cr->hwr", {x, m});
  } else {
    rgb = x.mean(0).unsqueeze(-1).expand({h, w, 3});
  }
  rgb = ((rgb + 1) * 127.5).clamp(0, 255).to(torch::kUInt8).contiguous();
  Image img{static_cast<int>(w), static_cast<int>(h), 3,
            std::vector<uint8_t>(static_cast<size_t>(h * w * 3))};
  std::memcpy(img.pixels.data(), rgb.data_ptr<uint8_t>(), img.pixels.size());
  return img;
}

// A generator never leaves its worker thread, so each worker has its own pipelines.
sd::PipelineCache& worker_cache(int64_t budget_bytes) {
  thread_local sd::PipelineCache cache(budget_bytes);
  return cache;
}

class SdGenerator : public Generator {
 public:
  SdGenerator(ModelInfo info, std::string dir, std::string device, SdOptions options)
      : info_(std::move(info)),
        dir_(std::move(dir)),
        device_(std::move(device)),
        options_(options) {}

  const ModelInfo& info() const override { return info_; }

  Result<std::vector<GeneratedImage>> generate(const GenerateRequest& req, ProgressSink& progress,
                                               const CancelToken& cancel) override {
    const bool cuda = device_.rfind("cuda", 0) == 0;
    const torch::Dtype dtype = cuda && options_.fp16_on_cuda ? torch::kHalf : torch::kFloat32;
    auto pipeline = worker_cache(options_.cache_bytes).get(dir_, dtype, torch::Device(device_));
    if (!pipeline.is_ok()) return pipeline.status();
    auto kind = sd::parse_sampler(req.sampler.empty() ? info_.samplers.front() : req.sampler);
    if (!kind) return Status::invalid_argument("unknown sampler " + req.sampler, "sampler");
    torch::Tensor parent;
    if (req.mode != Mode::kTxt2Img) {
      if (!req.parent || req.parent->png_path.empty()) {
        return Status::invalid_argument("this mode needs the parent image", "parent_image_id");
      }
      auto bytes = sd::read_model_file(req.parent->png_path);
      auto img = bytes.is_ok()
                     ? image::decode_png(std::span<const uint8_t>(
                           reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()))
                     : Result<Image>(bytes.status());
      if (!img.is_ok()) return Status::unprocessable("the parent image cannot be read");
      parent = sd::image_to_tensor(*img, req.width, req.height);
    }
    std::vector<GeneratedImage> out;
    const int total = req.steps * req.count;
    for (int i = 0; i < req.count; ++i) {
      sd::GenerationRequest r;
      r.prompt = req.prompt;
      r.negative_prompt = req.negative_prompt;
      r.width = req.width;
      r.height = req.height;
      r.steps = req.steps;
      r.guidance = req.guidance;
      r.sampler = *kind;
      r.seed = static_cast<uint64_t>(req.seed + i);
      if (parent.defined()) {
        r.init_image = parent;
        // An upscale keeps the parent's look: it only re-renders the details.
        r.strength = req.mode == Mode::kUpscale ? 0.35 : req.strength;
      }
      const int done_before = i * req.steps;
      auto image = (*pipeline)->generate(r, [&](int step, int steps, const torch::Tensor& latents) {
        const int at = done_before + step * req.steps / std::max(steps, 1);
        if (progress.wants_preview()) {
          Image p = preview_of(latents);
          progress.on_step(at, total, &p);
        } else {
          progress.on_step(at, total, nullptr);
        }
        return !cancel.cancelled();
      });
      if (!image.is_ok()) return image.status();
      GeneratedImage g;
      g.image = sd::tensor_to_image(*image);
      g.seed = req.seed + i;
      g.lineage = "sd1;" + std::to_string(g.seed);
      out.push_back(std::move(g));
    }
    return out;
  }

 private:
  ModelInfo info_;
  std::string dir_, device_;
  SdOptions options_;
};

}  // namespace

Result<ModelInfo> sd_model_info(const std::string& dir) {
  const fs::path root(dir);
  auto index = read_json(root / "model_index.json");
  if (!index.is_ok()) return index.status();
  const std::string cls = index->value("_class_name", "");
  if (cls != "StableDiffusionPipeline" && cls != "StableDiffusionImg2ImgPipeline" &&
      cls != "LatentConsistencyModelPipeline") {
    return Status::invalid_argument("pipeline class '" + cls + "' is not supported");
  }
  for (const char* part :
       {"tokenizer/vocab.json", "tokenizer/merges.txt", "text_encoder/config.json",
        "unet/config.json", "vae/config.json", "scheduler/scheduler_config.json"}) {
    if (!fs::exists(root / part)) return Status::not_found(std::string("missing ") + part);
  }
  auto unet = read_json(root / "unet/config.json");
  auto vae = read_json(root / "vae/config.json");
  auto sched = read_json(root / "scheduler/scheduler_config.json");
  for (const auto* r : {&unet, &vae, &sched})
    if (!r->is_ok()) return r->status();
  const auto vae_blocks = (*vae).value("block_out_channels", json::array({1, 1, 1, 1})).size();
  const auto unet_blocks = (*unet).value("block_out_channels", json::array({1, 1, 1, 1})).size();
  if (vae_blocks < 1 || unet_blocks < 1)
    return Status::invalid_argument("empty block_out_channels");
  const int64_t f = int64_t{1} << (vae_blocks - 1);
  const int64_t multiple = f * (int64_t{1} << (unet_blocks - 1));
  const int64_t sample = (*unet).value("sample_size", int64_t{64});
  const int64_t native = std::max<int64_t>(sample * f, multiple);
  const std::string sched_cls = (*sched).value("_class_name", "");
  // LCM-distilled UNets embed the guidance (diffusers' LCM pipelines default to 8); LCM-LoRA
  // style models use classifier-free guidance, best near 1.
  const bool embedded_guidance = (*unet).value("time_cond_proj_dim", json()).is_number_integer();
  const bool lcm =
      sched_cls == "LCMScheduler" || cls == "LatentConsistencyModelPipeline" || embedded_guidance;

  ModelInfo m;
  m.id = root.filename().string();
  m.kind = "sd";
  m.description = "Stable Diffusion (" + m.id + ", native " + std::to_string(native) +
                  " px): " + "draws what the prompt describes; the negative prompt steers away.";
  const int64_t max_size =
      std::max<int64_t>(native, std::min<int64_t>(2048, native * 2) / multiple * multiple);
  m.width = {multiple, max_size, native, multiple};
  m.height = m.width;
  m.steps = {1, 150, lcm ? 4 : 25, 1};
  m.count = {1, 4, 1, 1};
  m.guidance = {0.0, 30.0, embedded_guidance ? 8.0 : lcm ? 1.0 : 7.5};
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
  m.modes = {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix, Mode::kUpscale};
  return m;
}

SdDiscovery discover_sd_models(const std::string& models_dir, const SdOptions& options) {
  SdDiscovery d;
  std::error_code ec;
  if (!fs::is_directory(models_dir, ec)) return d;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(models_dir, ec)) {
    if (e.is_directory(ec) && fs::exists(e.path() / "model_index.json")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    auto info = sd_model_info(dir.string());
    if (!info.is_ok()) {
      d.problems.push_back(dir.string() + ": " + info.status().message());
      continue;
    }
    const std::string path = dir.string();
    ModelInfo mi = *info;
    d.models.push_back(ModelEntry{
        mi, [mi, path, options](const std::string& device) -> Result<std::unique_ptr<Generator>> {
          return std::unique_ptr<Generator>(
              std::make_unique<SdGenerator>(mi, path, device, options));
        }});
  }
  return d;
}

}  // namespace atelier::inference
