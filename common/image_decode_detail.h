// Internals of the upload decoder (image_decode.h) shared between its source files; no other
// caller. The JPEG half is in jpeg_decode.h.
#pragma once

#include <cstdint>
#include <span>

#include "common/image.h"
#include "common/image_decode.h"
#include "common/status.h"

namespace atelier::image::detail {

// The orientation tag (0x0112) of IFD0 in an EXIF block: the TIFF structure, optionally after
// the "Exif\0\0" prefix of JPEG APP1. 1 when the block is malformed or the value not 1..8.
// Every read is bounds-checked; both byte orders.
int exif_orientation(std::span<const uint8_t> exif);

}  // namespace atelier::image::detail
