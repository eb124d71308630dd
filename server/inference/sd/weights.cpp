#include "server/inference/sd/weights.h"

#include <ATen/CPUGeneratorImpl.h>

#include "common/safetensors.h"

namespace atelier::sd {

Result<Weights> Weights::load(const std::string& path, torch::Dtype dtype, torch::Device device) {
  auto file = safetensors::File::open(path);
  if (!file.is_ok()) return file.status();
  Weights w;
  w.path_ = path;
  for (const auto& t : file->tensors()) {
    auto values = file->to_float(t);
    if (!values.is_ok()) {
      return Status::invalid_argument(path + ": " + values.status().message());
    }
    torch::Tensor x = torch::from_blob(values->data(), t.shape, torch::kFloat32).clone();
    w.tensors_[t.name] = x.to(device, dtype);
  }
  return w;
}

Weights Weights::from_tensors(std::string origin, std::map<std::string, torch::Tensor> tensors) {
  Weights w;
  w.path_ = std::move(origin);
  w.tensors_ = std::move(tensors);
  return w;
}

Weights Weights::synthetic(uint64_t seed, torch::Dtype dtype, torch::Device device) {
  Weights w;
  w.path_ = "(synthetic)";
  w.synthetic_ = true;
  w.dtype_ = dtype;
  w.device_ = device;
  w.gen_ = at::detail::createCPUGenerator(seed);
  return w;
}

torch::Tensor Weights::take(const std::string& name, std::vector<int64_t> shape) {
  if (synthetic_) {
    taken_.insert(name);
    torch::Tensor t =
        device_.is_meta()
            ? torch::empty(shape, torch::TensorOptions().device(device_).dtype(dtype_))
            : (torch::randn(shape, *gen_) * 0.02).to(device_, dtype_);
    tensors_[name] = t;
    return t;
  }
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    problems_.push_back("missing tensor '" + name + "'");
    return {};
  }
  taken_.insert(name);
  if (it->second.sizes().vec() != shape) {
    std::string want = "[", got = "[";
    for (auto d : shape) want += std::to_string(d) + ",";
    for (auto d : it->second.sizes()) got += std::to_string(d) + ",";
    want.back() = ']';
    got.back() = ']';
    problems_.push_back("tensor '" + name + "' has shape " + got + ", expected " + want);
    return {};
  }
  return it->second;
}

int64_t Weights::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.numel();
  return n;
}

Status Weights::check(const std::vector<std::string>& ignored_prefixes) const {
  std::vector<std::string> all = problems_;
  for (const auto& [name, t] : tensors_) {
    if (taken_.count(name)) continue;
    bool ignored = false;
    for (const auto& p : ignored_prefixes) ignored = ignored || name.rfind(p, 0) == 0;
    if (!ignored) all.push_back("unexpected tensor '" + name + "'");
  }
  if (all.empty()) return Status::ok();
  std::string msg = path_ + ": ";
  const size_t shown = std::min<size_t>(all.size(), 12);
  for (size_t i = 0; i < shown; ++i) msg += (i ? "; " : "") + all[i];
  if (all.size() > shown) msg += "; and " + std::to_string(all.size() - shown) + " more";
  return Status::invalid_argument(msg);
}

}  // namespace atelier::sd
