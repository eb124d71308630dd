// Shared by the Stable Diffusion component tests: reading reference tensors of the sd-tiny
// fixture and comparing against them.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "common/safetensors.h"

namespace atelier::sd::fixture {

inline const std::filesystem::path kTiny = "../shared/fixtures/sd-tiny";

// The tensor `name` of a reference file (I64 as kLong, floats as kFloat32); a failure if absent.
inline torch::Tensor fixture_tensor(const safetensors::File& f, const std::string& name) {
  const auto* t = f.find(name);
  if (!t) {
    ADD_FAILURE() << "no tensor " << name;
    return torch::zeros({1});
  }
  if (t->dtype == safetensors::DType::kI64) {
    auto bytes = f.bytes(*t);
    return torch::from_blob(const_cast<uint8_t*>(bytes.data()), t->shape, torch::kLong).clone();
  }
  auto v = *f.to_float(*t);
  return torch::from_blob(v.data(), t->shape, torch::kFloat32).clone();
}

// The largest absolute difference (in double); a failure, and a huge value, if shapes differ.
inline double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e9;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace atelier::sd::fixture
