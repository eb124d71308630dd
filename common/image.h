// Image codecs for the generation pipeline: PNG (with text metadata), JPEG, WebP, and a box
// downscaler for thumbnails and previews. Wraps Debian's libpng, libjpeg-turbo and libwebp; no
// library type leaks out of this header.
//
// Every function is thread-safe (no shared state) and never crashes on malformed input: codec
// errors come back as a non-OK Status.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace atelier::image {

// Largest width or height accepted anywhere in this module (input images and decoded files).
inline constexpr int kMaxDimension = 16384;

// An 8-bit-per-channel image. Pixels are row-major and tightly packed (stride = width * channels),
// channel order R, G, B[, A]; alpha is straight (not premultiplied).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;  // 3 = RGB, 4 = RGBA
  std::vector<uint8_t> pixels;
};

// A single-channel 8-bit image: an inpainting mask (0 = keep, 255 = regenerate, values between
// blend). Row-major, tightly packed (values.size() == width * height).
struct Mask {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> values;
};

// (keyword, value) pairs, both UTF-8 on the C++ side.
using TextChunks = std::vector<std::pair<std::string, std::string>>;

// OK when width and height are 1..kMaxDimension, channels is 3 or 4 and pixels.size() equals
// width * height * channels; otherwise invalid_argument whose field names the offending member
// ("width", "height", "channels" or "pixels").
Status validate(const Image& img);

// Encodes `img` as an 8-bit RGB/RGBA PNG. Each text pair becomes one chunk, in order, before the
// image data (so readers that stop at IDAT still see them):
//  - keyword: 1-79 characters, each printable Latin-1 (U+0020-U+007E, U+00A1-U+00FF), no leading,
//    trailing or doubled spaces (PNG spec 11.3.4.2). Given as UTF-8; anything else is
//    invalid_argument with field "text_chunks".
//  - value: valid UTF-8 without NUL. If every code point is Latin-1 it is written as tEXt
//    (converted to Latin-1, readable by every PNG tool); otherwise as an uncompressed iTXt chunk
//    with empty language tags, because prompts with accents, emoji or CJK are common and must
//    survive a round trip. Invalid UTF-8 is invalid_argument.
// The A1111 "parameters" chunk is the intended use.
Result<std::vector<uint8_t>> encode_png(const Image& img, const TextChunks& text_chunks = {});

// Decodes any PNG (palette, gray, 16-bit, interlaced, tRNS) to 8-bit RGB, or RGBA when the file
// has alpha (an alpha channel or tRNS). Refuses a bad signature, truncated or corrupt data, or a
// width/height above kMaxDimension with invalid_argument whose message starts "png: ".
Result<Image> decode_png(std::span<const uint8_t> data);

// The text chunks (tEXt, zTXt, iTXt) of a PNG, in file order, keywords and values converted to
// UTF-8 (an iTXt value that is not valid UTF-8 is read as Latin-1). Chunks after the image data
// are included, so this decodes the whole file (same cost and same errors as decode_png).
Result<TextChunks> read_png_text(std::span<const uint8_t> data);

// Baseline JPEG, quality 1..100 (else invalid_argument, field "quality"). JPEG has no alpha: an
// RGBA image is composited over white first, since generated images with transparency are
// normally shown on light backgrounds and black would turn soft edges into dark halos.
Result<std::vector<uint8_t>> encode_jpeg(const Image& img, int quality);

// Lossy WebP, quality 0..100 (else invalid_argument, field "quality"); RGBA keeps its alpha.
// WebP cannot exceed 16383 pixels per side, one less than kMaxDimension: such an image is
// invalid_argument naming "width" or "height".
Result<std::vector<uint8_t>> encode_webp(const Image& img, int quality);

// Downscales so the longer side becomes `max_side`, keeping the aspect ratio (the shorter side is
// rounded, at least 1). Each output pixel is the area-weighted average of the source pixels it
// covers (exact for fractional ratios); RGBA is averaged premultiplied so fully transparent
// pixels do not bleed their colour. Never upscales: if the longer side is already <= max_side a
// copy is returned. Precondition: validate(img) is OK and max_side >= 1 (otherwise the input is
// returned unchanged).
Image resize_box(const Image& img, int max_side);

}  // namespace atelier::image
