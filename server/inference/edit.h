// Inpaint and outpaint around any generator: the worker hands an edit job (mode kInpaint or
// kOutpaint) to run_edit(), which prepares the canvas and the mask, has the generator inpaint a
// working image once (mode kInpaint with GenerateRequest::inpaint set), and composites the
// results back over the parent. Generators only ever see a prepared RGB image and a binary mask
// at a size their ranges accept.
//
// Rules:
//  - A mask image is read as: its alpha inverted (255 - alpha, transparent = regenerate, as
//    OpenAI's edits API) when it has an alpha channel with any pixel not fully opaque, else its
//    luminance (white = regenerate). It is empty when no value reaches 128.
//  - The model gets the mask binarised at 128. The compositing uses the mask blurred as A1111
//    does (canvas::blur_mask, sigma = mask_blur) as alpha: out = canvas * (1 - a) + result * a.
//    So wherever the blurred mask is 0 (farther than canvas::blur_radius(mask_blur) from every
//    masked pixel) the output is the parent exactly; an outpaint's seam is softened into the
//    parent by up to that radius.
//  - Working region and size: kWhole works on the whole canvas at canvas::fit_working_size();
//    kMasked on canvas::masked_region() around the blurred mask's extent (so everything the
//    compositing touches lies inside it) at the model's default width x height.
//  - Outpaint: the canvas is canvas::outpaint_canvas() (seeded with the job's seed), the mask its
//    new area.
//
// Costs: a few copies of the canvas (RGB) and of its mask, the blur, two resizes per result, on
// top of the generator's own call. Threads: run_edit runs on the worker thread that owns the
// generator (same contract as Generator::generate); the rest is pure.
#pragma once

#include <vector>

#include "common/image.h"
#include "common/status.h"
#include "server/inference/generator.h"

namespace atelier::inference {

// The mask an image stands for (see the rules above). invalid_argument (field "mask_image_id")
// for an image that image::validate refuses.
Result<image::Mask> mask_from_image(const Image& img);
// True when no value is >= 128.
bool mask_is_empty(const image::Mask& mask);

// Runs an edit job: `job` is the request the worker built for a job of mode kInpaint or
// kOutpaint (parent with png_path, edit, and for inpaint mask_png_path; width x height the
// output size). Returns job.count images of job.width x job.height, RGB, with the seeds,
// lineage and warnings the generator gave. Errors: the generator's (cancellation included,
// passed through); unprocessable "the parent image cannot be read" / "the mask image cannot be
// read"; invalid_argument naming "mask_image_id" for a mask whose size differs from the parent's
// or that is empty; failed_precondition when the output size does not match the parent (and
// extension); internal when the generator returns images of the wrong size.
Result<std::vector<GeneratedImage>> run_edit(Generator& generator, const GenerateRequest& job,
                                             ProgressSink& progress, const CancelToken& cancel);

}  // namespace atelier::inference
