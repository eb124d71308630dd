// sd_bench: Stable Diffusion on libtorch. Per UNet step and per image, for the tiny fixture
// pipeline and for SD 1.5- and SDXL-shaped UNets with random weights at small latent sizes, with
// the achieved GFLOP/s (counted by the layers) next to this machine's matrix-product GFLOP/s
// measured in the same run; and the LoRA switch time on an SD 1.5-shaped UNet next to reloading
// its weights from disk. On demand:
//
//   build/release/tests/bench/sd_bench [latent=32] [steps=3] [base] [xl] [lora] [gpu] [gpu-xl]
//                                      [xl-files] [--threads N (default: one per core)]
//
// Sections (all CPU ones, then the GPU ones when CUDA is there, if none is named):
//   base  the tiny fixture pipeline and the SD 1.5 UNet at `latent` (fp32, CPU)
//   xl    the SDXL UNet (2.57B parameters, ~10.3 GB in fp32) at 16x16 and 32x32 latents
//   lora  two rank-32 kohya LoRAs switched on the SD 1.5 UNet; reload from disk as the baseline
//   gpu   (--gpu-only too) with CUDA: fp16 SD 1.5 at 512x512 and SDXL at 1024x1024, the UNet
//         alone and whole images from model folders with random weights written to a temporary
//         folder and loaded like downloaded models (needs ../shared/fixtures/clip-tokenizer).
//   gpu-xl  the SDXL part of `gpu` alone.
//   xl-files  (only when named: ~7 GB on disk twice, up to ~21 GB of memory) a full-size SDXL
//         folder and single file with random fp16 weights written to /tmp, loaded through
//         StableDiffusion::load and load_single_file_pipeline, the published parameter counts
//         checked on what was loaded (sd_bench_files.cpp); exit 1 on a mismatch.
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/safetensors.h"
#include "server/inference/sd/layers.h"
#include "server/inference/sd/lora.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/synthetic_model.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/weights.h"
#include "tests/bench/sd_bench_files.h"
#include "tests/bench/sd_bench_lora.h"
#include "tests/bench/sd_bench_util.h"

namespace {

using atelier::sd::flop_counter;
using atelier::sd_bench::Clock;
using atelier::sd_bench::median;
using atelier::sd_bench::memory_line;
using atelier::sd_bench::seconds_since;
namespace fs = std::filesystem;
namespace st = atelier::safetensors;

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Dense matrix product throughput: the ceiling the UNet's convolutions and attention run under.
double matmul_gflops(const torch::Device& device, torch::Dtype dtype) {
  const int64_t n = device.is_cuda() ? 8192 : 2048;
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  torch::Tensor a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  torch::matmul(a, b);
  sync(device);
  int reps = 0;
  auto t0 = Clock::now();
  while (seconds_since(t0) < 2.0 || reps < 3) {
    torch::matmul(a, b);
    sync(device);
    ++reps;
  }
  return 2.0 * n * n * n * reps / seconds_since(t0) / 1e9;
}

struct Timing {
  double ms = 0, gflop = 0;
  double gflops() const { return gflop / ms * 1000; }
};

// One UNet step on random inputs: 77 context tokens, and for SDXL (text_time) the pooled text
// embedding and the size ids of a latent*8 square image.
Timing time_unet(const atelier::sd::UNet& unet, int64_t latent, int64_t batch, int steps,
                 const torch::TensorOptions& opts) {
  torch::NoGradGuard ng;
  const auto& c = unet.config();
  torch::Tensor x = torch::randn({batch, c.in_channels, latent, latent}, opts);
  torch::Tensor ctx = torch::randn({batch, 77, c.cross_attention_dim}, opts);
  torch::Tensor t = torch::tensor({500.0f}, opts.dtype(torch::kFloat32));
  atelier::sd::AddedConditioning added;
  if (c.text_time) {
    const int64_t pooled = c.projection_class_embeddings_input_dim - 6 * c.addition_time_embed_dim;
    const float px = static_cast<float>(latent * 8);
    added.text_embeds = torch::randn({batch, pooled}, opts);
    added.time_ids = torch::tensor({px, px, 0.0f, 0.0f, px, px})
                         .unsqueeze(0)
                         .expand({batch, 6})
                         .contiguous()
                         .to(opts);
  }
  const atelier::sd::AddedConditioning* a = c.text_time ? &added : nullptr;
  unet.forward(x, t, ctx, nullptr, {}, a);  // warm-up
  sync(opts.device());
  flop_counter() = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) unet.forward(x, t, ctx, nullptr, {}, a);
  sync(opts.device());
  Timing r;
  r.ms = seconds_since(t0) * 1000 / steps;
  r.gflop = static_cast<double>(flop_counter()) / steps / 1e9;
  return r;
}

