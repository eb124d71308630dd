// sd_bench: Stable Diffusion on libtorch. Per UNet step and per image, for the tiny fixture
// pipeline and for an SD 1.5-shaped UNet with random weights at a small latent size, with the
// achieved GFLOP/s (counted by the layers) next to this machine's matrix-product GFLOP/s measured
// in the same run. On demand:
//
//   build/release/tests/bench/sd_bench [latent=32] [steps=3] [--gpu-only]
//
// With CUDA (the device tool): also fp16 on the GPU at 64x64 latents (512x512 images): the UNet
// alone, and whole images from an SD 1.5-shaped model folder with random weights written to a
// temporary folder and loaded like a downloaded model (needs ../shared/fixtures/clip-tokenizer).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "server/inference/sd/layers.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/synthetic_model.h"
#include "server/inference/sd/unet.h"

namespace {

using Clock = std::chrono::steady_clock;
using atelier::sd::flop_counter;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

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
};

Timing time_unet(const atelier::sd::UNet& unet, int64_t latent, int64_t batch, int steps,
                 const torch::TensorOptions& opts) {
  torch::NoGradGuard ng;
  const auto& c = unet.config();
  torch::Tensor x = torch::randn({batch, c.in_channels, latent, latent}, opts);
  torch::Tensor ctx = torch::randn({batch, 77, c.cross_attention_dim}, opts);
  torch::Tensor t = torch::tensor({500.0f}, opts.dtype(torch::kFloat32));
  unet.forward(x, t, ctx);  // warm-up
  sync(opts.device());
  flop_counter() = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) unet.forward(x, t, ctx);
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

// Whole SD 1.5-shaped images on the GPU in fp16: a synthetic folder loaded through the same
// StableDiffusion::load as a real one, 512x512, 20 Euler steps, with and without guidance.
void gpu_images(const torch::Device& gpu) {
  const std::filesystem::path vocab = "../shared/fixtures/clip-tokenizer";
  if (!std::filesystem::exists(vocab / "vocab.json")) {
    std::printf("GPU images: not run (%s is absent)\n", vocab.c_str());
    return;
  }
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "atelier_sd15_bench";
  auto t0 = Clock::now();
  atelier::Status st = atelier::sd::write_synthetic_model(dir.string(), atelier::sd::sd15_configs(),
                                                          vocab.string(), 1);
  if (!st.is_ok()) {
    std::printf("GPU images: %s\n", st.to_string().c_str());
    return;
  }
  std::printf("SD 1.5-shaped folder with random fp16 weights written in %.1f s\n",
              seconds_since(t0));
  t0 = Clock::now();
  auto pipe = atelier::sd::StableDiffusion::load(dir.string(), torch::kHalf, gpu);
  if (!pipe.is_ok()) {
    std::printf("GPU images: %s\n", pipe.status().to_string().c_str());
    return;
  }
  std::printf("loaded to the GPU (fp16) in %.1f s\n", seconds_since(t0));
  {
    torch::Tensor lat =
        torch::randn({1, 4, 64, 64}, torch::TensorOptions().device(gpu).dtype(torch::kHalf));
    pipe->vae().decode(lat);
    sync(gpu);
    t0 = Clock::now();
    for (int i = 0; i < 3; ++i) pipe->vae().decode(lat);
    sync(gpu);
    std::printf("GPU VAE decode 64x64 latents to 512x512, fp16: %.1f ms\n",
                seconds_since(t0) * 1000 / 3);
  }
  for (double guidance : {7.5, 1.0}) {
    atelier::sd::GenerationRequest r;
    r.prompt = "a red fox in the snow, oil painting";
    r.width = r.height = 512;
    r.steps = 20;
    r.guidance = guidance;
    r.sampler = atelier::sd::SamplerKind::kEuler;
    auto warm = pipe->generate(r);
    if (!warm.is_ok()) {
      std::printf("GPU images: %s\n", warm.status().to_string().c_str());
      return;
    }
    const bool finite = torch::isfinite(*warm).all().item<bool>();
    const int images = 5;
    t0 = Clock::now();
    for (int i = 0; i < images; ++i) {
      r.seed = static_cast<uint64_t>(i + 1);
      (void)pipe->generate(r);
    }
    sync(gpu);
    const double s = seconds_since(t0) / images;
    std::printf(
        "GPU SD 1.5 image 512x512, fp16, 20 Euler steps, guidance %.1f%s: %.0f ms/image, "
        "%.2f images/s, %.1f it/s (steps of the whole image, text encoder and VAE included)%s\n",
        guidance, guidance > 1 ? " (batch 2)" : " (no unconditional pass)", s * 1000, 1 / s,
        r.steps / s, finite ? "" : "; OUTPUT NOT FINITE");
  }
  std::filesystem::remove_all(dir);
}

