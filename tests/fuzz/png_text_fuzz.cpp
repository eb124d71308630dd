// Fuzz target for PNG decoding and text chunks (common/image.h, common/png.cpp).
//
// Two modes, chosen by the input:
//   - input starting with the PNG signature: decode_png and read_png_text on it. Oracles: a
//     decoded image passes validate(); text comes back as valid UTF-8 (the header's promise:
//     "keywords and values converted to UTF-8"), since callers put it into JSON; both calls
//     agree on whether the file is readable.
//   - anything else: the bytes are split at NUL into (keyword, value) pairs, written with
//     encode_png on a small image, and read back. Oracles: a refusal is kInvalidArgument naming
//     "text_chunks"; an accepted set of chunks reads back exactly, in order, and the pixels too.
//
// Images declaring more than kMaxPixels are not decoded here. decode_png refuses a file whose
// compressed data is too short for its declared size before allocating (the bomb case), but one
// with enough data may still declare up to 16384^2 * 4 bytes, bounded by kMaxDimension by design;
// at a gigabyte per input it would only make the fuzzer slow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "common/image.h"

namespace {

namespace image = atelier::image;
using atelier::StatusCode;

constexpr uint64_t kMaxPixels = 1 << 20;
constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

void check(bool ok) {
  if (!ok) std::abort();
}

// Strict UTF-8 (Unicode 15, table 3-7).
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len = b0 < 0x80 ? 1 : b0 >> 5 == 6 ? 2 : b0 >> 4 == 14 ? 3 : b0 >> 3 == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    char32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// False when the IHDR (always the first chunk) declares more than kMaxPixels.
bool small_enough(std::span<const uint8_t> png) {
  if (png.size() < 8 + 8 + 8 || std::memcmp(png.data() + 12, "IHDR", 4) != 0) return true;
  return uint64_t{be32(png.data() + 16)} * be32(png.data() + 20) <= kMaxPixels;
}

void decode(std::span<const uint8_t> png) {
  if (!small_enough(png)) return;
  auto img = image::decode_png(png);
  if (img.is_ok()) check(image::validate(*img).is_ok());
  auto text = image::read_png_text(png);
  check(text.is_ok() == img.is_ok());
  if (!text.is_ok()) return;
  for (const auto& [key, value] : *text) {
    check(!key.empty() && valid_utf8(key));
    check(valid_utf8(value));
  }
}

void round_trip(std::string_view bytes) {
  image::TextChunks chunks;
  while (!bytes.empty() && chunks.size() < 8) {
    const size_t key_end = std::min(bytes.find('\0'), bytes.size());
    std::string key(bytes.substr(0, key_end));
    bytes.remove_prefix(std::min(key_end + 1, bytes.size()));
    const size_t value_end = std::min(bytes.find('\0'), bytes.size());
    std::string value(bytes.substr(0, value_end));
    bytes.remove_prefix(std::min(value_end + 1, bytes.size()));
    chunks.emplace_back(std::move(key), std::move(value));
  }
  image::Image img{3, 2, 4, {}};
  for (int i = 0; i < 3 * 2 * 4; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 37));
  auto png = image::encode_png(img, chunks);
  if (!png.is_ok()) {
    check(png.status().code() == StatusCode::kInvalidArgument);
    check(png.status().field() == "text_chunks");
    return;
  }
  auto text = image::read_png_text(*png);
  check(text.is_ok() && *text == chunks);
  auto back = image::decode_png(*png);
  check(back.is_ok() && back->pixels == img.pixels && back->width == 3 && back->channels == 4);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  if (size >= 8 && std::memcmp(data, kSignature, 8) == 0) {
    decode(in);
  } else {
    round_trip(std::string_view(reinterpret_cast<const char*>(data), size));
  }
  return 0;
}