atelier::sd::UNetConfig sd15() {
  atelier::sd::UNetConfig c;  // the defaults are SD 1.5's UNet
  return c;
}

atelier::sd::UNetConfig sdxl() {
  auto c = atelier::sd::parse_unet_config(atelier::sd::sdxl_configs().unet);
  if (!c.is_ok()) {
    std::printf("SDXL UNet config: %s\n", c.status().to_string().c_str());
    std::exit(1);
  }
  return *c;
}

// ---------------------------------------------------------------------------------- CPU: base

// The tiny fixture and the SD 1.5 UNet at `latent`; returns the SD 1.5 step.
std::optional<Timing> base_section(double cpu_mm, int64_t latent, int steps) {
  const fs::path tiny = "../shared/fixtures/sd-tiny";
  if (fs::exists(tiny)) {
    auto unet = atelier::sd::UNet::load((tiny / "unet").string());
    if (unet.is_ok()) {
      Timing t = time_unet(*unet, 32, 2, 20, torch::TensorOptions());
      std::printf(
          "tiny UNet, 32x32 latents, batch 2 (CFG): %.2f ms/step, %.3f GFLOP/step, "
          "%.1f GFLOP/s (%.1f%% of the matrix product)\n",
          t.ms, t.gflop, t.gflops(), 100 * t.gflops() / cpu_mm);
    }
    auto pipe = atelier::sd::StableDiffusion::load(tiny.string());
    if (pipe.is_ok()) {
      atelier::sd::GenerationRequest r;
      r.prompt = "a red fox in the snow";
      r.width = r.height = 64;
      r.steps = 20;
      r.sampler = atelier::sd::SamplerKind::kEuler;
      (void)pipe->generate(r);
      auto t0 = Clock::now();
      const int images = 5;
      for (int i = 0; i < images; ++i) (void)pipe->generate(r);
      std::printf("tiny pipeline, 64x64, 20 Euler steps, guidance 7.5: %.1f ms/image\n\n",
                  seconds_since(t0) * 1000 / images);
    }
  } else {
    std::printf("tiny pipeline: skipped (../shared/fixtures/sd-tiny is absent)\n\n");
  }

  auto weights = atelier::sd::Weights::synthetic(1);
  auto t_build = Clock::now();
  auto big = atelier::sd::UNet::build(sd15(), weights);
  if (!big.is_ok()) {
    std::printf("SD 1.5 UNet: %s\n", big.status().message().c_str());
    return std::nullopt;
  }
  std::printf("SD 1.5-shaped UNet (random weights) built in %.1f s\n", seconds_since(t_build));
  Timing t = time_unet(*big, latent, 2, steps, torch::TensorOptions());
  std::printf(
      "SD 1.5 UNet, %lldx%lld latents (%lld px), batch 2 (CFG), fp32 CPU: %.0f ms/step, "
      "%.1f GFLOP/step, %.1f GFLOP/s (%.1f%% of the matrix product); "
      "a 20-step image: %.1f s\n",
      static_cast<long long>(latent), static_cast<long long>(latent),
      static_cast<long long>(latent * 8), t.ms, t.gflop, t.gflops(), 100 * t.gflops() / cpu_mm,
      t.ms * 20 / 1000);
  std::printf("(%s)\n\n", memory_line().c_str());
  return t;
}

