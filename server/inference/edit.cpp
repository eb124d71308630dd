#include "server/inference/edit.h"

#include <algorithm>
#include <string>
#include <utility>

#include "server/inference/edit_canvas.h"

namespace atelier::inference {
namespace {

std::string size_text(int w, int h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

// The canvas an edit works on, the mask the model is given (full size, soft) and the
// compositing alpha.
struct Prepared {
  Image canvas;
  image::Mask mask;
};

Result<Prepared> prepare(const GenerateRequest& job) {
  Result<Image> parent_file = canvas::read_png_file(job.parent->png_path);
  if (!parent_file.is_ok()) return Status::unprocessable("the parent image cannot be read");
  Image parent = canvas::flatten_over_white(*parent_file);
  if (job.mode == Mode::kOutpaint) {
    const Extend& e = job.edit->extend;
    if (e.left < 0 || e.right < 0 || e.top < 0 || e.bottom < 0 ||
        e.left + e.right + e.top + e.bottom == 0) {
      return Status::invalid_argument("an outpaint extends at least one side", "extend");
    }
    canvas::OutpaintCanvas c = canvas::outpaint_canvas(parent, e, job.seed);
    return Prepared{std::move(c.image), std::move(c.mask)};
  }
  if (job.mask_png_path.empty()) return Status::unprocessable("the mask image cannot be read");
  Result<Image> mask_file = canvas::read_png_file(job.mask_png_path);
  if (!mask_file.is_ok()) return Status::unprocessable("the mask image cannot be read");
  ATELIER_ASSIGN_OR_RETURN(image::Mask mask, mask_from_image(*mask_file));
  if (mask.width != parent.width || mask.height != parent.height) {
    return Status::invalid_argument(
        "the mask is " + size_text(mask.width, mask.height) + ", the parent image " +
            size_text(parent.width, parent.height) + ": they must be the same size",
        "mask_image_id");
  }
  if (mask_is_empty(mask)) {
    return Status::invalid_argument("the mask is empty (nothing to regenerate)", "mask_image_id");
  }
  return Prepared{std::move(parent), std::move(mask)};
}

}  // namespace

Result<image::Mask> mask_from_image(const Image& img) {
  if (Status st = image::validate(img); !st.is_ok()) {
    return Status::invalid_argument("the mask is not a valid image: " + st.message(),
                                    "mask_image_id");
  }
  const size_t n = static_cast<size_t>(img.width) * img.height;
  image::Mask mask{img.width, img.height, std::vector<uint8_t>(n)};
  bool use_alpha = false;
  if (img.channels == 4) {
    for (size_t i = 0; i < n && !use_alpha; ++i) use_alpha = img.pixels[i * 4 + 3] != 255;
  }
  const size_t c = static_cast<size_t>(img.channels);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &img.pixels[i * c];
    // Luminance with PIL's convert("L") weights (ITU-R 601), rounded.
    mask.values[i] =
        use_alpha ? static_cast<uint8_t>(255 - p[3])
                  : static_cast<uint8_t>((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000);
  }
  return mask;
}

bool mask_is_empty(const image::Mask& mask) {
  return std::none_of(mask.values.begin(), mask.values.end(), [](uint8_t v) { return v >= 128; });
}

Result<std::vector<GeneratedImage>> run_edit(Generator& generator, const GenerateRequest& job,
                                             ProgressSink& progress, const CancelToken& cancel) {
  if (!is_edit(job.mode)) {
    return Status::invalid_argument("not an inpaint or outpaint request", "mode");
  }
  if (!job.parent || job.parent->png_path.empty()) {
    return Status::failed_precondition("the parent image no longer exists");
  }
  if (!job.edit) return Status::invalid_argument("the edit parameters are missing", "mode");
  ATELIER_ASSIGN_OR_RETURN(Prepared prep, prepare(job));
  if (prep.canvas.width != job.width || prep.canvas.height != job.height) {
    return Status::failed_precondition("the job's size " + size_text(job.width, job.height) +
                                       " does not match its canvas " +
                                       size_text(prep.canvas.width, prep.canvas.height));
  }
  const image::Mask alpha = canvas::blur_mask(prep.mask, job.edit->mask_blur);

  const ModelInfo& info = generator.info();
  canvas::Region region{0, 0, prep.canvas.width, prep.canvas.height};
  std::pair<int, int> working;
  if (job.edit->area == InpaintArea::kMasked) {
    working = {static_cast<int>(info.width.default_value),
               static_cast<int>(info.height.default_value)};
    region = canvas::masked_region(canvas::bounding_box(alpha), prep.canvas.width,
                                   prep.canvas.height, working.first, working.second);
  } else {
    working = canvas::fit_working_size(region.width, region.height, info.width, info.height);
  }
  const auto [ww, wh] = working;

  GenerateRequest request = job;
  request.mode = Mode::kInpaint;
  request.width = ww;
  request.height = wh;
  image::Mask model_mask = canvas::crop(prep.mask, region);
  image::Mask small = canvas::binarize(canvas::resize(model_mask, ww, wh));
  // A mask thinner than a working pixel would vanish at 128: keep whatever it touches.
  if (mask_is_empty(small)) small = canvas::binarize(canvas::resize(model_mask, ww, wh), 1);
  request.inpaint =
      InpaintInput{canvas::resize(canvas::crop(prep.canvas, region), ww, wh), std::move(small)};

  ATELIER_ASSIGN_OR_RETURN(std::vector<GeneratedImage> results,
                           generator.generate(request, progress, cancel));
  request.inpaint.reset();  // the working copies are no longer needed
  for (GeneratedImage& g : results) {
    if (g.image.width != ww || g.image.height != wh || g.image.channels != 3 ||
        !image::validate(g.image).is_ok()) {
      return Status::internal("the model returned a " + size_text(g.image.width, g.image.height) +
                              " image for a " + size_text(ww, wh) + " inpaint");
    }
    Image out = prep.canvas;
    canvas::composite(out, canvas::resize(g.image, region.width, region.height), region, alpha);
    g.image = std::move(out);
  }
  return results;
}

}  // namespace atelier::inference
