// JPEG half of the upload decoder (image_decode.h), on libjpeg-turbo; no other caller. Errors
// are invalid_argument with a message starting "jpeg: ", which decode_upload turns into its
// "file" errors (kResourceExhausted when memory runs out). Thread-safe; no libjpeg type here.
#pragma once

#include <cstdint>
#include <span>

#include "common/image.h"
#include "common/image_decode.h"
#include "common/status.h"

namespace atelier::image::detail {

// JPEG header: size and EXIF orientation (libjpeg-turbo's marker reader, up to the first scan).
Result<ImageProbe> probe_jpeg(std::span<const uint8_t> bytes);

// Decodes a JPEG to RGB as stored (no orientation). Refuses a size over `limits` before
// decompressing, more than kMaxJpegScans scans, colour spaces other than gray, YCbCr, RGB, CMYK
// and YCCK, and any sign of truncation or corrupt entropy data (libjpeg's warnings included).
// libjpeg's memory for the whole image is capped by what a file of that size needs.
Result<Image> decode_jpeg(std::span<const uint8_t> bytes, const UploadLimits& limits);

}  // namespace atelier::image::detail