// ------------------------------------------------------------------------------------ CPU: xl

// The SDXL UNet (fp32, random weights, ~10.3 GB) at 16x16 and 32x32 latents, batch 2; built
// once and freed on return. `sd15` (from `base` in the same run, at `sd15_latent`) is shown
// next to it.
int xl_section(double cpu_mm, const std::optional<Timing>& sd15_step, int64_t sd15_latent) {
  auto t0 = Clock::now();
  auto weights = atelier::sd::Weights::synthetic(1);
  auto unet = atelier::sd::UNet::build(sdxl(), weights);
  if (!unet.is_ok()) {
    std::printf("SDXL UNet: %s\n", unet.status().message().c_str());
    return 1;
  }
  std::printf("SDXL-shaped UNet (random fp32 weights, %lld parameters) built in %.1f s (%s)\n",
              static_cast<long long>(weights.parameter_count()), seconds_since(t0),
              memory_line().c_str());
  for (int64_t latent : {16, 32}) {
    Timing t = time_unet(*unet, latent, 2, 2, torch::TensorOptions());
    std::printf(
        "SDXL UNet, %lldx%lld latents (%lld px), batch 2 (CFG), fp32 CPU: %.0f ms/step, "
        "%.1f GFLOP/step, %.1f GFLOP/s (%.1f%% of the matrix product); a 20-step image: %.0f s\n",
        static_cast<long long>(latent), static_cast<long long>(latent),
        static_cast<long long>(latent * 8), t.ms, t.gflop, t.gflops(), 100 * t.gflops() / cpu_mm,
        t.ms * 20 / 1000);
    if (sd15_step && sd15_latent == latent) {
      std::printf(
          "  SD 1.5 UNet at the same size, same run: %.0f ms/step, %.1f GFLOP/step, %.1f GFLOP/s "
          "(%.1f%%); SDXL takes %.1fx the time for %.1fx the work\n",
          sd15_step->ms, sd15_step->gflop, sd15_step->gflops(), 100 * sd15_step->gflops() / cpu_mm,
          t.ms / sd15_step->ms, t.gflop / sd15_step->gflop);
    }
  }
  std::printf("(%s)\n\n", memory_line().c_str());
  return 0;
}

// ----------------------------------------------------------------------------------------- GPU

// A model folder with random fp16 weights (`configs`' architecture), written to a temporary
// folder and loaded to the GPU through the same StableDiffusion::load as a real one. Null when
// it cannot be (printed).
std::optional<atelier::sd::StableDiffusion> gpu_pipeline(const torch::Device& gpu, const char* what,
                                                         const atelier::sd::ModelConfigs& configs,
                                                         const fs::path& dir) {
  const fs::path vocab = "../shared/fixtures/clip-tokenizer";
  if (!fs::exists(vocab / "vocab.json")) {
    std::printf("GPU %s images: not run (%s is absent)\n", what, vocab.c_str());
    return std::nullopt;
  }
  auto t0 = Clock::now();
  atelier::Status s = atelier::sd::write_synthetic_model(dir.string(), configs, vocab.string(), 1);
  if (!s.is_ok()) {
    std::printf("GPU %s images: %s\n", what, s.to_string().c_str());
    return std::nullopt;
  }
  std::printf("%s-shaped folder with random fp16 weights written in %.1f s\n", what,
              seconds_since(t0));
  t0 = Clock::now();
  auto pipe = atelier::sd::StableDiffusion::load(dir.string(), torch::kHalf, gpu);
  if (!pipe.is_ok()) {
    std::printf("GPU %s images: %s\n", what, pipe.status().to_string().c_str());
    return std::nullopt;
  }
  std::printf("loaded to the GPU (fp16) in %.1f s\n", seconds_since(t0));
  return std::move(pipe).value();
}

