// PNG: encoding with text chunks (tEXt / iTXt), decoding, and reading text chunks back.
// The rest of the image codecs (JPEG, WebP, resizing) are in image.cpp.
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

#include "common/image.h"
#include "common/image_decode.h"

namespace atelier::image {
namespace {

// ---- Text helpers -----------------------------------------------------------------------------

// Decodes strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool decode_utf8(std::string_view s, std::vector<char32_t>* out) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int extra = 0;
    char32_t cp = 0;
    if (b0 < 0x80) {
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      extra = 1;
      cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      extra = 2;
      cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      extra = 3;
      cp = b0 & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= static_cast<size_t>(extra)) return false;  // Truncated sequence.
    for (int k = 1; k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    out->push_back(cp);
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out.push_back(c);
    } else {
      out.push_back(static_cast<char>(0xC0 | (b >> 6)));
      out.push_back(static_cast<char>(0x80 | (b & 0x3F)));
    }
  }
  return out;
}

bool is_printable_latin1(char32_t cp) {
  return (cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xFF);
}

// Converts a UTF-8 keyword to its Latin-1 bytes, enforcing the PNG keyword rules.
Result<std::string> png_keyword(const std::string& utf8) {
  std::vector<char32_t> cps;
  if (!decode_utf8(utf8, &cps)) {
    return Status::invalid_argument("png text keyword is not valid UTF-8", "text_chunks");
  }
  if (cps.empty() || cps.size() > 79) {
    return Status::invalid_argument(
        "png text keyword must be 1-79 characters, got " + std::to_string(cps.size()),
        "text_chunks");
  }
  std::string latin1;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!is_printable_latin1(cps[i])) {
      return Status::invalid_argument(
          "png text keyword '" + utf8 + "' has a character outside printable Latin-1",
          "text_chunks");
    }
    if (cps[i] == U' ' && (i == 0 || i + 1 == cps.size() || cps[i - 1] == U' ')) {
      return Status::invalid_argument(
          "png text keyword '" + utf8 + "' has leading, trailing or consecutive spaces",
          "text_chunks");
    }
    latin1.push_back(static_cast<char>(static_cast<unsigned char>(cps[i])));
  }
  return latin1;
}

// ---- libpng plumbing --------------------------------------------------------------------------
//
// libpng reports errors by longjmp. The functions that call setjmp (png_write_impl,
// png_read_impl) hold only trivially destructible locals and pointers to state owned by their
// callers, so a longjmp back into them skips no destructor. libpng's own frames are the only ones
// jumped over. Callbacks never let a C++ exception escape into libpng.

// Largest ancillary chunk (text, ICC profile, ...) a decode will buffer; image data is not limited
// by this but by kMaxDimension.
constexpr png_alloc_size_t kMaxPngChunkBytes = 16 << 20;

// What a decode may cost and read. The defaults are decode_png's contract.
struct PngDecodeOptions {
  uint64_t max_pixels = uint64_t{kMaxDimension} * kMaxDimension;
  uint32_t max_side = kMaxDimension;
  bool skip_metadata = false;  // ignore text, ICC and EXIF chunks (untrusted uploads)
};

struct PngErrorSink {
  char message[256];
};

[[noreturn]] void png_error_cb(png_structp png, png_const_charp msg) {
  auto* sink = static_cast<PngErrorSink*>(png_get_error_ptr(png));
  if (sink != nullptr) std::snprintf(sink->message, sizeof(sink->message), "%s", msg);
  png_longjmp(png, 1);
}

void png_warning_cb(png_structp, png_const_charp) {}  // Warnings are not failures.

void png_write_cb(png_structp png, png_bytep data, size_t length) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  bool failed = false;
  try {
    out->insert(out->end(), data, data + length);
  } catch (...) {
    failed = true;
  }
  if (failed) png_error(png, "out of memory");  // Outside the catch: longjmp must not leave it.
}

void png_flush_cb(png_structp) {}

struct PngReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