int gpu_section(const torch::Device& gpu) {
  const double gpu_mm = matmul_gflops(gpu, torch::kHalf);
  auto w16 = atelier::sd::Weights::synthetic(1, torch::kHalf, gpu);
  auto g = atelier::sd::UNet::build(sd15(), w16);
  if (!g.is_ok()) {
    std::printf("GPU UNet: %s\n", g.status().to_string().c_str());
    return 1;
  }
  std::printf("GPU: matrix product fp16 %.0f GFLOP/s\n", gpu_mm);
  for (int64_t batch : {2, 1}) {
    Timing tg =
        time_unet(*g, 64, batch, 20, torch::TensorOptions().device(gpu).dtype(torch::kHalf));
    std::printf(
        "GPU SD 1.5 UNet 64x64 latents (512 px), batch %lld, fp16: %.1f ms/step (%.1f it/s), "
        "%.0f GFLOP/s (%.0f%% of the matrix product)\n",
        static_cast<long long>(batch), tg.ms, 1000 / tg.ms, tg.gflop / tg.ms * 1000,
        100 * tg.gflop / tg.ms * 1000 / gpu_mm);
  }
  gpu_images(gpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure out as soon as it is measured
  bool gpu_only = false;
  std::vector<const char*> positional;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--gpu-only") {
      gpu_only = true;
    } else {
      positional.push_back(argv[i]);
    }
  }
  const int64_t latent = positional.size() > 0 ? std::atoll(positional[0]) : 32;
  const int steps = positional.size() > 1 ? std::atoi(positional[1]) : 3;
  torch::NoGradGuard ng;
  // As the server sets it by default (--torch-threads 0): one thread per core.
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const torch::Device cpu(torch::kCPU);
  if (gpu_only) {
    if (!torch::cuda::is_available()) {
      std::printf("GPU: not run (no CUDA device)\n");
      return 1;
    }
    return gpu_section(torch::Device(torch::kCUDA, 0));
  }
  std::printf("sd_bench: torch %d threads\n", torch::get_num_threads());
  const double cpu_mm = matmul_gflops(cpu, torch::kFloat32);
  std::printf("matrix product (2048^2, fp32, CPU): %.1f GFLOP/s\n\n", cpu_mm);

  const std::filesystem::path tiny = "../shared/fixtures/sd-tiny";
  if (std::filesystem::exists(tiny)) {
    auto unet = atelier::sd::UNet::load((tiny / "unet").string());
    if (unet.is_ok()) {
      Timing t = time_unet(*unet, 32, 2, 20, torch::TensorOptions());
      std::printf(
          "tiny UNet, 32x32 latents, batch 2 (CFG): %.2f ms/step, %.3f GFLOP/step, "
          "%.1f GFLOP/s (%.1f%% of the matrix product)\n",
          t.ms, t.gflop, t.gflop / t.ms * 1000, 100 * t.gflop / t.ms * 1000 / cpu_mm);
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
    return 1;
  }
  std::printf("SD 1.5-shaped UNet (random weights) built in %.1f s\n", seconds_since(t_build));
  Timing t = time_unet(*big, latent, 2, steps, torch::TensorOptions());
  std::printf(
      "SD 1.5 UNet, %lldx%lld latents (%lld px), batch 2 (CFG), fp32 CPU: %.0f ms/step, "
      "%.1f GFLOP/step, %.1f GFLOP/s (%.1f%% of the matrix product); "
      "a 20-step image: %.1f s\n",
      static_cast<long long>(latent), static_cast<long long>(latent),
      static_cast<long long>(latent * 8), t.ms, t.gflop, t.gflop / t.ms * 1000,
      100 * t.gflop / t.ms * 1000 / cpu_mm, t.ms * 20 / 1000);

  if (torch::cuda::is_available()) {
    return gpu_section(torch::Device(torch::kCUDA, 0));
  }
  std::printf("GPU: not run (no CUDA device)\n");
  return 0;
}