// Whole images (text encoding, `steps` Euler steps, VAE decode) at size x size; returns s/image.
double gpu_images(const atelier::sd::StableDiffusion& pipe, const torch::Device& gpu,
                  const char* what, int size, double guidance, int images) {
  atelier::sd::GenerationRequest r;
  r.prompt = "a red fox in the snow, oil painting";
  r.width = r.height = size;
  r.steps = 20;
  r.guidance = guidance;
  r.sampler = atelier::sd::SamplerKind::kEuler;
  auto warm = pipe.generate(r);
  if (!warm.is_ok()) {
    std::printf("GPU %s images: %s\n", what, warm.status().to_string().c_str());
    return 0;
  }
  const bool finite = torch::isfinite(*warm).all().item<bool>();
  auto t0 = Clock::now();
  for (int i = 0; i < images; ++i) {
    r.seed = static_cast<uint64_t>(i + 1);
    (void)pipe.generate(r);
  }
  sync(gpu);
  const double s = seconds_since(t0) / images;
  std::printf(
      "GPU %s image %dx%d, fp16, 20 Euler steps, guidance %.1f%s: %.0f ms/image, "
      "%.2f images/s, %.1f steps/s (text encoding and VAE included)%s\n",
      what, size, size, guidance, guidance > 1 ? " (batch 2)" : " (no unconditional pass)",
      s * 1000, 1 / s, r.steps / s, finite ? "" : "; OUTPUT NOT FINITE");
  return s;
}

// The fp16 UNet alone on the GPU at `latent`, batch 2 and 1; returns the batch-2 step.
std::optional<Timing> gpu_unet(const torch::Device& gpu, const char* what,
                               const atelier::sd::UNetConfig& config, int64_t latent,
                               double gpu_mm) {
  auto w16 = atelier::sd::Weights::synthetic(1, torch::kHalf, gpu);
  auto g = atelier::sd::UNet::build(config, w16);
  if (!g.is_ok()) {
    std::printf("GPU %s UNet: %s\n", what, g.status().to_string().c_str());
    return std::nullopt;
  }
  std::optional<Timing> cfg;
  for (int64_t batch : {2, 1}) {
    Timing tg =
        time_unet(*g, latent, batch, 20, torch::TensorOptions().device(gpu).dtype(torch::kHalf));
    if (batch == 2) cfg = tg;
    std::printf(
        "GPU %s UNet %lldx%lld latents (%lld px), batch %lld, fp16: %.1f ms/step (%.1f it/s), "
        "%.0f GFLOP/step, %.0f GFLOP/s (%.0f%% of the matrix product)\n",
        what, static_cast<long long>(latent), static_cast<long long>(latent),
        static_cast<long long>(latent * 8), static_cast<long long>(batch), tg.ms, 1000 / tg.ms,
        tg.gflop, tg.gflops(), 100 * tg.gflops() / gpu_mm);
  }
  return cfg;
}

