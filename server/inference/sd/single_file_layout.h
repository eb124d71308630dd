// Internal to single_file.cpp and single_file_layout.cpp: each family's components (prefix,
// config, kind of name map) and the plan that pairs every tensor a component build takes with
// its source in a checkpoint's header, with the problems found.
// Costs: one meta-device build per component (milliseconds). Threads: no shared state.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/checkpoint_keys.h"
#include "server/inference/sd/single_file.h"

namespace atelier::sd::layout {

inline constexpr const char* kUnetPrefix = "model.diffusion_model.";
inline constexpr const char* kVaePrefix = "first_stage_model.";
inline constexpr const char* kSd1Clip = "cond_stage_model.transformer.";
inline constexpr const char* kSd2OpenClip = "cond_stage_model.model.";
inline constexpr const char* kSdxlClip = "conditioner.embedders.0.transformer.";
inline constexpr const char* kSdxlOpenClip = "conditioner.embedders.1.model.";

inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

enum class Kind { kUnet, kVae, kClip, kOpenClip };

// One component of a family's checkpoint: where its tensors live and which config builds it.
struct Component {
  const char* label;
  Kind kind;
  std::string prefix;
  std::string ModelConfigs::*config;
  Weights SingleFileWeights::*weights;  // null for text_encoder_2 (an optional)
};
std::vector<Component> components(Family f);

// How one diffusers tensor is read: from `source` (the full name), whole, a third of a fused
// q/k/v tensor, or transposed, then shaped as `shape`.
struct Entry {
  std::string target, source;
  std::vector<int64_t> shape;
  int part = -1;
  bool transposed = false;
  size_t component = 0;  // index into components(family)
};

struct Plan {
  std::vector<Entry> entries;
  std::vector<std::string> problems;
};
Plan plan(const TensorShapes& tensors, Family family, const ModelConfigs& configs);

// One error listing the first problems (as Weights::check words them); OK when none.
Status problems_status(const std::string& origin, const std::vector<std::string>& all);

}  // namespace atelier::sd::layout
