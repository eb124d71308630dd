#include "server/inference/sd/generate_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "common/image.h"
#include "common/safetensors.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/sd_generator.h"

namespace atelier::sd {

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "atelier generate: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int run_generate(const GenerateArgs& a) {
  auto info = inference::sd_model_info(a.model);
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
  if (!a.init_image.empty()) {
    auto bytes = read_model_file(a.init_image);
    if (!bytes.is_ok()) return fail(bytes.status().message());
    auto img = image::decode_png(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
    if (!img.is_ok()) return fail(a.init_image + ": " + img.status().message());
    if (a.width <= 0) r.width = img->width;
    if (a.height <= 0) r.height = img->height;
    r.init_image = image_to_tensor(*img, r.width, r.height);
    r.strength = a.strength;
  }
  if (!a.init_latents.empty()) {
    auto f = safetensors::File::open(a.init_latents);
    if (!f.is_ok()) return fail(f.status().message());
    const auto* t = f->find("latents");
    if (!t) return fail(a.init_latents + " has no tensor named 'latents'");
    auto v = f->to_float(*t);
    if (!v.is_ok()) return fail(v.status().message());
    r.init_latents = torch::from_blob(v->data(), t->shape, torch::kFloat32).clone();
  }

  std::fprintf(stderr, "loading %s ...\n", a.model.c_str());
  auto pipe = StableDiffusion::load(a.model);
  if (!pipe.is_ok()) return fail(pipe.status().message());
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
