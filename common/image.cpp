#include "common/image.h"

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

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
int png_read_impl(png_structp png, png_infop info, png_infop end_info, Image* out) {
  if (setjmp(png_jmpbuf(png))) return 0;
  png_set_user_limits(png, kMaxDimension, kMaxDimension);
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

// Checks that every chunk up to IEND fits in the data. libpng allocates and zero-fills a text
// chunk's declared length (up to 2 GiB) before reading it, so one corrupt length field would cost
// seconds and gigabytes before the "truncated" error; this walk makes that error immediate.
Status check_png_chunk_lengths(std::span<const uint8_t> data) {
  size_t pos = 8;
  while (data.size() - pos >= 12) {
    const uint32_t length = read_be32(data.data() + pos);
    if (length > data.size() - pos - 12) {
      return Status::invalid_argument("png: truncated data (chunk at offset " +
                                      std::to_string(pos) + " claims " + std::to_string(length) +
                                      " bytes)");
    }
    if (std::memcmp(data.data() + pos + 4, "IEND", 4) == 0) break;
    pos += 12 + static_cast<size_t>(length);
  }
  return Status::ok();  // A missing IEND is left for libpng to report.
}

// Decodes `data`; fills *text when non-null.
Result<Image> png_decode(std::span<const uint8_t> data, TextChunks* text) {
  if (data.size() < 8 || png_sig_cmp(data.data(), 0, 8) != 0) {
    return Status::invalid_argument("png: not a PNG file (bad signature)");
  }
  ATELIER_RETURN_IF_ERROR(check_png_chunk_lengths(data));
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
    if (png_read_impl(g.png, g.info, g.end_info, &img) == 0) {
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
        text->emplace_back(latin1_to_utf8(t.key), is_itxt ? value : latin1_to_utf8(value));
      }
    }
  }
  return img;
}

// ---- libjpeg plumbing -------------------------------------------------------------------------
//
// Same discipline as libpng: jpeg_write_impl calls setjmp and holds nothing with a destructor.

