#include "server/inference/sd/pipeline_cache.h"

#include <filesystem>

#include "common/logging.h"
#include "common/safetensors.h"

namespace atelier::sd {

Result<int64_t> parameter_bytes(const std::string& dir, torch::Dtype dtype) {
  namespace fs = std::filesystem;
  const int64_t element = torch::elementSize(dtype);
  int64_t total = 0;
  for (const char* part : {"text_encoder", "unet", "vae"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(dir) / part, ec)) {
      if (e.path().extension() != ".safetensors") continue;
      auto file = safetensors::File::open(e.path().string());
      if (!file.is_ok()) return file.status();
      for (const auto& t : file->tensors()) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        total += n * element;
      }
    }
  }
  return total;
}

PipelineCache::Loader PipelineCache::default_loader() {
  return [](const std::string& dir, torch::Dtype dtype, torch::Device device) {
    return StableDiffusion::load(dir, dtype, device);
  };
}

PipelineCache::PipelineCache(int64_t budget_bytes, Loader loader)
    : budget_(budget_bytes), loader_(std::move(loader)) {}

Result<const StableDiffusion*> PipelineCache::get(const std::string& dir, torch::Dtype dtype,
                                                  torch::Device device) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->dir == dir && it->dtype == dtype && it->device == device) {
      entries_.splice(entries_.begin(), entries_, it);
      return &entries_.front().pipeline;
    }
  }
  auto bytes = parameter_bytes(dir, dtype);
  if (!bytes.is_ok()) return bytes.status();
  while (!entries_.empty() && used_ + *bytes > budget_) {
    log::info("sd: unloading {} from {} (cache budget {} MB)", entries_.back().dir,
              entries_.back().device.str(), budget_ >> 20);
    used_ -= entries_.back().bytes;
    entries_.pop_back();
  }
  auto p = loader_(dir, dtype, device);
  if (!p.is_ok()) return p.status();
  entries_.push_front(Entry{dir, dtype, device, std::move(*p), *bytes});
  used_ += *bytes;
  return &entries_.front().pipeline;
}

std::vector<std::string> PipelineCache::loaded() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.dir);
  return out;
}

}  // namespace atelier::sd
