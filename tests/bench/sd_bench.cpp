// sd_bench: Stable Diffusion on libtorch. Per UNet step and per image, for the tiny fixture
// pipeline and for an SD 1.5-shaped UNet with random weights at a small latent size, with the
// achieved GFLOP/s (counted by the layers) next to this machine's matrix-product GFLOP/s measured
// in the same run. On demand:
//
//   build/release/tests/bench/sd_bench [latent=32] [steps=3]
//
// With CUDA (the device tool): also fp16 on the GPU at 64x64 latents (512x512 images).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "server/inference/sd/layers.h"
#include "server/inference/sd/pipeline.h"
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

}  // namespace

int main(int argc, char** argv) {
  const int64_t latent = argc > 1 ? std::atoll(argv[1]) : 32;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 3;
  torch::NoGradGuard ng;
  // As the server sets it by default (--torch-threads 0): one thread per core.
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const torch::Device cpu(torch::kCPU);
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
    const torch::Device gpu(torch::kCUDA, 0);
    const double gpu_mm = matmul_gflops(gpu, torch::kHalf);
    auto w16 = atelier::sd::Weights::synthetic(1, torch::kHalf, gpu);
    auto g = atelier::sd::UNet::build(sd15(), w16);
    if (g.is_ok()) {
      Timing tg = time_unet(*g, 64, 2, 20, torch::TensorOptions().device(gpu).dtype(torch::kHalf));
      std::printf(
          "GPU: matrix product fp16 %.0f GFLOP/s; SD 1.5 UNet 64x64 latents (512 px), "
          "batch 2, fp16: %.1f ms/step (%.1f it/s), %.0f GFLOP/s (%.0f%%); "
          "20 steps: %.2f images/s\n",
          gpu_mm, tg.ms, 1000 / tg.ms, tg.gflop / tg.ms * 1000,
          100 * tg.gflop / tg.ms * 1000 / gpu_mm, 1000 / (tg.ms * 20));
    }
  } else {
    std::printf("GPU: not run (no CUDA device)\n");
  }
  return 0;
}
