#include "server/inference/sd/generate_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "common/image.h"
#include "common/safetensors.h"
#include "server/inference/edit.h"
#include "server/inference/edit_canvas.h"
#include "server/inference/sd/inpaint.h"
#include "server/inference/sd/lora.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/sd_generator.h"
#include "server/inference/sd/single_file_pipeline.h"

namespace atelier::sd {

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "atelier generate: %s\n", msg.c_str());
  return 1;
}

// "AxB" (or "A,B") as two positive integers up to 16384; false when it is not.
bool parse_pair(const std::string& text, char sep, int& a, int& b, bool allow_zero) {
  const size_t at = text.find(sep);
  if (at == std::string::npos) return false;
  try {
    size_t used_a = 0, used_b = 0;
    a = std::stoi(text.substr(0, at), &used_a);
    b = std::stoi(text.substr(at + 1), &used_b);
    const int lo = allow_zero ? 0 : 1;
    return used_a == at && used_b == text.size() - at - 1 && a >= lo && b >= lo && a <= 16384 &&
           b <= 16384;
  } catch (const std::exception&) {
    return false;
  }
}

Result<image::Image> read_png(const std::string& path) {
  auto bytes = read_model_file(path);
  if (!bytes.is_ok()) return bytes.status();
  auto img = image::decode_png(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
  if (!img.is_ok()) return Status::invalid_argument(path + ": " + img.status().message());
  return img;
}

}  // namespace

