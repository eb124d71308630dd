// Generator: the one interface every image model implements (the built-in CPPN, the `null`
// test model, later Stable Diffusion). Request in, images out; progress reported per step and a
// cancel token checked between steps.
//
// Threading contract: one Generator instance belongs to one worker thread (one device) for its
// whole life and is never called concurrently, so implementations keep per-device state (model
// weights, buffers) without locks. generate() may take seconds; it must call
// `progress.on_step()` after every step (that is what keeps the job's lease alive) and return
// StatusCode::kCancelled promptly once `cancel.cancelled()` is true.
//
// This header has no torch and no JSON on purpose: the job service and the REST layer include
// it, and torch-heavy implementations hide behind factories (see model_registry.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/image.h"
#include "common/status.h"

namespace atelier::inference {

using image::Image;

// How a job relates to an earlier image (its parent).
enum class Mode {
  kTxt2Img,    // from the prompt alone
  kVariation,  // close to the parent, perturbed by `strength`
  kRemix,      // the parent's structure with the new prompt
  kUpscale,    // the parent re-rendered larger
};
std::string_view mode_name(Mode mode);  // "txt2img" | "variation" | "remix" | "upscale"
std::optional<Mode> parse_mode(std::string_view name);

// A model's declared parameter ranges. The REST layer validates every request against them,
// so a generator only ever sees values inside these ranges.
struct IntParam {
  int64_t min = 0;
  int64_t max = 0;
  int64_t default_value = 0;
  int64_t multiple_of = 1;  // width/height must be a multiple of this
};
struct RealParam {
  double min = 0;
  double max = 0;
  double default_value = 0;
};

struct ModelInfo {
  std::string id;           // "cppn", "null"
  std::string kind;         // "builtin" | "test" | ...
  std::string description;  // one line, honest about what the prompt does
  IntParam width;
  IntParam height;
  IntParam steps;
  IntParam count;  // images per job
  RealParam guidance;
  RealParam strength;                 // variation / remix strength
  std::vector<std::string> samplers;  // the first is the default
  std::vector<int> upscale_factors;   // e.g. {2, 4}; empty: no upscale mode
  std::vector<Mode> modes;            // the lineage modes it supports (txt2img always)
};

// What a generator knows about the parent image in a lineage mode.
struct ParentImage {
  int width = 0;
  int height = 0;
  int64_t seed = 0;
  std::string prompt;
  std::string negative_prompt;
  // The generator's own serialized state for that image (GeneratedImage::lineage), so a child
  // can reproduce or perturb it exactly. Opaque to everyone else.
  std::string lineage;
  // The parent's PNG file, for models that start from its pixels (img2img). Read it on the
  // worker thread; it may have been deleted since.
  std::string png_path;
};

struct GenerateRequest {
  std::string model;
  std::string prompt;
  std::string negative_prompt;
  int width = 0;
  int height = 0;
  int steps = 0;
  double guidance = 0;
  int64_t seed = 0;  // image i of the job uses seed + i
  int count = 1;
  std::string sampler;
  Mode mode = Mode::kTxt2Img;
  double strength = 0;
  std::optional<ParentImage> parent;  // set exactly when mode != kTxt2Img
};

struct GeneratedImage {
  Image image;  // RGB, request.width x request.height
  int64_t seed = 0;
  std::string lineage;  // opaque; handed back as ParentImage::lineage for children
};

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // After each step (1-based `step` of `steps`). `preview` (may be null) is a small RGB image
  // of the work so far; only built when wants_preview() says someone is watching.
  virtual void on_step(int step, int steps, const Image* preview) = 0;
  virtual bool wants_preview() const { return false; }
};

class CancelToken {
 public:
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

class Generator {
 public:
  virtual ~Generator() = default;
  virtual const ModelInfo& info() const = 0;
  // `request.count` images, in seed order. Errors: kCancelled when cancelled; anything else
  // fails the job with the message shown to users.
  virtual Result<std::vector<GeneratedImage>> generate(const GenerateRequest& request,
                                                       ProgressSink& progress,
                                                       const CancelToken& cancel) = 0;
};

}  // namespace atelier::inference
