// cppn_bench [device] [repeats] [threads]: how fast the built-in CPPN model renders, next to how
// fast this machine multiplies matrices, measured in the same run (shared machines drift by tens of
// percent, so only the ratio is comparable between runs).
//
//   device   torch device string, default "cpu" ("cuda", "cuda:0", ...)
//   repeats  timed repetitions per figure, default 7 (after one untimed warm-up); medians reported
//   threads  torch intra-op threads, default: all hardware threads (as the worker pool sets them;
//            Debian's OpenMP libtorch otherwise starts with 1 on some machines)
//
// Not a CTest test. See tests/bench/README.md.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "server/inference/cppn_generator.h"
#include "server/inference/cppn_style.h"

namespace {

using atelier::inference::CancelToken;
using atelier::inference::GenerateRequest;
using atelier::inference::Image;
using atelier::inference::ProgressSink;

class Sink : public ProgressSink {
 public:
  explicit Sink(bool previews) : previews_(previews) {}
  void on_step(int, int, const Image*) override {}
  bool wants_preview() const override { return previews_; }

 private:
  bool previews_;
};

struct Timing {
  double median_ms;
  double best_ms;
};

Timing time_it(int repeats, const std::function<void()>& fn) {
  fn();  // warm-up: allocator, BLAS thread pool, CUDA context
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string device = argc > 1 ? argv[1] : "cpu";
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 7;
  const int threads = argc > 3 ? std::max(1, std::atoi(argv[3]))
                               : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  c10::InferenceMode inference_mode;

  auto made = atelier::inference::make_cppn_generator(device);
  if (!made.is_ok()) {
    std::fprintf(stderr, "cppn_bench: %s\n", made.status().to_string().c_str());
    return 1;
  }
  auto& generator = *made.value();
  const at::Device dev(device);
  auto sync = [&] {
    if (dev.is_cuda()) torch::cuda::synchronize();
  };
  std::printf("device: %s, torch %s threads: %d\n", device.c_str(), TORCH_VERSION,
              at::get_num_threads());

  // Machine reference: a square float32 matrix product.
  const int64_t n = 1024;
  const at::Tensor a = at::linspace(-1, 1, n * n, at::TensorOptions().device(dev)).view({n, n});
  const at::Tensor b = a.t().contiguous();
  at::Tensor c = at::empty({n, n}, a.options());
  const Timing mm = time_it(repeats, [&] {
    at::mm_out(c, a, b);
    sync();
  });
  const double mm_gflops = 2.0 * n * n * n / (mm.median_ms * 1e6);
  std::printf("matmul 1024x1024 f32:        median %8.2f ms  best %8.2f ms  %8.1f GFLOP/s\n",
              mm.median_ms, mm.best_ms, mm_gflops);

  GenerateRequest request;
  request.model = "cppn";
  request.prompt = "a lighthouse on a cliff, ocean waves";
  request.guidance = 7;
  request.seed = 1234;
  request.count = 1;
  request.sampler = "smooth";
  auto generate = [&](int width, int height, int steps, bool previews) {
    request.width = width;
    request.height = height;
    request.steps = steps;
    Sink sink(previews);
    CancelToken cancel;
    auto out = generator.generate(request, sink, cancel);
    if (!out.is_ok()) {
      std::fprintf(stderr, "cppn_bench: %s\n", out.status().to_string().c_str());
      std::exit(1);
    }
    return std::move(out).value();
  };

  const auto state = atelier::inference::cppn::parse_lineage(generate(64, 64, 1, false)[0].lineage);
  const int64_t macs = atelier::inference::cppn::multiply_adds_per_pixel(state->network.structure);
  std::printf("network: %zu activation layers x %d units, %lld multiply-adds/pixel\n",
              state->network.structure.layers.size(), state->network.structure.width,
              static_cast<long long>(macs));

  double render_512_ms = 0;
  for (int side : {512, 1024}) {
    // steps=1 without previews is exactly one full-resolution render plus the byte copy.
    const Timing t = time_it(repeats, [&] { generate(side, side, 1, false); });
    const double gflops = 2.0 * macs * side * side / (t.median_ms * 1e6);
    std::printf(
        "render %4dx%-4d (steps 1):    median %8.2f ms  best %8.2f ms  %8.1f GFLOP/s  "
        "%.2f of matmul\n",
        side, side, t.median_ms, t.best_ms, gflops, gflops / mm_gflops);
    if (side == 512) render_512_ms = t.median_ms;
  }
  const int steps = atelier::inference::cppn_model_info().steps.default_value;
  for (bool previews : {false, true}) {
    const Timing t = time_it(repeats, [&] { generate(512, 512, steps, previews); });
    std::printf("generate 512x512 steps %d %-11s median %8.2f ms  best %8.2f ms\n", steps,
                previews ? "(previews):" : "(no prev.):", t.median_ms, t.best_ms);
  }
  std::printf("goal: render 512x512 < 150 ms: %s (%.1f ms)\n",
              render_512_ms < 150 ? "PASS" : "BELOW GOAL", render_512_ms);
  return 0;
}