struct JpegErrorMgr {
  jpeg_error_mgr mgr;  // First member: libjpeg hands us a jpeg_error_mgr*.
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_error_exit_cb(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_output_message_cb(j_common_ptr) {}  // Never print to stderr.

// A destination that appends to a vector. libjpeg-turbo's jpeg_mem_dest leaves a dangling
// *outbuffer when compression aborts, which makes cleanup after an error unsafe.
struct JpegDest {
  jpeg_destination_mgr mgr;  // First member: libjpeg hands us a jpeg_destination_mgr*.
  std::vector<uint8_t>* out;
  JOCTET buffer[16384];
};

void jpeg_init_destination_cb(j_compress_ptr cinfo) {
  auto* d = reinterpret_cast<JpegDest*>(cinfo->dest);
  d->mgr.next_output_byte = d->buffer;
  d->mgr.free_in_buffer = sizeof(d->buffer);
}

bool jpeg_append(JpegDest* d, size_t n) {
  try {
    d->out->insert(d->out->end(), d->buffer, d->buffer + n);
    return true;
  } catch (...) {
    return false;
  }
}

boolean jpeg_empty_output_buffer_cb(j_compress_ptr cinfo) {
  auto* d = reinterpret_cast<JpegDest*>(cinfo->dest);
  if (!jpeg_append(d, sizeof(d->buffer))) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
  d->mgr.next_output_byte = d->buffer;
  d->mgr.free_in_buffer = sizeof(d->buffer);
  return TRUE;
}

void jpeg_term_destination_cb(j_compress_ptr cinfo) {
  auto* d = reinterpret_cast<JpegDest*>(cinfo->dest);
  if (!jpeg_append(d, sizeof(d->buffer) - d->mgr.free_in_buffer)) {
    ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
  }
}

int jpeg_write_impl(jpeg_compress_struct* cinfo, JpegErrorMgr* err, JpegDest* dest,
                    const uint8_t* rgb, int width, int height, int quality) {
  if (setjmp(err->jump)) return 0;
  jpeg_create_compress(cinfo);
  cinfo->dest = &dest->mgr;
  cinfo->image_width = static_cast<JDIMENSION>(width);
  cinfo->image_height = static_cast<JDIMENSION>(height);
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  const size_t stride = static_cast<size_t>(width) * 3;
  while (cinfo->next_scanline < cinfo->image_height) {
    // libjpeg's API is not const-correct; it only reads the rows.
    JSAMPROW row = const_cast<uint8_t*>(rgb + stride * cinfo->next_scanline);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return 1;
}

Status validate_quality(int quality, int lo) {
  if (quality < lo || quality > 100) {
    return Status::invalid_argument(
        "quality must be " + std::to_string(lo) + "-100, got " + std::to_string(quality),
        "quality");
  }
  return Status::ok();
}

// ---- resize_box helpers -----------------------------------------------------------------------

struct Tap {
  int src;
  float weight;
};

// For each destination index along one axis, the source indices it covers and their normalised
// overlap weights.
std::vector<std::vector<Tap>> box_taps(int src_len, int dst_len) {
  std::vector<std::vector<Tap>> taps(static_cast<size_t>(dst_len));
  const double scale = static_cast<double>(src_len) / dst_len;
  for (int i = 0; i < dst_len; ++i) {
    const double start = i * scale;
    const double end = (i + 1) * scale;
    const int first = static_cast<int>(std::floor(start));
    const int last = std::min(src_len, static_cast<int>(std::ceil(end)));
    for (int j = first; j < last; ++j) {
      const double overlap = std::min(end, j + 1.0) - std::max(start, static_cast<double>(j));
      if (overlap > 1e-9) taps[i].push_back({j, static_cast<float>(overlap / scale)});
    }
  }
  return taps;
}

uint8_t to_byte(float v) {
  return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
}

}  // namespace

Status validate(const Image& img) {
  if (img.width < 1 || img.width > kMaxDimension) {
    return Status::invalid_argument(
        "width must be 1-" + std::to_string(kMaxDimension) + ", got " + std::to_string(img.width),
        "width");
  }
  if (img.height < 1 || img.height > kMaxDimension) {
    return Status::invalid_argument(
        "height must be 1-" + std::to_string(kMaxDimension) + ", got " + std::to_string(img.height),
        "height");
  }
  if (img.channels != 3 && img.channels != 4) {
    return Status::invalid_argument(
        "channels must be 3 (RGB) or 4 (RGBA), got " + std::to_string(img.channels), "channels");
  }
  const size_t expected = static_cast<size_t>(img.width) * static_cast<size_t>(img.height) *
                          static_cast<size_t>(img.channels);
  if (img.pixels.size() != expected) {
    return Status::invalid_argument(
        "pixels must hold width*height*channels = " + std::to_string(expected) + " bytes, got " +
            std::to_string(img.pixels.size()),
        "pixels");
  }
  return Status::ok();
}

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
  return png_decode(data, nullptr);
}

Result<TextChunks> read_png_text(std::span<const uint8_t> data) {
  TextChunks text;
  auto img = png_decode(data, &text);
  if (!img.is_ok()) return img.status();
  return text;
}

Result<std::vector<uint8_t>> encode_jpeg(const Image& img, int quality) {
  ATELIER_RETURN_IF_ERROR(validate(img));
  ATELIER_RETURN_IF_ERROR(validate_quality(quality, 1));
  const size_t n = static_cast<size_t>(img.width) * static_cast<size_t>(img.height);
  std::vector<uint8_t> flattened;
  const uint8_t* rgb = img.pixels.data();
  if (img.channels == 4) {
    // Composite over white: out = c * a + 255 * (1 - a).
    flattened.resize(n * 3);
    for (size_t i = 0; i < n; ++i) {
      const unsigned a = img.pixels[i * 4 + 3];
      for (int c = 0; c < 3; ++c) {
        const unsigned v = img.pixels[i * 4 + c];
        flattened[i * 3 + c] = static_cast<uint8_t>((v * a + 255 * (255 - a) + 127) / 255);
      }
    }
    rgb = flattened.data();
  }

  std::vector<uint8_t> out;
  jpeg_compress_struct cinfo;
  std::memset(&cinfo, 0, sizeof(cinfo));
  JpegErrorMgr err;
  std::memset(&err, 0, sizeof(err));
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit_cb;
  err.mgr.output_message = jpeg_output_message_cb;
  auto dest = std::make_unique<JpegDest>();  // 16 KiB buffer: keep it off the stack.
  dest->out = &out;
  dest->mgr.init_destination = jpeg_init_destination_cb;
  dest->mgr.empty_output_buffer = jpeg_empty_output_buffer_cb;
  dest->mgr.term_destination = jpeg_term_destination_cb;
  const int ok = jpeg_write_impl(&cinfo, &err, dest.get(), rgb, img.width, img.height, quality);
  jpeg_destroy_compress(&cinfo);
  if (ok == 0) return Status::internal(std::string("jpeg: encoding failed: ") + err.message);
  return out;
}

Result<std::vector<uint8_t>> encode_webp(const Image& img, int quality) {
  ATELIER_RETURN_IF_ERROR(validate(img));
  ATELIER_RETURN_IF_ERROR(validate_quality(quality, 0));
  if (img.width > WEBP_MAX_DIMENSION) {
    return Status::invalid_argument(
        "width must be at most " + std::to_string(WEBP_MAX_DIMENSION) + " for WebP", "width");
  }
  if (img.height > WEBP_MAX_DIMENSION) {
    return Status::invalid_argument(
        "height must be at most " + std::to_string(WEBP_MAX_DIMENSION) + " for WebP", "height");
  }
  uint8_t* encoded = nullptr;
  const int stride = img.width * img.channels;
  const auto q = static_cast<float>(quality);
  const size_t size =
      img.channels == 4
          ? WebPEncodeRGBA(img.pixels.data(), img.width, img.height, stride, q, &encoded)
          : WebPEncodeRGB(img.pixels.data(), img.width, img.height, stride, q, &encoded);
  if (size == 0 || encoded == nullptr) {
    WebPFree(encoded);
    return Status::internal("webp: encoding failed");
  }
  std::vector<uint8_t> out(encoded, encoded + size);
  WebPFree(encoded);
  return out;
}

Image resize_box(const Image& img, int max_side) {
  if (max_side < 1 || !validate(img).is_ok()) return img;
  const int longer = std::max(img.width, img.height);
  if (longer <= max_side) return img;
  const double ratio = static_cast<double>(max_side) / longer;
  const int dw = img.width >= img.height
                     ? max_side
                     : std::max(1, static_cast<int>(std::lround(img.width * ratio)));
  const int dh = img.height > img.width
                     ? max_side
                     : std::max(1, static_cast<int>(std::lround(img.height * ratio)));
  const int ch = img.channels;
  const bool alpha = ch == 4;
  const auto xtaps = box_taps(img.width, dw);
  const auto ytaps = box_taps(img.height, dh);

  Image out{dw, dh, ch, std::vector<uint8_t>(static_cast<size_t>(dw) * dh * ch)};
  // One output row at a time: each contributing source row is resampled horizontally (colour
  // premultiplied by alpha) and accumulated with its vertical weight.
  std::vector<float> row(static_cast<size_t>(dw) * ch);
  std::vector<float> acc(static_cast<size_t>(dw) * ch);
  const size_t src_stride = static_cast<size_t>(img.width) * ch;
  for (int oy = 0; oy < dh; ++oy) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (const Tap& ty : ytaps[oy]) {
      const uint8_t* src = img.pixels.data() + src_stride * ty.src;
      std::fill(row.begin(), row.end(), 0.0f);
      for (int ox = 0; ox < dw; ++ox) {
        float* dst = &row[static_cast<size_t>(ox) * ch];
        for (const Tap& tx : xtaps[ox]) {
          const uint8_t* p = src + static_cast<size_t>(tx.src) * ch;
          const float a = alpha ? p[3] / 255.0f : 1.0f;
          for (int c = 0; c < 3; ++c) dst[c] += tx.weight * p[c] * a;
          if (alpha) dst[3] += tx.weight * p[3];
        }
      }
      for (size_t i = 0; i < acc.size(); ++i) acc[i] += ty.weight * row[i];
    }
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(oy) * dw * ch;
    for (int ox = 0; ox < dw; ++ox) {
      const float* a = &acc[static_cast<size_t>(ox) * ch];
      uint8_t* d = dst + static_cast<size_t>(ox) * ch;
      if (alpha) {
        const float coverage = a[3] / 255.0f;
        for (int c = 0; c < 3; ++c) d[c] = coverage > 0.0f ? to_byte(a[c] / coverage) : 0;
        d[3] = to_byte(a[3]);
      } else {
        for (int c = 0; c < 3; ++c) d[c] = to_byte(a[c]);
      }
    }
  }
  return out;
}

}  // namespace atelier::image
