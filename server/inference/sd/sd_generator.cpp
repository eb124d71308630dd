#include "server/inference/sd/sd_generator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <list>
#include <memory>
#include <sstream>

#include "server/inference/prompt_loras.h"
#include "server/inference/sd/inpaint.h"
#include "server/inference/sd/lora.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/pipeline_cache.h"

namespace atelier::inference {

namespace {

namespace fs = std::filesystem;

// Latents to RGB: a linear map good enough for a step preview, with no VAE call (published
// approximations of the SD 1.x/2.x latent space and of SDXL's, whose VAE differs).
constexpr float kLatentRgb[4][3] = {{0.3512f, 0.2297f, 0.3227f},
                                    {0.3250f, 0.4974f, 0.2350f},
                                    {-0.2829f, 0.1762f, 0.2721f},
                                    {-0.2120f, -0.2616f, -0.7177f}};
constexpr float kLatentRgbXl[4][3] = {{0.3920f, 0.4054f, 0.4549f},
                                      {-0.2634f, -0.0196f, 0.0653f},
                                      {0.0568f, 0.1687f, -0.0755f},
                                      {-0.3112f, -0.2359f, -0.2076f}};

Image preview_of(const torch::Tensor& latents, bool xl) {
  torch::Tensor x = latents[0].to(torch::kCPU, torch::kFloat32);  // C x h x w
  const int64_t c = x.size(0), h = x.size(1), w = x.size(2);
  torch::Tensor rgb;
  if (c == 4) {
    const float* factors = xl ? &kLatentRgbXl[0][0] : &kLatentRgb[0][0];
    torch::Tensor m = torch::from_blob(const_cast<float*>(factors), {4, 3}).clone();
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
sd::PipelineCache& worker_cache(int64_t budget_bytes, const std::string& clip_vocab) {
  thread_local sd::PipelineCache cache(budget_bytes, sd::PipelineCache::default_loader(clip_vocab));
  return cache;
}

// Parsed LoRA files, per worker, by path; re-read when the file changes. Kept few: a parsed
// LoRA holds its factors in float32 (tens of MB for a large one).
Result<std::shared_ptr<const sd::Lora>> worker_lora(const fs::path& path) {
  struct Cached {
    fs::file_time_type mtime;
    std::shared_ptr<const sd::Lora> lora;
  };
  constexpr size_t kMaxCached = 16;
  thread_local std::list<std::pair<std::string, Cached>> cache;  // most recent first
  std::error_code ec;
  const auto mtime = fs::last_write_time(path, ec);
  if (ec) return Status::not_found("LoRA file " + path.string() + " is gone");
  for (auto it = cache.begin(); it != cache.end(); ++it) {
    if (it->first == path.string() && it->second.mtime == mtime) {
      cache.splice(cache.begin(), cache, it);
      return cache.front().second.lora;
    }
  }
  auto lora = sd::Lora::load(path.string());
  if (!lora.is_ok()) return lora.status();
  auto shared = std::make_shared<const sd::Lora>(std::move(*lora));
  cache.remove_if([&](const auto& e) { return e.first == path.string(); });
  cache.push_front({path.string(), Cached{mtime, shared}});
  if (cache.size() > kMaxCached) cache.pop_back();
  return shared;
}

// The job's LoRAs: the request's list, then the prompt's `<lora:...>` tags it does not name.
std::vector<LoraRef> wanted_loras(const GenerateRequest& req, const PromptLoras& tags) {
  std::vector<LoraRef> out = req.loras;
  for (const auto& t : tags.loras) {
    const bool named =
        std::any_of(out.begin(), out.end(), [&](const LoraRef& r) { return r.name == t.name; });
    if (!named) out.push_back(t);
  }
  return out;
}

class SdGenerator : public Generator {
 public:
  SdGenerator(ModelInfo info, std::string source, std::string device, SdOptions options)
      : info_(std::move(info)),
        source_(std::move(source)),
        device_(std::move(device)),
        options_(std::move(options)) {}

  const ModelInfo& info() const override { return info_; }

  Result<std::vector<GeneratedImage>> generate(const GenerateRequest& req, ProgressSink& progress,
                                               const CancelToken& cancel) override {
    const bool cuda = device_.rfind("cuda", 0) == 0;
    const torch::Dtype dtype = cuda && options_.fp16_on_cuda ? torch::kHalf : torch::kFloat32;
    auto cached = worker_cache(options_.cache_bytes, options_.clip_vocab)
                      .get(source_, dtype, torch::Device(device_));
    if (!cached.is_ok()) return cached.status();
    sd::CachedPipeline& cp = **cached;
    auto kind = sd::parse_sampler(req.sampler.empty() ? info_.samplers.front() : req.sampler);
    if (!kind) return Status::invalid_argument("unknown sampler " + req.sampler, "sampler");
    // The text encoder never sees `<lora:...>` tags.
    const PromptLoras tags = split_prompt_loras(req.prompt);
    std::vector<std::string> warnings;
    if (Status st = apply_loras(cp, wanted_loras(req, tags), warnings); !st.is_ok()) return st;
    const bool inpainting_model = cp.pipeline.is_inpainting_model();
    if (req.mode == Mode::kOutpaint ||
        (inpainting_model && req.mode != Mode::kTxt2Img && req.mode != Mode::kInpaint)) {
      // Outpaint reaches a generator as an inpaint of the enlarged canvas (edit.h).
      return Status::invalid_argument(
          "model " + info_.id + " does not make " + std::string(mode_name(req.mode)) + " images",
          "mode");
    }
    torch::Tensor parent, mask;
    if (req.mode == Mode::kInpaint) {
      // edit.h prepared the image and the binary mask at the working size.
      if (!req.inpaint || !image::validate(req.inpaint->image).is_ok() ||
          req.inpaint->mask.width <= 0 || req.inpaint->mask.height <= 0 ||
          req.inpaint->mask.values.size() != static_cast<size_t>(req.inpaint->mask.width) *
                                                 static_cast<size_t>(req.inpaint->mask.height)) {
        return Status::invalid_argument("an inpaint needs its image and mask", "mask_image_id");
      }
      parent = sd::image_to_tensor(req.inpaint->image, req.width, req.height);
      mask = sd::mask_to_tensor(req.inpaint->mask, req.width, req.height);
    } else if (req.mode != Mode::kTxt2Img) {
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
      r.prompt = tags.prompt;
      r.negative_prompt = req.negative_prompt;
      r.width = req.width;
      r.height = req.height;
      r.steps = req.steps;
      r.guidance = req.guidance;
      r.sampler = *kind;
      r.seed = static_cast<uint64_t>(req.seed + i);
      if (const auto& sc = req.size_conditioning) {
        r.original_width = sc->original_width;
        r.original_height = sc->original_height;
        r.target_width = sc->target_width;
        r.target_height = sc->target_height;
        r.crop_top = sc->crop_top;
        r.crop_left = sc->crop_left;
      }
      if (parent.defined()) {
        r.init_image = parent;
        r.mask = mask;
        // An upscale keeps the parent's look: it only re-renders the details.
        r.strength = req.mode == Mode::kUpscale ? 0.35 : req.strength;
      }
      const int done_before = i * req.steps;
      auto image = cp.pipeline.generate(r, [&](int step, int steps, const torch::Tensor& latents) {
        const int at = done_before + step * req.steps / std::max(steps, 1);
        if (progress.wants_preview()) {
          Image p = preview_of(latents, cp.pipeline.is_sdxl());
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
      g.warnings = warnings;
      out.push_back(std::move(g));
    }
    return out;
  }

 private:
  // Makes `wanted` the applied LoRA set of the cached pipeline (an empty set restores the base
  // weights of a pipeline a previous job patched).
  Status apply_loras(sd::CachedPipeline& cp, const std::vector<LoraRef>& wanted,
                     std::vector<std::string>& warnings) const {
    if (wanted.empty() && !cp.loras) return Status::ok();
    if (!cp.loras) {
      auto patcher = sd::LoraPatcher::create(cp.pipeline.unet().config(), cp.pipeline.parameters());
      if (!patcher.is_ok()) return patcher.status();
      cp.loras = std::move(*patcher);
    }
    std::vector<sd::LoraUse> set;
    for (const auto& ref : wanted) {
      if (ref.name.empty() || ref.name.find('/') != std::string::npos ||
          ref.name.find("..") != std::string::npos) {
        return Status::invalid_argument("no LoRA is called '" + ref.name + "'", "loras");
      }
      auto lora = worker_lora(fs::path(options_.loras_dir) / (ref.name + ".safetensors"));
      if (!lora.is_ok()) return lora.status();
      set.push_back({*lora, ref.weight});
    }
    auto reports = cp.loras->apply(set);
    if (!reports.is_ok()) return reports.status();
    for (const auto& r : *reports) {
      if (r.unmatched_keys == 0) continue;
      warnings.push_back("LoRA " + r.label + ": " + std::to_string(r.unmatched_keys) + " of " +
                         std::to_string(r.matched_keys + r.unmatched_keys) +
                         " keys matched no layer");
    }
    return Status::ok();
  }

  ModelInfo info_;
  std::string source_, device_;
  SdOptions options_;
};

}  // namespace

GeneratorFactory sd_generator_factory(ModelInfo info, std::string source, SdOptions options) {
  return [info = std::move(info), source = std::move(source), options = std::move(options)](
             const std::string& device) -> Result<std::unique_ptr<Generator>> {
    return std::unique_ptr<Generator>(std::make_unique<SdGenerator>(info, source, device, options));
  };
}

}  // namespace atelier::inference
