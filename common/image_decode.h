// Decoding of untrusted image files (uploads): format sniffing, header probing, and a decode that
// refuses hostile files before spending memory on them. PNG, JPEG and WebP only.
//
// Rules:
//  - Sizes are checked on the header (probe_image) before any pixel buffer exists, so a tiny file
//    declaring a huge image costs nothing; the largest buffer a decode allocates is bounded by
//    UploadLimits (a few bytes per allowed pixel).
//  - Errors are Status, never a crash or an abort, whatever the bytes: invalid_argument with field
//    "file" for anything wrong with the file itself (unrecognisable, truncated, corrupt, animated,
//    too large); "Content-Type" where the format is the problem (see each function).
//  - Results carry pixels only: no metadata (EXIF, text, ICC) survives a decode.
// Costs: probe_image reads headers only (microseconds); decode_upload is one decode of the file
// plus one copy for orientation or alpha changes.
// Threads: every function is thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/image.h"
#include "common/status.h"

namespace atelier::image {

// Largest width or height of an upload, whatever max_upload_pixels allows.
inline constexpr int kMaxUploadSide = 8192;

struct UploadLimits {
  int64_t max_pixels;             // width * height at most this (config max_upload_pixels)
  int max_side = kMaxUploadSide;  // each side at most this (capped at kMaxDimension)
};

enum class ImageFormat { kPng, kJpeg, kWebp };

// "PNG", "JPEG", "WebP".
std::string_view format_name(ImageFormat format);

struct ImageProbe {
  ImageFormat format;
  int width;  // as stored, before EXIF orientation
  int height;
  bool has_alpha;   // the header says so (an alpha channel, PNG tRNS, WebP alpha flag)
  bool animated;    // APNG (acTL before IDAT) or animated WebP
  int orientation;  // EXIF orientation 1..8; 1 when absent or unreadable
};

// The format from the magic bytes. Anything else is invalid_argument: with field "Content-Type"
// and a message naming the format when it is a known image or document format that is refused
// ("GIF is not accepted; send PNG, JPEG or WebP"), with field "file" when unrecognisable.
Result<ImageFormat> sniff_format(std::span<const uint8_t> bytes);

// Reads the header (PNG chunks up to the image data, JPEG markers up to the first scan, WebP
// RIFF chunks) without decoding pixels. invalid_argument with field "file" when the header
// itself is truncated or corrupt; a file whose pixel data is broken may still probe fine.
Result<ImageProbe> probe_image(std::span<const uint8_t> bytes);

enum class AlphaMode {
  kFlatten,  // composite over white, return RGB
  kKeep,     // return RGBA when some pixel has alpha < 255, else RGB
};

// Decodes an uploaded file to 8-bit RGB (or RGBA with kKeep), upright. In order:
//  1. the sniffed format must be `declared`: failed_precondition with field "Content-Type"
//     otherwise (also for a refused format such as GIF or SVG sent under an image type);
//     unrecognisable bytes are invalid_argument "file";
//  2. probe_image; an animated image is refused; width * height > limits.max_pixels or a side
//     > limits.max_side is refused before decoding, the message naming "max_upload_pixels" or
//     "each side at most N";
//  3. decode (PNG any colour type / depth / interlace; JPEG grayscale, YCbCr, RGB, CMYK, YCCK,
//     baseline or progressive with at most kMaxJpegScans scans; WebP lossy or lossless); the
//     file must be complete and consistent: truncation or corruption is invalid_argument "file"
//     ("the file is truncated or corrupt (jpeg: ...)");
//  4. EXIF orientation 2..8 applied (5..8 swap width and height), the limits checked again;
//  5. alpha per `alpha`.
// All refusals are invalid_argument with field "file" unless stated.
Result<Image> decode_upload(std::span<const uint8_t> bytes, ImageFormat declared,
                            const UploadLimits& limits, AlphaMode alpha);

// A progressive JPEG may have many scans, each a full pass over the coefficients; real files have
// about ten. More than this is refused (libjpeg-turbo's advice for untrusted input).
inline constexpr int kMaxJpegScans = 500;

// decode_png (common/image.h) for untrusted bytes: also refuses, before allocating pixels, a
// declared size over `limits` (message "png: ..."), and skips text, ICC and EXIF chunks instead
// of parsing them. Same output as decode_png. Defined in png.cpp.
Result<Image> decode_png_limited(std::span<const uint8_t> data, const UploadLimits& limits);

}  // namespace atelier::image
