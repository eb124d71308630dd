// Weights of one model component (a folder's `*.safetensors`) as torch tensors by name, with
// every name the architecture needs checked: missing ones and ones nobody asked for are reported
// by name, in one message, before anything runs.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/model_files.h"

namespace atelier::sd {

class Weights {
 public:
  // Reads `path`, converting F32, F16 and BF16 to `dtype` (fp32 on the CPU).
  static Result<Weights> load(const std::string& path, torch::Dtype dtype = torch::kFloat32,
                              torch::Device device = torch::kCPU);

  // Tensors already at hand under their final names (a single-file checkpoint's component,
  // mapped to diffusers names); `origin` stands for the path in check()'s messages.
  static Weights from_tensors(std::string origin, std::map<std::string, torch::Tensor> tensors);

  // Random weights for any name asked for (benchmarks of full-size architectures without
  // their files): take() returns a fresh N(0, 0.02) tensor of the requested shape and keeps it
  // (tensors() then holds everything a build took, ready to be written as a model file). On
  // the meta device take() allocates nothing: shapes and parameter counts only.
  static Weights synthetic(uint64_t seed, torch::Dtype dtype = torch::kFloat32,
                           torch::Device device = torch::kCPU);

  // The tensor `name` with the given shape. Records a problem (and returns an empty tensor)
  // when it is missing or shaped otherwise; check() reports all of them.
  torch::Tensor take(const std::string& name, std::vector<int64_t> shape);
  // OK once every take() succeeded and every tensor in the file was taken (or ignored by
  // prefix); otherwise one error listing each missing, misshapen and unexpected name.
  Status check(const std::vector<std::string>& ignored_prefixes = {}) const;
  const std::string& path() const { return path_; }
  // Every tensor by name: the file's, or those a synthetic source has handed out.
  const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }
  int64_t parameter_count() const;

 private:
  std::string path_;
  std::map<std::string, torch::Tensor> tensors_;
  std::set<std::string> taken_;
  std::vector<std::string> problems_;
  bool synthetic_ = false;
  torch::Dtype dtype_ = torch::kFloat32;
  torch::Device device_ = torch::kCPU;
  std::optional<torch::Generator> gen_;
};

// One component of a model folder: dir/config.json read by `parse` (first, so that a bad
// config is refused before the weights are read), dir/<weights_file> read in `dtype` on
// `device`, both handed to Model::build. `parameters`, when given, receives the built model's
// weights by name (the same tensors the model holds: what LoRA patches in place).
template <class Model, class Parse>
Result<Model> load_component(const std::string& dir, const std::string& weights_file, Parse parse,
                             torch::Dtype dtype, torch::Device device,
                             std::map<std::string, torch::Tensor>* parameters = nullptr) {
  auto text = read_model_file(dir + "/config.json");
  if (!text.is_ok()) return text.status();
  auto config = parse(*text);
  if (!config.is_ok()) return config.status();
  auto weights = Weights::load(dir + "/" + weights_file, dtype, device);
  if (!weights.is_ok()) return weights.status();
  auto model = Model::build(*config, *weights);
  if (model.is_ok() && parameters) *parameters = weights->tensors();
  return model;
}

}  // namespace atelier::sd
