// Fuzz target for the upload decoder (common/image_decode.h): any bytes to sniff_format,
// probe_image and decode_upload (declared as the sniffed format, so the PNG, JPEG and WebP
// decoders all get the input; the alpha mode from the input's length).
//
// Oracles besides "no crash, no sanitizer report, no leak":
//  - refusals are invalid_argument with field "file" or "Content-Type" (failed_precondition
//    "Content-Type" for a declared type the bytes are not), or resource_exhausted "file";
//  - a probe has a positive size and an orientation 1..8; probe_image and sniff_format agree;
//  - a decoded image validates, is within the limits, has the probed size (sides swapped for
//    orientations 5..8), is not animated, and is RGBA only with kKeep and a pixel below 255.
// The limits are small (1 MP) so that the fuzzer is not slowed by legitimately large images.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/image_decode.h"

namespace {

namespace image = atelier::image;
using atelier::StatusCode;

constexpr image::UploadLimits kLimits{1 << 20, 2048};

void check(bool ok) {
  if (!ok) std::abort();
}

bool file_or_type(const atelier::Status& s) {
  return s.field() == "file" || s.field() == "Content-Type";
}

image::ImageFormat other_than(image::ImageFormat f) {
  return f == image::ImageFormat::kPng ? image::ImageFormat::kJpeg : image::ImageFormat::kPng;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  const auto mode = size % 2 == 0 ? image::AlphaMode::kFlatten : image::AlphaMode::kKeep;

  auto sniffed = image::sniff_format(in);
  auto probe = image::probe_image(in);
  if (!sniffed.is_ok()) {
    check(sniffed.status().code() == StatusCode::kInvalidArgument);
    check(file_or_type(sniffed.status()));
    check(!probe.is_ok());
    auto r = image::decode_upload(in, image::ImageFormat::kPng, kLimits, mode);
    check(!r.is_ok() && file_or_type(r.status()));
    return 0;
  }
  if (probe.is_ok()) {
    check(probe->format == *sniffed);
    check(probe->width > 0 && probe->height > 0);
    check(probe->orientation >= 1 && probe->orientation <= 8);
  } else {
    check(probe.status().code() == StatusCode::kInvalidArgument);
    check(probe.status().field() == "file");
  }

  // A declared type the bytes are not is refused before anything is decoded.
  auto wrong = image::decode_upload(in, other_than(*sniffed), kLimits, mode);
  check(!wrong.is_ok() && wrong.status().code() == StatusCode::kFailedPrecondition &&
        wrong.status().field() == "Content-Type");

  auto img = image::decode_upload(in, *sniffed, kLimits, mode);
  if (!img.is_ok()) {
    const StatusCode code = img.status().code();
    check(code == StatusCode::kInvalidArgument || code == StatusCode::kResourceExhausted);
    check(img.status().field() == "file");
    return 0;
  }
  check(probe.is_ok() && !probe->animated);
  check(image::validate(*img).is_ok());
  check(int64_t{img->width} * img->height <= kLimits.max_pixels);
  check(img->width <= kLimits.max_side && img->height <= kLimits.max_side);
  const bool swapped = probe->orientation >= 5;
  check(img->width == (swapped ? probe->height : probe->width));
  check(img->height == (swapped ? probe->width : probe->height));
  if (img->channels == 4) {
    check(mode == image::AlphaMode::kKeep);
    bool translucent = false;
    for (size_t i = 3; i < img->pixels.size(); i += 4) translucent |= img->pixels[i] != 255;
    check(translucent);
  }
  return 0;
}