int run_generate(const GenerateArgs& a) {
  auto info = inference::sd_model_info(a.model, a.config_dir);
  if (!info.is_ok()) return fail(a.model + ": " + info.status().message());
  GenerationRequest r;
  r.prompt = a.prompt;
  r.negative_prompt = a.negative;
  r.steps = a.steps > 0 ? a.steps : static_cast<int>(info->steps.default_value);
  r.guidance = a.guidance >= 0 ? a.guidance : info->guidance.default_value;
  const std::string sampler = a.sampler.empty() ? info->samplers.front() : a.sampler;
  auto kind = parse_sampler(sampler);
  if (!kind) return fail("--sampler must be euler, euler_a, ddim or lcm");
  r.sampler = *kind;
  r.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();
  r.width = a.width > 0 ? a.width : static_cast<int>(info->width.default_value);
  r.height = a.height > 0 ? a.height : static_cast<int>(info->height.default_value);
  if (!a.mask.empty() && a.init_image.empty()) return fail("--mask needs --init-image");
  if (a.mask_blur < 0 || a.mask_blur > 64) return fail("--mask-blur must be 0..64");
  if (!a.init_image.empty()) {
    auto img = read_png(a.init_image);
    if (!img.is_ok()) return fail(img.status().message());
    if (a.width <= 0) r.width = img->width;
    if (a.height <= 0) r.height = img->height;
    r.init_image = image_to_tensor(*img, r.width, r.height);
    r.strength = a.strength;
  }
  if (!a.mask.empty()) {
    auto img = read_png(a.mask);
    if (!img.is_ok()) return fail(img.status().message());
    auto mask = inference::mask_from_image(*img);
    if (!mask.is_ok()) return fail(a.mask + ": " + mask.status().message());
    if (inference::mask_is_empty(*mask)) return fail(a.mask + " masks nothing (no value >= 128)");
    r.mask = mask_to_tensor(*mask, r.width, r.height);
  }
  if (!a.init_latents.empty()) {
    auto f = safetensors::File::open(a.init_latents);
    if (!f.is_ok()) return fail(f.status().message());
    // Each named draw the file has; the rest of it is ignored.
    const auto named = [&](const char* name) -> Result<torch::Tensor> {
      const auto* t = f->find(name);
      if (!t) return torch::Tensor();
      auto v = f->to_float(*t);
      if (!v.is_ok()) return v.status();
      return torch::from_blob(v->data(), t->shape, torch::kFloat32).clone();
    };
    torch::Tensor latents, noise;
    for (auto [name, slot] :
         {std::pair{"latents", &latents}, std::pair{"noise", &noise},
          std::pair{"image_encoder_sample_noise", &r.encoder_noise},
          std::pair{"masked_image_encoder_sample_noise", &r.masked_encoder_noise}}) {
      auto t = named(name);
      if (!t.is_ok()) return fail(a.init_latents + ": " + t.status().message());
      *slot = std::move(*t);
    }
    if (r.init_image.defined()) {
      r.add_noise = noise;
    } else {
      r.init_latents = latents.defined() ? latents : noise;
    }
    if (!latents.defined() && !noise.defined() && !r.encoder_noise.defined() &&
        !r.masked_encoder_noise.defined()) {
      return fail(a.init_latents +
                  " has none of the tensors latents, noise, image_encoder_sample_noise, "
                  "masked_image_encoder_sample_noise");
    }
  }

  if (!a.original_size.empty() &&
      !parse_pair(a.original_size, 'x', r.original_width, r.original_height, false)) {
    return fail("--original-size must be WxH, e.g. 1024x1024");
  }
  if (!a.target_size.empty() &&
      !parse_pair(a.target_size, 'x', r.target_width, r.target_height, false)) {
    return fail("--target-size must be WxH, e.g. 1024x1024");
  }
  if (!a.crop_top_left.empty() &&
      !parse_pair(a.crop_top_left, ',', r.crop_top, r.crop_left, true)) {
    return fail("--crop-top-left must be TOP,LEFT, e.g. 0,0");
  }

  std::fprintf(stderr, "loading %s ...\n", a.model.c_str());
  std::error_code ec;
  auto pipe =
      std::filesystem::is_directory(a.model, ec)
          ? StableDiffusion::load(a.model)
          : load_single_file_pipeline(a.model, torch::kFloat32, torch::kCPU, "", a.config_dir);
  if (!pipe.is_ok()) return fail(pipe.status().message());
  std::optional<LoraPatcher> patcher;
  if (!a.loras.empty()) {
    auto p = LoraPatcher::create(pipe->unet().config(), pipe->parameters());
    if (!p.is_ok()) return fail(p.status().message());
    patcher = std::move(*p);
    std::vector<LoraUse> set;
    for (const std::string& spec : a.loras) {
      // FILE[:WEIGHT]: the weight is what follows the last ':' when it is a number.
      std::string file = spec;
      double weight = 1.0;
      if (const size_t colon = spec.rfind(':'); colon != std::string::npos) {
        try {
          size_t used = 0;
          weight = std::stod(spec.substr(colon + 1), &used);
          if (used == spec.size() - colon - 1)
            file = spec.substr(0, colon);
          else
            weight = 1.0;
        } catch (const std::exception&) {
          weight = 1.0;
        }
      }
      auto lora = Lora::load(file);
      if (!lora.is_ok()) return fail(lora.status().message());
      set.push_back({std::make_shared<const Lora>(std::move(*lora)), weight});
    }
    auto reports = patcher->apply(set);
    if (!reports.is_ok()) return fail(reports.status().message());
    for (const auto& rep : *reports) {
      std::fprintf(stderr, "LoRA %s at %g: %lld modules, %lld keys matched no layer\n",
                   rep.label.c_str(), rep.weight, static_cast<long long>(rep.matched_modules),
                   static_cast<long long>(rep.unmatched_keys));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  auto image = pipe->generate(r, [&](int step, int steps, const torch::Tensor&) {
    const int width = 30, filled = step * width / std::max(steps, 1);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\r[%.*s%*s] %d/%d steps, %.1f s", filled,
                 "##############################", width - filled, "", step, steps, s);
    return true;
  });
  std::fprintf(stderr, "\n");
  if (!image.is_ok()) return fail(image.status().message());

  if (r.mask.defined() && a.mask_blur > 0) {
    // As the server composites an edit: the original wherever the blurred mask is 0.
    const int w = r.width, h = r.height;
    const torch::Tensor bin = (r.mask[0][0] >= 0.5).to(torch::kUInt8).mul(255).contiguous();
    image::Mask hard{w, h,
                     std::vector<uint8_t>(bin.data_ptr<uint8_t>(),
                                          bin.data_ptr<uint8_t>() + static_cast<size_t>(w * h))};
    const image::Mask soft = inference::canvas::blur_mask(hard, a.mask_blur);
    const torch::Tensor alpha = mask_to_tensor(soft, w, h).to(image->options());
    *image = (r.init_image.to(image->options()) + 1) / 2 * (1 - alpha) + *image * alpha;
  }
  const image::Image out = tensor_to_image(*image);
  auto png = image::encode_png(out);
  if (!png.is_ok()) return fail(png.status().message());
  std::ofstream(a.out, std::ios::binary)
      .write(reinterpret_cast<const char*>(png->data()), static_cast<std::streamsize>(png->size()));
  if (!a.out_tensor.empty()) {
    torch::Tensor img = image->contiguous();
    std::string bytes(reinterpret_cast<const char*>(img.data_ptr<float>()),
                      static_cast<size_t>(img.numel()) * 4);
    auto file = safetensors::serialize(
        {{"image", safetensors::DType::kF32, img.sizes().vec(), std::move(bytes)}},
        {{"format", "pt"}});
    if (!file.is_ok()) return fail(file.status().message());
    std::ofstream(a.out_tensor, std::ios::binary) << *file;
  }
  std::fprintf(stderr, "wrote %s (%dx%d, seed %llu)\n", a.out.c_str(), r.width, r.height,
               static_cast<unsigned long long>(r.seed));
  return 0;
}

}  // namespace atelier::sd
