// The inpaint and outpaint part of a job submission (POST /projects/{id}/jobs), and the size a
// job with a parent takes when none is given; job_request.cpp calls in here.
//
// Rules (proto/openapi.yaml, JobSubmit; every refusal is a 400 naming the field):
//   inpaint   needs parent_image_id and mask_image_id; takes mask_blur (pixels 0..64, default 4)
//             and inpaint_area ("whole" | "masked", default "whole");
//   outpaint  needs parent_image_id and extend {left, right, top, bottom} (each 0..2048, at
//             least one above 0, the result at most kMaxEditSide a side); takes mask_blur;
//   both      refuse width and height: the output is the parent's size (inpaint) or the parent's
//             plus the extension (outpaint), and the model's size ranges do not apply to it;
//   others    refuse all four fields.
// The mask must be an image of the job's project with the parent's exact size; that it is not
// empty needs its pixels, which mask_png_is_empty() reads (job_routes.cpp, on the image pool).
//
// Costs: read/check/fit are arithmetic; resolve_edit reads one image row (inside the submit
// transaction); mask_png_is_empty decodes a whole PNG. Threads: plain functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include "common/status.h"
#include "server/api/json_body.h"
#include "server/inference/generator.h"
#include "server/jobs/job.h"
#include "server/store/sqlite.h"

namespace atelier::api {

inline constexpr int64_t kMaxMaskBlur = 64;
inline constexpr int64_t kDefaultMaskBlur = 4;
inline constexpr int64_t kMaxExtend = 2048;    // per side of an outpaint
inline constexpr int64_t kMaxEditSide = 8192;  // an edit's output, per side (image::kMaxUploadSide)

// The edit fields as sent (absent: nullopt); `extend` sides left out are 0.
struct EditFields {
  std::optional<int64_t> mask_image_id;
  std::optional<int64_t> mask_blur;
  std::optional<inference::InpaintArea> inpaint_area;
  std::optional<inference::Extend> extend;
  bool any() const { return mask_image_id || mask_blur || inpaint_area || extend; }
};

// Declares and reads the four fields from the body (their types and outer bounds). A bad
// `extend` member names "extend" (the message says which member).
Result<EditFields> read_edit_fields(JsonBody& body);

// The mode rules above, given which of width and height were sent.
Status check_edit_fields(inference::Mode mode, const EditFields& fields, bool width_given,
                         bool height_given);

// What the submit transaction resolves for an inpaint or outpaint job.
struct ResolvedEdit {
  int width = 0;  // the output size
  int height = 0;
  inference::EditSpec spec;
  std::optional<int64_t> mask_image_id;  // inpaint only
};

// For `mode` kInpaint or kOutpaint with `parent` already found in `project_id`: reads the mask
// row (inpaint), checks it and the output size, and fills in the defaults.
Result<ResolvedEdit> resolve_edit(store::Db& db, inference::Mode mode, const EditFields& fields,
                                  const jobs::ImageRecord& parent, int64_t project_id);

// Whether width x height lies in both ranges and on their grids.
bool size_fits(int64_t width, int64_t height, const inference::IntParam& wr,
               const inference::IntParam& hr);
// A parent's size brought into a model's ranges: unchanged when it fits; else scaled (aspect
// kept) into [min, max] on both sides as far as the aspect allows, and each side rounded to the
// nearest multiple_of within its range.
std::pair<int64_t, int64_t> fit_size(int64_t width, int64_t height, const inference::IntParam& wr,
                                     const inference::IntParam& hr);

// Decodes a stored mask image (PNG) and tells whether it is empty: no mask value >= 128 (see
// inference::mask_from_image). Errors when the file does not decode.
Result<bool> mask_png_is_empty(std::span<const uint8_t> png);

}  // namespace atelier::api
