#include "server/inference/sd/pipeline_cache.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/safetensors.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/single_file_pipeline.h"

namespace atelier::sd {

namespace {

namespace fs = std::filesystem;

int64_t elements(const safetensors::TensorInfo& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

bool vae_upcast(const fs::path& vae_dir) {
  auto text = read_model_file((vae_dir / "config.json").string());
  if (!text.is_ok()) return false;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_object() && j.value("force_upcast", false);
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  return buf;
}

}  // namespace

Result<int64_t> parameter_bytes(const std::string& source, torch::Dtype dtype) {
  const int64_t element = torch::elementSize(dtype);
  const int64_t f32 = torch::elementSize(torch::kFloat32);
  int64_t total = 0;
  std::error_code ec;
  if (!fs::is_directory(source, ec)) {
    // A single file: the components' tensors (EMA copies and the like are not loaded); SDXL's
    // VAE runs in float32.
    auto file = safetensors::File::open(source);
    if (!file.is_ok()) return file.status();
    bool xl = false;
    for (const auto& t : file->tensors()) xl |= t.name.rfind("conditioner.", 0) == 0;
    for (const auto& t : file->tensors()) {
      const bool vae = t.name.rfind("first_stage_model.", 0) == 0;
      if (vae || t.name.rfind("model.diffusion_model.", 0) == 0 ||
          t.name.rfind("cond_stage_model.", 0) == 0 || t.name.rfind("conditioner.", 0) == 0) {
        total += elements(t) * (vae && xl ? std::max(element, f32) : element);
      }
    }
    return total;
  }
  for (const char* part : {"text_encoder", "text_encoder_2", "unet", "vae"}) {
    const fs::path dir = fs::path(source) / part;
    const int64_t size =
        std::string_view(part) == "vae" && vae_upcast(dir) ? std::max(element, f32) : element;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() != ".safetensors") continue;
      auto file = safetensors::File::open(e.path().string());
      if (!file.is_ok()) return file.status();
      for (const auto& t : file->tensors()) total += elements(t) * size;
    }
  }
  return total;
}

PipelineCache::Loader PipelineCache::default_loader(std::string clip_vocab) {
  return [clip_vocab](const std::string& source, torch::Dtype dtype, torch::Device device) {
    std::error_code ec;
    if (fs::is_directory(source, ec)) return StableDiffusion::load(source, dtype, device);
    return load_single_file_pipeline(source, dtype, device, clip_vocab);
  };
}

PipelineCache::PipelineCache(int64_t budget_bytes, Loader loader)
    : budget_(budget_bytes), loader_(std::move(loader)) {}

Result<CachedPipeline*> PipelineCache::get(const std::string& source, torch::Dtype dtype,
                                           torch::Device device) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->source == source && it->dtype == dtype && it->device == device) {
      entries_.splice(entries_.begin(), entries_, it);
      return &entries_.front().cached;
    }
  }
  auto bytes = parameter_bytes(source, dtype);
  if (!bytes.is_ok()) return bytes.status();
  if (*bytes > budget_) {
    return Status::resource_exhausted("the model needs " + gib(*bytes) + " and a worker may hold " +
                                      gib(budget_) + " (--sd-cache-mb)");
  }
  while (!entries_.empty() && used_ + *bytes > budget_) {
    log::info("sd: unloading {} from {} (cache budget {} MB)", entries_.back().source,
              entries_.back().device.str(), budget_ >> 20);
    used_ -= entries_.back().bytes;
    entries_.pop_back();
  }
  Result<StableDiffusion> p = Status::internal("not loaded");
  try {
    p = loader_(source, dtype, device);
  } catch (const std::exception& e) {
    // Out of memory (host or device) while reading the weights: the job fails, the worker
    // lives on with what it had. torch's messages carry a backtrace after the first line.
    const std::string what = e.what();
    return Status::resource_exhausted("loading the model failed (" + gib(*bytes) +
                                      " of weights): " + what.substr(0, what.find('\n')));
  }
  if (!p.is_ok()) return p.status();
  entries_.push_front(
      Entry{source, dtype, device, CachedPipeline{std::move(*p), std::nullopt}, *bytes});
  used_ += *bytes;
  return &entries_.front().cached;
}

std::vector<std::string> PipelineCache::loaded() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.source);
  return out;
}

}  // namespace atelier::sd
