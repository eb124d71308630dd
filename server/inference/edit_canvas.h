// The pixel work behind inpaint and outpaint (edit.h) and behind the pixel-based modes of the
// built-in models: resizing, mask blur and binarisation, the working region and size a model
// is given, the outpaint canvas, compositing, strength blends and the starting pixels of a
// generator's pixel-based request. Pure functions over image::Image / image::Mask; no torch, no
// files except read_png_file() and start_pixels().
//
// Rules: every function takes valid images (image::validate OK, masks with values.size() ==
// width * height) and sizes >= 1; they never read outside their inputs. Costs: linear in the
// pixels touched; the mask blur is linear in the pixels within its radius of an edge of the mask
// times the radius. Memory: a few copies of the largest image involved. Threads: no shared
// state, callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "common/image.h"
#include "common/status.h"
#include "server/inference/generator.h"

namespace atelier::inference::canvas {

// A rectangle of a canvas: columns [x, x + width), rows [y, y + height).
struct Region {
  int x = 0, y = 0, width = 0, height = 0;
  bool operator==(const Region&) const = default;
};

// Padding around the mask for InpaintArea::kMasked (A1111's default "only masked padding").
inline constexpr int kMaskedPadding = 32;

// Resamples to width x height, each axis on its own: area averaging where the axis shrinks (each
// output pixel the exact average of the source span it covers), bilinear through pixel centres
// (clamped at the edges) where it grows, a plain copy where it keeps its size.
image::Image resize(const image::Image& img, int width, int height);
image::Mask resize(const image::Mask& mask, int width, int height);

// 255 where value >= threshold, else 0.
image::Mask binarize(const image::Mask& mask, int threshold = 128);

// The radius (pixels) of blur_mask()'s kernel: A1111's int(2.5 * sigma + 0.5) with sigma =
// mask_blur; 0 for mask_blur <= 0.
int blur_radius(int mask_blur);
// A1111's mask blur (cv2.GaussianBlur with sigma = mask_blur and that kernel radius), separable,
// clamped to the edge (A1111/cv2 reflect instead; only a band of `radius` at the canvas border
// differs). mask_blur 0 returns the mask unchanged. Values farther than blur_radius() (per axis)
// from every non-zero value stay exactly 0, and values whose whole window is 255 stay 255.
image::Mask blur_mask(const image::Mask& mask, int mask_blur);

// The smallest region holding every non-zero value (an empty Region when there is none).
Region bounding_box(const image::Mask& mask);

// InpaintArea::kWhole: the size the model works at for a width x height canvas. A canvas the
// ranges already accept is kept as it is; otherwise it is scaled (down to fit the maxima, or up
// to reach the minima) keeping its aspect, each side rounded to the nearest multiple_of and
// clamped into its range.
std::pair<int, int> fit_working_size(int width, int height, const IntParam& width_range,
                                     const IntParam& height_range);

// InpaintArea::kMasked: the crop a model works on, in a canvas_width x canvas_height canvas:
// `box` (the mask's extent; see run_edit) grown by `padding` on each side, widened (never shrunk)
// to the aspect of target_width x target_height about its centre, then shifted back inside the
// canvas where it sticks out; an axis longer than the canvas becomes the whole canvas.
Region masked_region(const Region& box, int canvas_width, int canvas_height, int target_width,
                     int target_height, int padding = kMaskedPadding);

image::Image crop(const image::Image& img, const Region& region);
image::Mask crop(const image::Mask& mask, const Region& region);

// An outpaint's canvas: the parent placed at (extend.left, extend.top) in a (w + left + right) x
// (h + top + bottom) RGB image; each new pixel starts as the colour of the nearest parent edge
// pixel, then is averaged over a box that grows with its distance from the parent (so the edge's
// streaks fade into soft colour fields), plus a small deterministic noise from `seed` that also
// grows with distance (a model needs some texture to start from). Pixels next to the parent are
// its edge colour within a level; the parent's pixels are copied exactly. `mask` is 255 over the
// new area and 0 over the parent. Precondition: parent is RGB.
struct OutpaintCanvas {
  image::Image image;
  image::Mask mask;
};
OutpaintCanvas outpaint_canvas(const image::Image& parent, const Extend& extend, int64_t seed);

// Pastes `patch` (region.width x region.height, RGB) into `canvas` (RGB) at `region` through
// `alpha` (the canvas's size): out = canvas * (1 - a) + patch * a with a = alpha / 255, rounded.
// Where alpha is 0 the canvas keeps its pixel exactly; pixels outside the region are untouched.
void composite(image::Image& canvas, const image::Image& patch, const Region& region,
               const image::Mask& alpha);

// An RGB copy: RGBA composited over white (straight alpha); RGB returned as it is.
image::Image flatten_over_white(const image::Image& img);

// (1 - t) * from + t * to per channel value, rounded; t clamped to [0, 1]. Both RGB, same size.
image::Image blend(const image::Image& from, const image::Image& to, double t);

// For generators' pixel-based modes: the RGB image, at request.width x request.height, that a
// request starts from: kInpaint's inpaint->image, or the file of an uploaded parent
// (ParentImage::uploaded) in the other lineage modes, flattened over white and resized;
// nullopt for requests that start from nothing or from the parent's lineage. Errors:
// invalid_argument (field "inpaint") for kInpaint without an input of the request's size;
// unprocessable "the parent image cannot be read".
Result<std::optional<image::Image>> start_pixels(const GenerateRequest& request);

// Reads and decodes a PNG file, RGB or RGBA. Errors: io_error when the file cannot be read, the
// decoder's invalid_argument when it is no PNG.
Result<image::Image> read_png_file(const std::string& path);

}  // namespace atelier::inference::canvas
