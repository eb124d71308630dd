#include "server/api/edit_request.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/image.h"
#include "server/inference/edit.h"
#include "server/jobs/job_db.h"

namespace atelier::api {

namespace {

using inference::Mode;

std::string size_text(int64_t w, int64_t h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

Status refused_here(std::string_view field, std::string_view modes) {
  return Status::invalid_argument(
      "field '" + std::string(field) + "' is only for mode " + std::string(modes),
      std::string(field));
}

// The multiple of the range's multiple_of nearest to `v`, within the range (its lowest multiple
// when the range holds none).
int64_t on_grid(double v, const inference::IntParam& r) {
  const int64_t step = std::max<int64_t>(1, r.multiple_of);
  const int64_t lo = (r.min + step - 1) / step * step;
  const int64_t hi = std::max(lo, r.max / step * step);
  const int64_t rounded = static_cast<int64_t>(std::llround(v / static_cast<double>(step))) * step;
  return std::clamp(rounded, lo, hi);
}

}  // namespace

Result<EditFields> read_edit_fields(JsonBody& body) {
  EditFields f;
  ATELIER_ASSIGN_OR_RETURN(f.mask_image_id, body.optional_int("mask_image_id", 1, INT64_MAX));
  ATELIER_ASSIGN_OR_RETURN(f.mask_blur, body.optional_int("mask_blur", 0, kMaxMaskBlur));
  ATELIER_ASSIGN_OR_RETURN(std::optional<std::string> area,
                           body.optional_enum("inpaint_area", {"whole", "masked"}));
  if (area) f.inpaint_area = *inference::parse_inpaint_area(*area);
  ATELIER_ASSIGN_OR_RETURN(std::optional<JsonBody> extend, body.optional_object("extend"));
  if (extend) {
    // Members are read as "extend.left" etc. for the message; the field named is "extend".
    auto as_extend = [](const Status& st) {
      return st.is_ok() ? st : Status::invalid_argument(st.message(), "extend");
    };
    inference::Extend e;
    for (auto [name, out] : {std::pair<const char*, int*>{"extend.left", &e.left},
                             {"extend.right", &e.right},
                             {"extend.top", &e.top},
                             {"extend.bottom", &e.bottom}}) {
      auto v = extend->optional_int(name, 0, kMaxExtend);
      if (!v.is_ok()) return as_extend(v.status());
      *out = static_cast<int>(v->value_or(0));
    }
    ATELIER_RETURN_IF_ERROR(as_extend(extend->finish()));
    f.extend = e;
  }
  return f;
}

Status check_edit_fields(Mode mode, const EditFields& f, bool width_given, bool height_given) {
  if (!inference::is_edit(mode)) {
    if (f.mask_image_id) return refused_here("mask_image_id", "inpaint");
    if (f.mask_blur) return refused_here("mask_blur", "inpaint and outpaint");
    if (f.inpaint_area) return refused_here("inpaint_area", "inpaint");
    if (f.extend) return refused_here("extend", "outpaint");
    return Status::ok();
  }
  const std::string name(inference::mode_name(mode));
  for (auto [field, given] :
       {std::pair<const char*, bool>{"width", width_given}, {"height", height_given}}) {
    if (given) {
      return Status::invalid_argument("field '" + std::string(field) + "' is not taken by mode '" +
                                          name +
                                          "': the size follows the parent image (and the "
                                          "extension)",
                                      field);
    }
  }
  if (mode == Mode::kInpaint) {
    if (f.extend) return refused_here("extend", "outpaint");
    if (!f.mask_image_id) {
      return Status::invalid_argument("field 'mask_image_id' is required for mode 'inpaint'",
                                      "mask_image_id");
    }
    return Status::ok();
  }
  if (f.mask_image_id) return refused_here("mask_image_id", "inpaint");
  if (f.inpaint_area) return refused_here("inpaint_area", "inpaint");
  if (!f.extend) {
    return Status::invalid_argument("field 'extend' is required for mode 'outpaint'", "extend");
  }
  const inference::Extend& e = *f.extend;
  if (e.left == 0 && e.right == 0 && e.top == 0 && e.bottom == 0) {
    return Status::invalid_argument("field 'extend' must add at least one pixel on some side",
                                    "extend");
  }
  return Status::ok();
}

Result<ResolvedEdit> resolve_edit(store::Db& db, Mode mode, const EditFields& f,
                                  const jobs::ImageRecord& parent, int64_t project_id) {
  ResolvedEdit out;
  out.spec.mask_blur = static_cast<int>(f.mask_blur.value_or(kDefaultMaskBlur));
  out.spec.area = f.inpaint_area.value_or(inference::InpaintArea::kWhole);
  int64_t width = parent.width, height = parent.height;
  if (mode == Mode::kInpaint) {
    auto mask = jobs::job_db::find_image(db, *f.mask_image_id);
    if (!mask.is_ok() && mask.status().code() != StatusCode::kNotFound) return mask.status();
    if (!mask.is_ok() || mask->project_id != project_id) {
      return Status::invalid_argument("field 'mask_image_id' names no image in this project",
                                      "mask_image_id");
    }
    if (mask->width != parent.width || mask->height != parent.height) {
      return Status::invalid_argument("the mask must have the parent's size " +
                                          size_text(parent.width, parent.height) + "; it is " +
                                          size_text(mask->width, mask->height),
                                      "mask_image_id");
    }
    out.mask_image_id = mask->id;
  } else {
    out.spec.extend = *f.extend;
    width += f.extend->left + f.extend->right;
    height += f.extend->top + f.extend->bottom;
    if (width > kMaxEditSide || height > kMaxEditSide) {
      return Status::invalid_argument(
          "an outpaint of the parent's " + size_text(parent.width, parent.height) + " would be " +
              size_text(width, height) + "; each side at most " + std::to_string(kMaxEditSide),
          "extend");
    }
  }
  out.width = static_cast<int>(width);
  out.height = static_cast<int>(height);
  return out;
}

bool size_fits(int64_t w, int64_t h, const inference::IntParam& wr, const inference::IntParam& hr) {
  auto fits = [](int64_t v, const inference::IntParam& r) {
    return v >= r.min && v <= r.max && (r.multiple_of <= 1 || v % r.multiple_of == 0);
  };
  return fits(w, wr) && fits(h, hr);
}

std::pair<int64_t, int64_t> fit_size(int64_t w, int64_t h, const inference::IntParam& wr,
                                     const inference::IntParam& hr) {
  if (size_fits(w, h, wr, hr) || w <= 0 || h <= 0) return {w, h};
  const double fw = static_cast<double>(w), fh = static_cast<double>(h);
  // Shrink to the maxima, then grow to the minima where the aspect allows (the maxima win).
  double s = std::min({1.0, static_cast<double>(wr.max) / fw, static_cast<double>(hr.max) / fh});
  const double grow = std::max(static_cast<double>(wr.min) / fw, static_cast<double>(hr.min) / fh);
  if (grow > s) {
    s = std::min({grow, static_cast<double>(wr.max) / fw, static_cast<double>(hr.max) / fh});
  }
  return {on_grid(fw * s, wr), on_grid(fh * s, hr)};
}

Result<bool> mask_png_is_empty(std::span<const uint8_t> png) {
  ATELIER_ASSIGN_OR_RETURN(image::Image decoded, image::decode_png(png));
  ATELIER_ASSIGN_OR_RETURN(image::Mask mask, inference::mask_from_image(decoded));
  return inference::mask_is_empty(mask);
}

}  // namespace atelier::api
