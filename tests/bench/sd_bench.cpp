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

namespace {

using Clock = std::chrono::steady_clock;
using atelier::sd::flop_counter;
namespace fs = std::filesystem;
namespace st = atelier::safetensors;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Resident and peak resident memory of this process, and the machine's 1-minute load average
// (other processes on a shared machine slow every figure).
std::string memory_line() {
  std::ifstream in("/proc/self/status");
  std::string line;
  double rss = 0, hwm = 0;  // kB
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6);
  }
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  char buf[128];
  std::snprintf(buf, sizeof buf, "resident %.1f GB, peak %.1f GB; load average %.1f", rss / 1e6,
                hwm / 1e6, load);
  return buf;
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

// ---------------------------------------------------------------------------------- CPU: lora

// A float tensor as safetensors data of `dtype` (F16 or F32).
st::TensorData tensor_data(const std::string& name, const torch::Tensor& t, st::DType dtype) {
  torch::Tensor c =
      t.to(torch::kCPU, dtype == st::DType::kF16 ? torch::kHalf : torch::kFloat32).contiguous();
  st::TensorData d{name, dtype, c.sizes().vec(), {}};
  d.bytes.assign(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return d;
}

// The weights kohya's default SD 1.5 LoRA trains: every attention's to_q/to_k/to_v/to_out.0,
// the transformers' proj_in/proj_out and feed-forward layers (16 transformers x 12 = 192).
bool lora_target(const std::string& name) {
  if (name.find(".attentions.") == std::string::npos || !name.ends_with(".weight")) return false;
  for (const char* part : {".to_q.", ".to_k.", ".to_v.", ".to_out.0.", ".proj_in.", ".proj_out.",
                           ".ff.net.0.proj.", ".ff.net.2."}) {
    if (name.find(part) != std::string::npos) return true;
  }
  return false;
}

// A kohya LoRA file (fp16, rank `rank`, alpha rank/2) for every lora_target of `params`.
std::string make_lora_file(const std::map<std::string, torch::Tensor>& params, int64_t rank,
                           uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<st::TensorData> out;
  for (const auto& [name, w] : params) {
    if (!lora_target(name)) continue;
    std::string module = "lora_unet_" + name.substr(0, name.size() - std::strlen(".weight"));
    std::replace(module.begin(), module.end(), '.', '_');
    std::vector<int64_t> down{rank, w.size(1)}, up{w.size(0), rank};
    if (w.dim() == 4) {  // SD 1.5's 1x1 proj_in/proj_out convolutions
      down.insert(down.end(), {1, 1});
      up.insert(up.end(), {1, 1});
    }
    out.push_back(
        tensor_data(module + ".lora_down.weight", torch::randn(down, gen) * 0.02, st::DType::kF16));
    out.push_back(
        tensor_data(module + ".lora_up.weight", torch::randn(up, gen) * 0.01, st::DType::kF16));
    out.push_back(tensor_data(module + ".alpha", torch::tensor(rank / 2.0f), st::DType::kF16));
  }
  auto bytes = st::serialize(out, {{"ss_network_dim", std::to_string(rank)}});
  if (!bytes.is_ok()) {
    std::printf("LoRA: %s\n", bytes.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(bytes).value();
}

// `params` written as one fp32 safetensors file, a tensor at a time (no copy of the whole model
// in memory), as diffusers' diffusion_pytorch_model.safetensors.
bool write_fp32_file(const fs::path& path, const std::map<std::string, torch::Tensor>& params) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (const auto& [name, t] : params) {
    const uint64_t size = static_cast<uint64_t>(t.numel()) * 4;
    header += ",\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[";
    for (int64_t i = 0; i < t.dim(); ++i) header += (i ? "," : "") + std::to_string(t.size(i));
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + size) + "]}";
    offset += size;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();  // little-endian on every machine this runs on
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& [name, t] : params) {
    torch::Tensor c = t.to(torch::kFloat32).contiguous();
    out.write(static_cast<const char*>(c.data_ptr()), c.numel() * 4);
  }
  return static_cast<bool>(out.flush());
}

// Weights whose bits differ from those stored in `file` (written by write_fp32_file from them).
int count_changed(const std::map<std::string, torch::Tensor>& params, const st::File& file) {
  int n = 0;
  for (const auto& [name, t] : params) {
    const st::TensorInfo* info = file.find(name);
    auto bytes = file.bytes(*info);
    torch::Tensor c = t.contiguous();
    n += bytes.size() != static_cast<size_t>(c.numel() * 4) ||
                 std::memcmp(bytes.data(), c.data_ptr(), bytes.size()) != 0
             ? 1
             : 0;
  }
  return n;
}

int lora_section() {
  using atelier::Result;
  using atelier::sd::Lora;
  using atelier::sd::LoraPatcher;
  using atelier::sd::LoraUse;
  auto weights = atelier::sd::Weights::synthetic(1);
  auto unet = atelier::sd::UNet::build(sd15(), weights);
  if (!unet.is_ok()) {
    std::printf("SD 1.5 UNet: %s\n", unet.status().message().c_str());
    return 1;
  }
  const auto& params = weights.tensors();

  // The baseline: what a switch costs without the patcher, the UNet re-read from its file.
  const fs::path dir = fs::temp_directory_path() / "atelier_sd_bench_lora";
  fs::create_directories(dir);
  const fs::path file = dir / "diffusion_pytorch_model.safetensors";
  auto t0 = Clock::now();
  if (!write_fp32_file(file, params)) {
    std::printf("LoRA baseline: could not write %s\n", file.c_str());
    return 1;
  }
  std::printf("SD 1.5 UNet written as fp32 safetensors (%.2f GB) in %.1f s\n",
              static_cast<double>(fs::file_size(file)) / 1e9, seconds_since(t0));

  // Two LoRAs as kohya writes them, parsed from their bytes.
  const int64_t rank = 32;
  std::vector<std::shared_ptr<const Lora>> loras;
  for (const char* label : {"A", "B"}) {
    const std::string bytes = make_lora_file(params, rank, loras.size() + 11);
    std::vector<double> parse_ms;
    std::optional<Lora> parsed;
    for (int i = 0; i < 3; ++i) {
      t0 = Clock::now();
      auto f = st::File::from_bytes(bytes);
      auto l = f.is_ok() ? Lora::parse(*f, label) : Result<Lora>(f.status());
      if (!l.is_ok()) {
        std::printf("LoRA %s: %s\n", label, l.status().to_string().c_str());
        return 1;
      }
      parse_ms.push_back(seconds_since(t0) * 1000);
      parsed = std::move(l).value();
    }
    std::printf("LoRA %s: %zu modules, rank %lld, %.1f MB fp16, parsed in %.0f ms (median of 3)\n",
                label, parsed->modules().size(), static_cast<long long>(rank),
                static_cast<double>(bytes.size()) / 1e6, median(parse_ms));
    loras.push_back(std::make_shared<const Lora>(std::move(*parsed)));
  }
  t0 = Clock::now();
  auto patcher = LoraPatcher::create(unet->config(), {{"unet", params}});
  if (!patcher.is_ok()) {
    std::printf("LoraPatcher: %s\n", patcher.status().to_string().c_str());
    return 1;
  }
  std::printf("LoraPatcher::create: %.0f ms\n", seconds_since(t0) * 1000);

  // Interleaved rounds (a reload, then two cycles none->A->B->none), so that a change in the
  // machine's load hits both sides alike.
  const std::vector<LoraUse> a{{loras[0], 1.0}}, b{{loras[1], 1.0}}, none;
  std::vector<double> to_a, a_to_b, b_to_none, reload_ms, read_ms;
  const int rounds = 3;
  for (int round = 0; round < rounds; ++round) {
    {
      t0 = Clock::now();
      auto w = atelier::sd::Weights::load(file.string());
      if (!w.is_ok()) {
        std::printf("reload: %s\n", w.status().to_string().c_str());
        return 1;
      }
      read_ms.push_back(seconds_since(t0) * 1000);
      auto u = atelier::sd::UNet::build(sd15(), *w);
      if (!u.is_ok()) {
        std::printf("reload: %s\n", u.status().to_string().c_str());
        return 1;
      }
      reload_ms.push_back(seconds_since(t0) * 1000);
    }
    for (int cycle = 0; cycle < 2; ++cycle) {
      const std::pair<const std::vector<LoraUse>*, std::vector<double>*> order[] = {
          {&a, &to_a}, {&b, &a_to_b}, {&none, &b_to_none}};
      for (auto [set, out] : order) {
        t0 = Clock::now();
        auto r = patcher->apply(*set);
        out->push_back(seconds_since(t0) * 1000);
        if (!r.is_ok()) {
          std::printf("apply: %s\n", r.status().to_string().c_str());
          return 1;
        }
      }
    }
  }
  const double reload = median(reload_ms);
  const double worst = std::max({median(to_a), median(a_to_b), median(b_to_none)});
  std::printf(
      "reload the SD 1.5 UNet from disk (Weights::load fp32 + UNet::build), median of %d: "
      "%.0f ms (of which reading %.0f ms); the file was just written, so it comes from the page "
      "cache: a lower bound for a disk read\n",
      rounds, reload, median(read_ms));
  std::printf(
      "LoRA switch on the SD 1.5 UNet (fp32 CPU, %zu weights patched, median of %zu): none->A "
      "%.0f ms, A->B %.0f ms, B->none %.0f ms; reloading the UNet instead: %.0f ms (%.1fx the "
      "slowest switch)\n",
      loras[0]->modules().size(), to_a.size(), median(to_a), median(a_to_b), median(b_to_none),
      reload, reload / worst);

  // Exact restoring: A changes exactly its weights, A->none leaves every weight as it was.
  auto ref = st::File::open(file.string());
  if (!ref.is_ok()) {
    std::printf("reference: %s\n", ref.status().to_string().c_str());
    return 1;
  }
  (void)patcher->apply(a);
  const int changed_a = count_changed(params, *ref);
  (void)patcher->apply(none);
  const int changed_none = count_changed(params, *ref);
  const bool ok = changed_a == static_cast<int>(loras[0]->modules().size()) && changed_none == 0;
  std::printf(
      "with A applied %d of %zu weights differ from the file; after A->none %d differ: %s\n",
      changed_a, params.size(), changed_none,
      ok ? "every weight equals the original bit for bit" : "RESTORE CHECK FAILED");
  std::printf("(%s)\n\n", memory_line().c_str());
  fs::remove_all(dir);
  return ok ? 0 : 1;
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
  if (want("lora")) rc |= lora_section();
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
