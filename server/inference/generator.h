// Generator: the one interface every image model implements (the built-in CPPN, the `null`
// test model, Stable Diffusion in sd/sd_generator.h). Request in, images out; progress reported
// per step and a cancel token checked between steps.
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
  kInpaint,    // the parent with the mask's white part regenerated (edit.h)
  kOutpaint,   // the parent on a larger canvas, the new border generated (edit.h)
};
// "txt2img" | "variation" | "remix" | "upscale" | "inpaint" | "outpaint"
std::string_view mode_name(Mode mode);
std::optional<Mode> parse_mode(std::string_view name);
// Inpaint and outpaint: the modes that take a mask and composite the result over the parent.
inline bool is_edit(Mode mode) {
  return mode == Mode::kInpaint || mode == Mode::kOutpaint;
}

// Where an inpaint works (A1111's "Inpaint area"): the whole image at the job's size, or only
// a crop around the mask (with padding) brought to the model's native size and pasted back.
enum class InpaintArea { kWhole, kMasked };
std::string_view inpaint_area_name(InpaintArea area);  // "whole" | "masked"
std::optional<InpaintArea> parse_inpaint_area(std::string_view name);

// Outpaint: pixels added on each side of the parent.
struct Extend {
  int left = 0, right = 0, top = 0, bottom = 0;
  bool operator==(const Extend&) const = default;
};

// What an inpaint or outpaint job asks beyond the lineage fields (stored with the job).
struct EditSpec {
  int mask_blur = 4;  // Gaussian blur of the mask, pixels (A1111's default); 0: hard edge
  InpaintArea area = InpaintArea::kWhole;
  Extend extend;  // outpaint only (all 0 for inpaint)
  bool operator==(const EditSpec&) const = default;
};

// The prepared input of a generator's inpaint (edit.h builds it from the parent, the mask and
// the EditSpec; generators never see the parent file in this mode): `image` is RGB at the
// request's width x height, `mask` the same size, 0 = keep, 255 = regenerate, binary (what the
// model should regenerate; the soft, blurred edge is edit.h's compositing, not the model's).
struct InpaintInput {
  Image image;
  image::Mask mask;
};

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

// A LoRA file the server offers (`--loras-dir`), as found at start-up.
struct LoraInfo {
  std::string name;    // the file name without ".safetensors"
  std::string family;  // the model family it was trained for: "sd1" | "sdxl"
  std::string hash;    // sha256 of the file, 64 lowercase hex
  bool available = true;
  std::string reason;  // why not, when unavailable
};

// A LoRA a job applies, with its strength (A1111's `<lora:name:weight>`).
struct LoraRef {
  std::string name;
  double weight = 1.0;
  bool operator==(const LoraRef&) const = default;
};

// SDXL's size conditioning, in pixels: what the model is told about the image it makes.
struct SizeConditioning {
  int original_width = 0, original_height = 0;
  int target_width = 0, target_height = 0;
  int crop_top = 0, crop_left = 0;
  bool operator==(const SizeConditioning&) const = default;
};

struct ModelInfo {
  std::string id;           // "cppn", "null"
  std::string kind;         // "builtin" | "test" | ...
  std::string description;  // one line, honest about what the prompt does
  // Stable Diffusion models: the family ("sd1" | "sd2" | "sdxl"; empty for others), the
  // sha256 of the file (a single-file checkpoint) or of the UNet weights (a folder), whether it
  // can be used and why not, whether jobs may set SizeConditioning, and the LoRAs that fit.
  std::string family;
  std::string hash;
  bool available = true;
  std::string unavailable_reason;
  bool size_conditioning = false;
  int max_loras = 0;  // 0: the model takes no LoRAs
  std::vector<std::string> loras;
  IntParam width;
  IntParam height;
  IntParam steps;
  IntParam count;  // images per job
  RealParam guidance;
  RealParam strength;                 // variation / remix strength
  std::vector<std::string> samplers;  // the first is the default
  std::vector<int> upscale_factors;   // e.g. {2, 4}; empty: no upscale mode
  std::vector<Mode> modes;            // the lineage modes it supports (txt2img always)
  // Whether its UNet takes the mask and masked image as input (a 9-channel inpainting model);
  // such a model can only inpaint.
  bool inpainting_model = false;
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
  // An upload (no generator made it): `lineage` is empty and the prompts are "".
  bool uploaded = false;
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
  // kInpaint / kOutpaint as the job asked (the worker hands such a request to edit.h, which
  // reads the files, prepares `inpaint` and calls the generator with mode kInpaint).
  std::optional<EditSpec> edit;
  std::string mask_png_path;  // kInpaint: the mask image's file
  // What a generator's kInpaint works on (set by edit.h; see InpaintInput).
  std::optional<InpaintInput> inpaint;
  std::vector<LoraRef> loras;  // at most ModelInfo::max_loras, each in the registry
  std::optional<SizeConditioning> size_conditioning;  // only where the model takes it
};

struct GeneratedImage {
  Image image;  // RGB, request.width x request.height
  int64_t seed = 0;
  std::string lineage;  // opaque; handed back as ParentImage::lineage for children
  // Worth telling the submitter, not worth failing for (e.g. "LoRA x: 3 of 40 keys matched
  // no layer"); the job keeps them.
  std::vector<std::string> warnings;
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
