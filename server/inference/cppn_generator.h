// The built-in `cppn` model: a compositional pattern-producing network (Stanley 2007), i.e. a
// random-weight MLP evaluated at every pixel over (x, y, r = sqrt(x^2 + y^2)) and a latent
// vector, rendered with libtorch on the CPU or a CUDA device. It needs no downloaded weights.
//
// What a request controls (see cppn_style.h for the details):
//  - seed: the network's weights and latent vector, i.e. the picture's layout (image i of a job
//    uses seed + i);
//  - prompt: the colour palette (colour and mood words such as "red", "ocean", "neon" steer it)
//    and the network's structure (activation mix, depth, coordinate scale; from the prompt's
//    non-colour words). It does NOT draw what the prompt describes;
//  - negative_prompt: colour words in it push the palette away from that colour; other words
//    are ignored;
//  - guidance (1..20): how sharp the transitions between colour regions are, and saturation;
//    1 soft and muted, 7 bold, 20 poster-like;
//  - sampler: "smooth" (continuous palette, soft light) or "contour" (posterised palette bands
//    separated by thin dark iso-lines, like a relief map);
//  - steps: coarse-to-fine previews; the final image does not depend on it;
//  - variation: the parent's network and colours, its latent rotated toward a latent drawn from
//    the job's seed by `strength` (0 = the parent exactly, 1 = an unrelated latent); the
//    request's prompt, guidance and sampler are not used;
//  - remix: the parent's network (weights, structure, latent) with the request's prompt palette,
//    guidance and sampler; the seed and strength are not used, so a remix with the parent's own
//    prompt, guidance and sampler reproduces the parent;
//  - upscale: the parent re-rendered exactly at request.width x request.height, which must be the
//    parent's size times one of the upscale factors; prompt, seed and strength are not used.
//  - inpaint (edit.h prepares it), and variation / remix / upscale of an upload (no lineage to
//    follow): the request's own picture (as txt2img) blended over the starting pixels by
//    strength: (1 - strength) * start + strength * own, so 0 gives the start back and 1 the
//    CPPN picture. Such an image's lineage is that own picture's, so its cppn children follow
//    the CPPN picture, not the blend.
//
// Determinism: the same request gives the same pixels, bit for bit, on the same device (and,
// on the CPU, regardless of torch's thread count up to float rounding). Weights come from the
// model's own random stream, never torch's global generator.
//
// Threads: on the CPU a render splits its row tiles across torch's intra-op threads (configure
// them with at::set_num_threads), and generate() sets OpenBLAS (Debian's libtorch BLAS) to one
// thread for its duration, process-wide, restoring it afterwards: BLAS threads of their own
// oversubscribe the cores.
//
// No torch headers here: the worker pool and registry include this cheaply.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "server/inference/generator.h"

namespace atelier::inference {

// The model's declared parameters: id "cppn", kind "builtin".
const ModelInfo& cppn_model_info();

// A CPPN generator bound to one torch device: "cpu", "cuda", "cuda:0", ... Errors:
// kInvalidArgument for a malformed or unsupported device string (field "device"), kUnavailable
// when the device is a CUDA device this machine or this libtorch build does not have.
Result<std::unique_ptr<Generator>> make_cppn_generator(const std::string& device);

}  // namespace atelier::inference
