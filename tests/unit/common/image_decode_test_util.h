// Builders of test files for the upload decoder tests (image_decode_test.cpp,
// image_decode_exif_test.cpp): PNG of any colour type through libpng, JPEG through libjpeg (any
// colour space, progressive, custom scan scripts), WebP, EXIF blocks, and chunk splicing. The
// codecs' default error handling is fine here: the inputs are known-good.
#pragma once

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/image.h"

namespace atelier::image::testing {

using Bytes = std::vector<uint8_t>;

// Deterministic, non-trivial pixels.
inline Image make_image(int w, int h, int channels) {
  Image img{w, h, channels, std::vector<uint8_t>(static_cast<size_t>(w) * h * channels)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[(static_cast<size_t>(y) * w + x) * channels];
      p[0] = static_cast<uint8_t>(x * 37 + y * 11);
      p[1] = static_cast<uint8_t>(x * 5 + y * 53 + 7);
      p[2] = static_cast<uint8_t>((x ^ y) * 29);
      if (channels == 4) p[3] = static_cast<uint8_t>(255 - x * 17 - y * 3);
    }
  }
  return img;
}

inline uint32_t crc32(const uint8_t* data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline void put_be32(Bytes* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<uint8_t>(v >> s));
}

inline void put_le(Bytes* out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

inline void append(Bytes* out, std::string_view s) {
  out->insert(out->end(), s.begin(), s.end());
}

// A PNG chunk with its length and CRC.
inline Bytes png_chunk(std::string_view type, const Bytes& body) {
  Bytes typed(type.begin(), type.end());
  typed.insert(typed.end(), body.begin(), body.end());
  Bytes out;
  put_be32(&out, static_cast<uint32_t>(body.size()));
  out.insert(out.end(), typed.begin(), typed.end());
  put_be32(&out, crc32(typed.data(), typed.size()));
  return out;
}

// Inserts `chunk` before the first chunk of type `before` (e.g. "IDAT").
inline Bytes insert_png_chunk(Bytes png, const Bytes& chunk, std::string_view before) {
  size_t pos = 8;
  while (pos + 8 <= png.size()) {
    const uint32_t len = (uint32_t{png[pos]} << 24) | (uint32_t{png[pos + 1]} << 16) |
                         (uint32_t{png[pos + 2]} << 8) | png[pos + 3];
    if (std::memcmp(png.data() + pos + 4, before.data(), 4) == 0) break;
    pos += 12 + len;
  }
  png.insert(png.begin() + static_cast<ptrdiff_t>(pos), chunk.begin(), chunk.end());
  return png;
}

struct PngSpec {
  int width = 1;
  int height = 1;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  Bytes rows;  // packed as libpng wants them (rowbytes per row, 16-bit big-endian)
  std::vector<png_color> palette;
  Bytes trns_alpha;  // palette tRNS
  bool trns_color = false;
  png_color_16 trns{};  // gray / RGB tRNS
};

inline Bytes write_png(const PngSpec& spec) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, size_t n) {
        auto* o = static_cast<Bytes*>(png_get_io_ptr(p));
        o->insert(o->end(), data, data + n);
      },
      [](png_structp) {});
  png_set_IHDR(png, info, static_cast<png_uint_32>(spec.width),
               static_cast<png_uint_32>(spec.height), spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) {
    png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  }
  if (!spec.trns_alpha.empty()) {
    png_set_tRNS(png, info, spec.trns_alpha.data(), static_cast<int>(spec.trns_alpha.size()),
                 nullptr);
  } else if (spec.trns_color) {
    png_set_tRNS(png, info, nullptr, 0, &spec.trns);
  }
  png_write_info(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  std::vector<png_bytep> rows(static_cast<size_t>(spec.height));
  for (int y = 0; y < spec.height; ++y) {
    rows[static_cast<size_t>(y)] = const_cast<uint8_t*>(spec.rows.data()) + rowbytes * y;
  }
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

struct JpegSpec {
  int width = 1;
  int height = 1;
  int components = 3;
  J_COLOR_SPACE in_space = JCS_RGB;
  J_COLOR_SPACE jpeg_space = JCS_YCbCr;  // what the file stores
  Bytes pixels;                          // width * height * components
  int quality = 95;
  bool progressive = false;
  std::vector<jpeg_scan_info> scans;  // custom scan script when not empty
};

inline Bytes write_jpeg(const JpegSpec& spec) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = static_cast<JDIMENSION>(spec.width);
  cinfo.image_height = static_cast<JDIMENSION>(spec.height);
  cinfo.input_components = spec.components;
  cinfo.in_color_space = spec.in_space;
  jpeg_set_defaults(&cinfo);
  jpeg_set_colorspace(&cinfo, spec.jpeg_space);
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  if (!spec.scans.empty()) {
    cinfo.scan_info = spec.scans.data();
    cinfo.num_scans = static_cast<int>(spec.scans.size());
  }
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(spec.width) * spec.components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(spec.pixels.data()) + stride * cinfo.next_scanline;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes out(buf, buf + size);
  std::free(buf);
  return out;
}

