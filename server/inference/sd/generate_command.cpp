#include "server/inference/sd/generate_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "common/image.h"
#include "common/safetensors.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/sd_generator.h"

namespace atelier::sd {

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "atelier generate: %s\n", msg.c_str());
  return 1;
}

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
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
  const std::pair<const char*, SamplerKind> kinds[] = {{"euler", SamplerKind::kEuler},
                                                       {"euler_a", SamplerKind::kEulerAncestral},
                                                       {"ddim", SamplerKind::kDdim},
                                                       {"lcm", SamplerKind::kLcm}};
  bool known = false;
  for (const auto& [name, kind] : kinds) {
    if (sampler == name) {
      r.sampler = kind;
      known = true;
    }
  }
  if (!known) return fail("--sampler must be euler, euler_a, ddim or lcm");
  r.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();
  r.width = a.width > 0 ? a.width : static_cast<int>(info->width.default_value);
  r.height = a.height > 0 ? a.height : static_cast<int>(info->height.default_value);
  if (!a.init_image.empty()) {
    auto bytes = slurp(a.init_image);
    if (!bytes.is_ok()) return fail(bytes.status().message());
    auto img = image::decode_png(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
    if (!img.is_ok()) return fail(a.init_image + ": " + img.status().message());
    if (a.width <= 0) r.width = img->width;
    if (a.height <= 0) r.height = img->height;
    torch::Tensor t = torch::from_blob(img->pixels.data(), {img->height, img->width, img->channels},
                                       torch::kUInt8)
                              .narrow(2, 0, 3)
                              .permute({2, 0, 1})
                              .unsqueeze(0)
                              .to(torch::kFloat32) /
                          127.5 -
                      1.0;
    if (img->width != r.width || img->height != r.height) {
      t = torch::upsample_bilinear2d(t, {r.height, r.width}, false);
    }
    r.init_image = t.clone();
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

  torch::Tensor u8 =
      ((*image)[0] * 255).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  image::Image out{r.width, r.height, 3, std::vector<uint8_t>(static_cast<size_t>(u8.numel()))};
  std::memcpy(out.pixels.data(), u8.data_ptr<uint8_t>(), out.pixels.size());
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