// `sd15`: SD 1.5 at 512x512 first; SDXL always.
int gpu_section(const torch::Device& gpu, bool sd15_too) {
  const double gpu_mm = matmul_gflops(gpu, torch::kHalf);
  std::printf("GPU: matrix product fp16 %.0f GFLOP/s (8192^3, this run)\n", gpu_mm);
  if (sd15_too) {
    if (!gpu_unet(gpu, "SD 1.5", sd15(), 64, gpu_mm)) return 1;
    const fs::path dir15 = fs::temp_directory_path() / "atelier_sd15_bench";
    if (auto pipe = gpu_pipeline(gpu, "SD 1.5", atelier::sd::sd15_configs(), dir15)) {
      for (double guidance : {7.5, 1.0}) gpu_images(*pipe, gpu, "SD 1.5", 512, guidance, 5);
    }
    fs::remove_all(dir15);
  }

  // SDXL at its native 1024x1024 (128x128 latents), 20 steps, fp16.
  auto xl = gpu_unet(gpu, "SDXL", sdxl(), 128, gpu_mm);
  if (!xl) return 1;
  const fs::path dirxl = fs::temp_directory_path() / "atelier_sdxl_bench";
  if (auto pipe = gpu_pipeline(gpu, "SDXL", atelier::sd::sdxl_configs(), dirxl)) {
    const double s = gpu_images(*pipe, gpu, "SDXL", 1024, 7.5, 3);
    if (s > 0) {
      std::printf(
          "GPU SDXL 1024x1024 summary: %.2f images/s, %.1f steps/s; UNet %.1f ms/step at %.0f%% "
          "of the same-run fp16 matrix product (%.0f GFLOP/s); 20 steps are %.0f of the %.0f "
          "ms/image (the rest: text encoders, VAE decode in fp32 (force_upcast), sampler)\n",
          1 / s, 20 / s, xl->ms, 100 * xl->gflops() / gpu_mm, gpu_mm, 20 * xl->ms, s * 1000);
    }
  }
  fs::remove_all(dirxl);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure out as soon as it is measured
  std::set<std::string> sections;
  std::vector<const char*> positional;
  int threads = 0;  // 0: one per core
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--gpu-only" || arg == "gpu") {
      sections.insert("gpu");
    } else if (arg == "base" || arg == "xl" || arg == "lora" || arg == "gpu-xl" ||
               arg == "xl-files") {
      sections.insert(arg);
    } else if (!arg.empty() && std::isdigit(static_cast<unsigned char>(arg[0]))) {
      positional.push_back(argv[i]);
    } else {
      std::printf(
          "usage: sd_bench [latent=32] [steps=3] [base] [xl] [lora] [gpu|--gpu-only] [gpu-xl] "
          "[xl-files] [--threads N]\n");
      return 2;
    }
  }
  const bool all = sections.empty();  // nothing named (so no xl-files either)
  auto want = [&](const char* s) { return all || sections.count(s) > 0; };
  const int64_t latent = positional.size() > 0 ? std::atoll(positional[0]) : 32;
  const int steps = positional.size() > 1 ? std::atoi(positional[1]) : 3;
  torch::NoGradGuard ng;
  // As the server sets it by default (--torch-threads 0): one thread per core.
  torch::set_num_threads(
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  // xl-files runs only when named, first, and alone unless other sections are named too.
  int files_rc = 0;
  if (sections.erase("xl-files") > 0) {
    files_rc = atelier::sd_bench::xl_files_section();
    if (sections.empty()) return files_rc;
  }
  const bool cuda = torch::cuda::is_available();
  const bool gpu15 = all || sections.count("gpu") > 0;
  const bool gpu_any = gpu15 || sections.count("gpu-xl") > 0;
  if (!(all || sections.count("base") || sections.count("xl") || sections.count("lora"))) {
    if (!cuda) {  // gpu sections only
      std::printf("GPU: not run (no CUDA device): SDXL 1024x1024, 20 steps, fp16 not measured\n");
      return 1;
    }
    return files_rc | gpu_section(torch::Device(torch::kCUDA, 0), gpu15);
  }
  std::printf("sd_bench: torch %d threads, %s\n", torch::get_num_threads(), memory_line().c_str());
  const double cpu_mm = matmul_gflops(torch::kCPU, torch::kFloat32);
  std::printf("matrix product (2048^2, fp32, CPU): %.1f GFLOP/s\n\n", cpu_mm);

  int rc = files_rc;
  std::optional<Timing> sd15_step;
  if (want("base")) {
    sd15_step = base_section(cpu_mm, latent, steps);
    if (!sd15_step) rc = 1;
  }
  if (want("xl")) rc |= xl_section(cpu_mm, sd15_step, latent);
  if (want("lora")) rc |= atelier::sd_bench::lora_section();
  if (gpu_any) {
    if (cuda) {
      rc |= gpu_section(torch::Device(torch::kCUDA, 0), gpu15);
    } else {
      std::printf(
          "GPU: not run (no CUDA device): SD 1.5 512x512 and SDXL 1024x1024, 20 steps, fp16, "
          "images/s and steps/s need the device tool's machine\n");
    }
  }
  return rc;
}
