// cppn_cuda_check: the GPU half of the CPPN tests, as a plain program so it builds on a GPU
// machine that has libtorch but none of the server's other dependencies (tests/gpu/run.sh).
// Renders the same requests on the CPU and on CUDA and checks that the images agree, that CUDA
// is deterministic, that every lineage mode runs there, and reports render times.
// Exit status 0 when every check passes; 77 (skipped) without a CUDA device.
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "server/inference/cppn_generator.h"

using namespace atelier;
using namespace atelier::inference;

namespace {

class Quiet : public ProgressSink {
 public:
  void on_step(int, int, const Image*) override { ++steps; }
  int steps = 0;
};

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("[%s] %s\n", ok ? "PASS" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

GeneratedImage render(Generator& gen, GenerateRequest req) {
  Quiet sink;
  CancelToken cancel;
  auto out = gen.generate(req, sink, cancel);
  if (!out.is_ok()) {
    std::printf("[FAIL] generate: %s\n", out.status().to_string().c_str());
    std::exit(1);
  }
  return std::move((*out)[0]);
}

// Mean and max absolute channel difference.
std::pair<double, int> diff(const Image& a, const Image& b) {
  if (a.pixels.size() != b.pixels.size()) return {255, 255};
  double sum = 0;
  int worst = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    int d = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    sum += d;
    worst = std::max(worst, d);
  }
  return {sum / double(a.pixels.size()), worst};
}

double time_ms(Generator& gen, const GenerateRequest& req, int reps) {
  render(gen, req);  // warm-up
  double best = 1e18;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    render(gen, req);
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main() {
  if (!torch::cuda::is_available()) {
    std::printf("SKIP: no CUDA device visible to libtorch\n");
    return 77;
  }
  auto cpu = make_cppn_generator("cpu");
  auto gpu = make_cppn_generator("cuda:0");
  if (!cpu.is_ok() || !gpu.is_ok()) {
    std::printf("FAIL: cannot create generators: %s %s\n", cpu.status().to_string().c_str(),
                gpu.status().to_string().c_str());
    return 1;
  }
  GenerateRequest req;
  req.model = "cppn";
  req.prompt = "ocean sunset neon";
  req.width = 256;
  req.height = 192;
  req.steps = 4;
  req.guidance = 7;
  req.seed = 1234;
  req.count = 1;
  req.sampler = cppn_model_info().samplers.front();
  req.strength = 0.35;

  GeneratedImage a = render(**cpu, req);
  GeneratedImage b = render(**gpu, req);
  auto [mean, worst] = diff(a.image, b.image);
  std::printf("cpu vs cuda: mean abs diff %.4f, max %d (of 255)\n", mean, worst);
  check(mean < 0.5 && worst <= 16, "CUDA renders what the CPU renders (float rounding only)");
  GeneratedImage b2 = render(**gpu, req);
  check(b2.image.pixels == b.image.pixels, "CUDA is deterministic for the same request");
  check(a.lineage == b.lineage, "lineage does not depend on the device");

  for (Mode mode : {Mode::kVariation, Mode::kRemix, Mode::kUpscale}) {
    GenerateRequest child = req;
    child.mode = mode;
    child.prompt = "forest gold";
    child.parent = ParentImage{req.width, req.height, req.seed, req.prompt, "", a.lineage};
    if (mode == Mode::kUpscale) {
      child.width *= 2;
      child.height *= 2;
    }
    GeneratedImage c = render(**cpu, child);
    GeneratedImage g = render(**gpu, child);
    auto [m, w] = diff(c.image, g.image);
    check(m < 0.5 && w <= 16, std::string(mode_name(mode)) + " on CUDA matches the CPU (mean " +
                                  std::to_string(m) + ")");
  }

  for (int size : {512, 1024, 2048}) {
    GenerateRequest big = req;
    big.width = big.height = size;
    big.steps = 1;
    double g = time_ms(**gpu, big, 5);
    double c = size <= 1024 ? time_ms(**cpu, big, 2) : -1;
    std::printf("render %dx%d: cuda %.2f ms, cpu %.2f ms%s\n", size, size, g, c,
                c > 0 ? (" (" + std::to_string(c / g) + "x)").c_str() : "");
  }
  GenerateRequest def = req;
  def.width = def.height = 512;
  def.steps = cppn_model_info().steps.default_value;
  std::printf("generate 512x512 at default steps (%d): cuda %.2f ms\n", def.steps,
              time_ms(**gpu, def, 5));
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "ALL PASSED", failures);
  return failures ? 1 : 0;
}