void png_read_cb(png_structp png, png_bytep out, size_t length) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (length > r->size - r->pos) png_error(png, "truncated data");
  std::memcpy(out, r->data + r->pos, length);
  r->pos += length;
}

int png_write_impl(png_structp png, png_infop info, const Image* img, png_textp texts,
                   int num_texts) {
  if (setjmp(png_jmpbuf(png))) return 0;
  // zlib level 2 instead of libpng's 6: measured on 512x512 CPPN renders (2 cores), level 6
  // took 50-67 ms per image, as long as the render itself, and level 2 takes 20-25 ms for files
  // 10-20% larger. Every finished image pays this before it is stored; lists use thumbnails.
  png_set_compression_level(png, 2);
  png_set_IHDR(png, info, static_cast<png_uint_32>(img->width),
               static_cast<png_uint_32>(img->height), 8,
               img->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (num_texts > 0) png_set_text(png, info, texts, num_texts);
  png_write_info(png, info);
  const size_t stride = static_cast<size_t>(img->width) * static_cast<size_t>(img->channels);
  for (int y = 0; y < img->height; ++y) {
    png_write_row(png, img->pixels.data() + stride * static_cast<size_t>(y));
  }
  png_write_end(png, nullptr);
  return 1;
}

// Decodes into *out; on return 1 the text chunks can be fetched from info and end_info.
// out->pixels.resize may throw std::bad_alloc; no libpng frame is active at that point.
int png_read_impl(png_structp png, png_infop info, png_infop end_info,
                  const PngDecodeOptions* options, Image* out) {
  if (setjmp(png_jmpbuf(png))) return 0;
  png_set_user_limits(png, options->max_side, options->max_side);
  if (options->skip_metadata) {
    // Known chunks listed here are handled as unknown ones, which are dropped by default.
    static constexpr png_byte kSkipped[] = "tEXt\0zTXt\0iTXt\0iCCP\0eXIf\0sPLT\0";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, kSkipped, 6);
  }
  // Caps ancillary chunk buffers and zTXt/iCCP decompression (bombs), whatever the distro default.
  png_set_chunk_malloc_max(png, kMaxPngChunkBytes);
  png_read_info(png, info);
  // Normalise every colour type and bit depth to 8-bit RGB or RGBA.
  png_set_expand(png);  // palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha
  png_set_strip_16(png);
  png_set_gray_to_rgb(png);
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  if (channels != 3 && channels != 4) png_error(png, "unsupported channel layout");
  const png_uint_32 width = png_get_image_width(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  if (uint64_t{width} * height > options->max_pixels) png_error(png, "image over the pixel limit");
  const size_t stride = static_cast<size_t>(width) * static_cast<size_t>(channels);
  if (png_get_rowbytes(png, info) != stride) png_error(png, "unexpected row size");
  out->width = static_cast<int>(width);
  out->height = static_cast<int>(height);
  out->channels = channels;
  out->pixels.resize(stride * height);
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 y = 0; y < height; ++y) {
      png_read_row(png, out->pixels.data() + stride * y, nullptr);
    }
  }
  png_read_end(png, end_info);
  return 1;
}

// Owns the read structs so every exit path (including bad_alloc) frees them.
struct PngReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_infop end_info = nullptr;
  ~PngReadGuard() { png_destroy_read_struct(&png, &info, &end_info); }
};

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// deflate cannot expand data more than 1032 times (a 258-byte match costs at least 2 bits).
constexpr uint64_t kMaxDeflateRatio = 1032;

