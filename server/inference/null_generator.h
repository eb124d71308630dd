// The `null` model: instant, deterministic images with no torch, for tests and benchmarks.
// Offered only when the configuration enables it (enable_null_model).
//
// Pixels depend only on (seed, prompt, size, mode, strength, parent): a smooth gradient whose
// colours come from a hash of those, so tests can check determinism and lineage without a real
// model. `step_delay` slows every step down, so tests can catch a job while it runs.
//
// Pixel modes (edit_canvas.h's start_pixels): kInpaint, and variation / remix / upscale of an
// upload, blend the gradient into the starting image: out = (1 - strength) * start + strength *
// gradient (an upscale of an upload uses strength / 4: the parent resized, lightly tinted). Their
// lineage is a fresh key, so their children work as children of any null image. Other children
// derive from the parent's lineage and refuse a parent the null model did not make.
#pragma once

#include <chrono>
#include <memory>

#include "server/inference/generator.h"
#include "server/inference/model_registry.h"

namespace atelier::inference {

const ModelInfo& null_model_info();
std::unique_ptr<Generator> make_null_generator(std::chrono::milliseconds step_delay = {});
ModelEntry null_model_entry(std::chrono::milliseconds step_delay = {});

}  // namespace atelier::inference
