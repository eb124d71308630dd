// sd_bench's `lora` section; the contract is in sd_bench_lora.h.
#include "tests/bench/sd_bench_lora.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/safetensors.h"
#include "server/inference/sd/lora.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/weights.h"
#include "tests/bench/sd_bench_util.h"

namespace atelier::sd_bench {
namespace {

namespace fs = std::filesystem;
namespace st = atelier::safetensors;

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
  std::vector<st::TensorSpec> specs;
  for (const auto& [name, t] : params) specs.push_back({name, st::DType::kF32, t.sizes().vec()});
  auto header = st::serialize_header(specs, {{"format", "pt"}});
  if (!header.is_ok()) return false;
  std::ofstream out(path, std::ios::binary);
  out << *header;
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

}  // namespace

int lora_section() {
  using atelier::Result;
  using atelier::sd::Lora;
  using atelier::sd::LoraPatcher;
  using atelier::sd::LoraUse;
  auto weights = atelier::sd::Weights::synthetic(1);
  auto unet = atelier::sd::UNet::build(atelier::sd::UNetConfig{}, weights);
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
      auto u = atelier::sd::UNet::build(atelier::sd::UNetConfig{}, *w);
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

}  // namespace atelier::sd_bench