// Walks the chunks before libpng sees them:
//  - every chunk up to IEND must fit in the data. libpng allocates and zero-fills a text chunk's
//    declared length (up to 2 GiB) before reading it, so one corrupt length field would cost
//    seconds and gigabytes before the "truncated" error; this walk makes that error immediate;
//  - the IHDR size must be within `options`, and the image data (IDAT) long enough to inflate to
//    that size, so a few bytes declaring 16384 x 16384 are refused before the pixel buffer (up
//    to 1 GiB) is allocated.
Status check_png_chunks(std::span<const uint8_t> data, const PngDecodeOptions& options) {
  size_t pos = 8;
  uint64_t idat_bytes = 0;
  uint64_t min_raw_bytes = 0;  // pixel data the IHDR promises, without filter bytes
  // From 8 bytes on, a chunk's length and type are there for libpng to act on, so a chunk cut
  // short anywhere (even before its CRC) is refused here.
  while (data.size() - pos >= 8) {
    const uint32_t length = read_be32(data.data() + pos);
    if (data.size() - pos < 12 || length > data.size() - pos - 12) {
      return Status::invalid_argument("png: truncated data (chunk at offset " +
                                      std::to_string(pos) + " claims " + std::to_string(length) +
                                      " bytes)");
    }
    const uint8_t* type = data.data() + pos + 4;
    const uint8_t* body = data.data() + pos + 8;
    if (pos == 8 && std::memcmp(type, "IHDR", 4) == 0 && length == 13) {
      const uint32_t width = read_be32(body);
      const uint32_t height = read_be32(body + 4);
      if (width > options.max_side || height > options.max_side) {
        return Status::invalid_argument("png: " + std::to_string(width) + "x" +
                                        std::to_string(height) + " is over the limit of " +
                                        std::to_string(options.max_side) + " per side");
      }
      if (uint64_t{width} * height > options.max_pixels) {
        return Status::invalid_argument("png: " + std::to_string(width) + "x" +
                                        std::to_string(height) + " is over the limit of " +
                                        std::to_string(options.max_pixels) + " pixels");
      }
      // Bits per pixel from bit depth and colour type (gray, -, RGB, palette, gray+alpha, -, RGBA).
      static constexpr uint64_t kSamples[7] = {1, 0, 3, 1, 2, 0, 4};
      const uint64_t samples = body[9] < 7 ? kSamples[body[9]] : 0;
      min_raw_bytes = uint64_t{width} * height * samples * body[8] / 8;
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      idat_bytes += length;
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      break;
    }
    pos += 12 + static_cast<size_t>(length);
  }
  if (min_raw_bytes > idat_bytes * kMaxDeflateRatio + 4096) {
    return Status::invalid_argument("png: truncated data (" + std::to_string(idat_bytes) +
                                    " bytes of image data cannot hold " +
                                    std::to_string(min_raw_bytes) + ")");
  }
  return Status::ok();  // A missing IEND or a malformed IHDR is left for libpng to report.
}

// Decodes `data`; fills *text when non-null.
Result<Image> png_decode(std::span<const uint8_t> data, TextChunks* text,
                         const PngDecodeOptions& options) {
  if (data.size() < 8 || png_sig_cmp(data.data(), 0, 8) != 0) {
    return Status::invalid_argument("png: not a PNG file (bad signature)");
  }
  ATELIER_RETURN_IF_ERROR(check_png_chunks(data, options));
  PngErrorSink sink{};
  PngReader reader{data.data(), data.size(), 0};
  PngReadGuard g;
  g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, png_error_cb, png_warning_cb);
  if (g.png == nullptr) return Status::internal("png: cannot create read struct");
  g.info = png_create_info_struct(g.png);
  g.end_info = png_create_info_struct(g.png);
  if (g.info == nullptr || g.end_info == nullptr) {
    return Status::internal("png: cannot create info struct");
  }
  png_set_read_fn(g.png, &reader, png_read_cb);
  Image img;
  try {
    if (png_read_impl(g.png, g.info, g.end_info, &options, &img) == 0) {
      return Status::invalid_argument(std::string("png: ") + sink.message);
    }
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "png: out of memory decoding image");
  }
  if (text != nullptr) {
    for (png_infop from : {g.info, g.end_info}) {
      png_textp chunks = nullptr;
      int n = 0;
      png_get_text(g.png, from, &chunks, &n);
      for (int i = 0; i < n; ++i) {
        const png_text& t = chunks[i];
        const bool is_itxt = t.compression == PNG_ITXT_COMPRESSION_NONE ||
                             t.compression == PNG_ITXT_COMPRESSION_zTXt;
        std::string value = t.text == nullptr ? std::string() : std::string(t.text);
        // iTXt should be UTF-8, but libpng does not check: bytes that are not (a writer's
        // Latin-1, or garbage) are read as Latin-1, so callers always get valid UTF-8.
        std::vector<char32_t> cps;
        const bool utf8 = is_itxt && decode_utf8(value, &cps);
        text->emplace_back(latin1_to_utf8(t.key), utf8 ? value : latin1_to_utf8(value));
      }
    }
  }
  return img;
}

}  // namespace