inline Bytes rgb_jpeg(const Image& rgb, bool progressive = false) {
  JpegSpec spec;
  spec.width = rgb.width;
  spec.height = rgb.height;
  spec.pixels = rgb.pixels;
  spec.progressive = progressive;
  return write_jpeg(spec);
}

// An EXIF block ("Exif\0\0" + TIFF, or TIFF alone) whose IFD0 holds an ImageWidth entry and
// then the orientation (tag 0x0112, SHORT), in either byte order.
inline Bytes exif_block(int orientation, bool big_endian, bool with_prefix = true) {
  Bytes out;
  if (with_prefix) out.insert(out.end(), {'E', 'x', 'i', 'f', 0, 0});
  auto u16 = [&](uint32_t v) {
    if (big_endian) {
      out.insert(out.end(), {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
    } else {
      out.insert(out.end(), {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)});
    }
  };
  auto u32 = [&](uint32_t v) {
    if (big_endian) {
      put_be32(&out, v);
    } else {
      put_le(&out, v, 4);
    }
  };
  append(&out, big_endian ? "MM" : "II");
  u16(42);
  u32(8);  // IFD0 right after the header
  u16(2);  // two entries: an unrelated one (ImageWidth), then the orientation
  u16(0x0100);
  u16(4);  // LONG
  u32(1);
  u32(48);
  u16(0x0112);
  u16(3);  // SHORT
  u32(1);
  u16(static_cast<uint32_t>(orientation));
  u16(0);  // padding of the value field
  u32(0);  // no next IFD
  return out;
}

// Inserts an APP1 segment with `payload` right after the SOI marker.
inline Bytes insert_app1(Bytes jpeg, const Bytes& payload) {
  Bytes seg = {0xFF, 0xE1, static_cast<uint8_t>((payload.size() + 2) >> 8),
               static_cast<uint8_t>(payload.size() + 2)};
  seg.insert(seg.end(), payload.begin(), payload.end());
  jpeg.insert(jpeg.begin() + 2, seg.begin(), seg.end());
  return jpeg;
}

inline Bytes lossless_webp(const Image& img) {
  uint8_t* out = nullptr;
  const int stride = img.width * img.channels;
  const size_t n =
      img.channels == 4
          ? WebPEncodeLosslessRGBA(img.pixels.data(), img.width, img.height, stride, &out)
          : WebPEncodeLosslessRGB(img.pixels.data(), img.width, img.height, stride, &out);
  Bytes bytes(out, out + n);
  WebPFree(out);
  return bytes;
}

// A RIFF chunk, padded to an even size.
inline Bytes riff_chunk(std::string_view fourcc, const Bytes& body) {
  Bytes out;
  append(&out, fourcc);
  put_le(&out, static_cast<uint32_t>(body.size()), 4);
  out.insert(out.end(), body.begin(), body.end());
  if (body.size() % 2 == 1) out.push_back(0);
  return out;
}

inline Bytes riff_webp(const std::vector<Bytes>& chunks) {
  Bytes body;
  append(&body, "WEBP");
  for (const Bytes& c : chunks) body.insert(body.end(), c.begin(), c.end());
  Bytes out;
  append(&out, "RIFF");
  put_le(&out, static_cast<uint32_t>(body.size()), 4);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// The first chunk after the RIFF header of a simple WebP ("VP8 " or "VP8L"), whole.
inline Bytes webp_image_chunk(const Bytes& webp) {
  const uint32_t len = webp[16] | (webp[17] << 8) | (webp[18] << 16) | (uint32_t{webp[19]} << 24);
  return Bytes(webp.begin() + 12, webp.begin() + 20 + len + (len & 1));
}

// The VP8X chunk of an extended WebP; `flags` as in its header (0x08 EXIF, 0x10 alpha,
// 0x02 animation).
inline Bytes vp8x_header(uint8_t flags, int width, int height) {
  Bytes body = {flags, 0, 0, 0};
  put_le(&body, static_cast<uint32_t>(width - 1), 3);
  put_le(&body, static_cast<uint32_t>(height - 1), 3);
  return riff_chunk("VP8X", body);
}

// Two frames of `simple`'s image in an animated WebP.
inline Bytes animated_webp(const Bytes& simple, int width, int height) {
  Bytes anim = {255, 255, 255, 255, 0, 0};  // background colour, loop forever
  std::vector<Bytes> chunks = {vp8x_header(0x02, width, height), riff_chunk("ANIM", anim)};
  for (int i = 0; i < 2; ++i) {
    Bytes frame;
    put_le(&frame, 0, 3);  // x / 2
    put_le(&frame, 0, 3);  // y / 2
    put_le(&frame, static_cast<uint32_t>(width - 1), 3);
    put_le(&frame, static_cast<uint32_t>(height - 1), 3);
    put_le(&frame, 100, 3);  // duration ms
    frame.push_back(0);
    const Bytes image = webp_image_chunk(simple);
    frame.insert(frame.end(), image.begin(), image.end());
    chunks.push_back(riff_chunk("ANMF", frame));
  }
  return riff_webp(chunks);
}

}  // namespace atelier::image::testing