Result<std::vector<uint8_t>> encode_png(const Image& img, const TextChunks& text_chunks) {
  ATELIER_RETURN_IF_ERROR(validate(img));
  // Keyword, value and language-tag bytes, kept alive until libpng has copied them.
  std::vector<std::string> storage;
  storage.reserve(text_chunks.size() * 2 + 1);
  storage.emplace_back();  // Empty language tag shared by every iTXt chunk.
  std::vector<png_text> texts(text_chunks.size());
  for (size_t i = 0; i < text_chunks.size(); ++i) {
    const auto& [key, value] = text_chunks[i];
    auto keyword = png_keyword(key);
    if (!keyword.is_ok()) return keyword.status();
    std::vector<char32_t> cps;
    if (!decode_utf8(value, &cps)) {
      return Status::invalid_argument("png text value for '" + key + "' is not valid UTF-8",
                                      "text_chunks");
    }
    bool latin1 = true;
    std::string latin1_value;
    for (char32_t cp : cps) {
      if (cp == 0) {
        return Status::invalid_argument("png text value for '" + key + "' contains NUL",
                                        "text_chunks");
      }
      if (cp > 0xFF) latin1 = false;
      if (latin1) latin1_value.push_back(static_cast<char>(static_cast<unsigned char>(cp)));
    }
    std::string& k = storage.emplace_back(std::move(*keyword));
    std::string& v = storage.emplace_back(latin1 ? std::move(latin1_value) : value);
    png_text& t = texts[i];
    std::memset(&t, 0, sizeof(t));
    t.key = k.data();
    t.text = v.data();
    if (latin1) {
      t.compression = PNG_TEXT_COMPRESSION_NONE;
      t.text_length = v.size();
    } else {
      t.compression = PNG_ITXT_COMPRESSION_NONE;
      t.itxt_length = v.size();
      t.lang = storage[0].data();
      t.lang_key = storage[0].data();
    }
  }

  std::vector<uint8_t> out;
  PngErrorSink sink{};
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_error_cb, png_warning_cb);
  if (png == nullptr) return Status::internal("png: cannot create write struct");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    return Status::internal("png: cannot create info struct");
  }
  png_set_write_fn(png, &out, png_write_cb, png_flush_cb);
  const int ok = png_write_impl(png, info, &img, texts.data(), static_cast<int>(texts.size()));
  png_destroy_write_struct(&png, &info);
  if (ok == 0) return Status::internal(std::string("png: encoding failed: ") + sink.message);
  return out;
}

Result<Image> decode_png(std::span<const uint8_t> data) {
  return png_decode(data, nullptr, PngDecodeOptions{});
}

Result<Image> decode_png_limited(std::span<const uint8_t> data, const UploadLimits& limits) {
  PngDecodeOptions options;
  options.max_pixels = static_cast<uint64_t>(std::max<int64_t>(limits.max_pixels, 0));
  options.max_side = static_cast<uint32_t>(std::clamp(limits.max_side, 0, kMaxDimension));
  options.skip_metadata = true;
  return png_decode(data, nullptr, options);
}

Result<TextChunks> read_png_text(std::span<const uint8_t> data) {
  TextChunks text;
  auto img = png_decode(data, &text, PngDecodeOptions{});
  if (!img.is_ok()) return img.status();
  return text;
}

}  // namespace atelier::image
