// Image files for the upload tests, built in memory: plain PNG, JPEG and WebP from the project's
// encoders, and the awkward ones no encoder here writes: a JPEG with an EXIF orientation and a
// GPS block, an APNG and an animated WebP. Header-only; throws std::runtime_error when an
// encoder fails (GoogleTest reports it with the test's name).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/image.h"

namespace atelier::uploadtest {

inline std::string text_of(const std::vector<uint8_t>& bytes) {
  return {bytes.begin(), bytes.end()};
}
inline std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A smooth image (lossy codecs keep it within a few levels); `seed` shifts the pattern so that
// different seeds give different bytes.
inline image::Image gradient(int width, int height, int channels = 3, int seed = 0) {
  image::Image img{width, height, channels, {}};
  img.pixels.resize(static_cast<size_t>(width) * height * channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &img.pixels[(static_cast<size_t>(y) * width + x) * channels];
      p[0] = static_cast<uint8_t>((x * 255 / std::max(1, width - 1) + seed) % 256);
      p[1] = static_cast<uint8_t>((y * 255 / std::max(1, height - 1) + 3 * seed) % 256);
      p[2] = static_cast<uint8_t>(128 + seed % 64);
      if (channels == 4) p[3] = 255;
    }
  }
  return img;
}

// Left half one colour, right half another (RGB).
inline image::Image halves(int width, int height, std::array<uint8_t, 3> left,
                           std::array<uint8_t, 3> right) {
  image::Image img{width, height, 3, {}};
  img.pixels.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const auto& c = x < width / 2 ? left : right;
      std::copy(c.begin(), c.end(), &img.pixels[(static_cast<size_t>(y) * width + x) * 3]);
    }
  }
  return img;
}

template <typename R>
std::string must(R result, const char* what) {
  if (!result.is_ok())
    throw std::runtime_error(std::string(what) + ": " + result.status().to_string());
  return text_of(*result);
}
inline std::string png_of(const image::Image& img) {
  return must(image::encode_png(img), "encode_png");
}
inline std::string jpeg_of(const image::Image& img, int quality = 95) {
  return must(image::encode_jpeg(img, quality), "encode_jpeg");
}
inline std::string webp_of(const image::Image& img, int quality = 90) {
  return must(image::encode_webp(img, quality), "encode_webp");
}
inline image::Image decode_png_text(const std::string& png) {
  auto img = image::decode_png(bytes_of(png));
  if (!img.is_ok()) throw std::runtime_error("decode_png: " + img.status().to_string());
  return std::move(*img);
}

// The mean absolute difference per channel value; images must have the same shape.
inline double mean_abs_diff(const image::Image& a, const image::Image& b) {
  if (a.width != b.width || a.height != b.height || a.channels != b.channels) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(a.pixels[i] - b.pixels[i]);
  return a.pixels.empty() ? 0 : sum / static_cast<double>(a.pixels.size());
}

inline const uint8_t* pixel(const image::Image& img, int x, int y) {
  return &img.pixels[(static_cast<size_t>(y) * img.width + x) * img.channels];
}

// --- byte-level builders ----------------------------------------------------------------------

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
inline std::string be16(uint32_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v)};
}
inline std::string le32(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
          static_cast<char>(v >> 24)};
}
inline std::string le24(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16)};
}
inline std::string le16(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8)};
}

inline uint32_t crc32(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

struct PngChunk {
  std::string type;
  std::string data;
};
inline constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);

// The chunks of a well-formed PNG, in order.
inline std::vector<PngChunk> png_chunks(const std::string& png) {
  std::vector<PngChunk> out;
  size_t at = kPngSignature.size();
  while (at + 12 <= png.size()) {
    const auto* p = reinterpret_cast<const unsigned char*>(png.data() + at);
    const uint32_t len = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (p[2] << 8) | p[3];
    out.push_back({png.substr(at + 4, 4), png.substr(at + 8, len)});
    at += 12 + len;
  }
  return out;
}
inline std::string png_from_chunks(const std::vector<PngChunk>& chunks) {
  std::string out(kPngSignature);
  for (const PngChunk& c : chunks) {
    out +=
        be32(static_cast<uint32_t>(c.data.size())) + c.type + c.data + be32(crc32(c.type + c.data));
  }
  return out;
}

// An APNG of two frames (both `img`): acTL and fcTL before IDAT, fcTL and fdAT after it.
inline std::string apng_of(const image::Image& img) {
  const auto w = static_cast<uint32_t>(img.width), h = static_cast<uint32_t>(img.height);
  auto fctl = [&](uint32_t seq) {
    return PngChunk{"fcTL", be32(seq) + be32(w) + be32(h) + be32(0) + be32(0) + be16(1) + be16(10) +
                                std::string(2, '\0')};
  };
  std::vector<PngChunk> out;
  std::string idat;
  for (const PngChunk& c : png_chunks(png_of(img))) {
    if (c.type == "IDAT") {
      if (idat.empty()) {
        out.push_back({"acTL", be32(2) + be32(0)});
        out.push_back(fctl(0));
      }
      idat += c.data;
    }
    if (c.type == "IEND") {
      out.push_back(fctl(1));
      out.push_back({"fdAT", be32(2) + idat});
    }
    out.push_back(c);
  }
  return png_from_chunks(out);
}

inline std::string riff_chunk(std::string_view fourcc, const std::string& data) {
  std::string out = std::string(fourcc) + le32(static_cast<uint32_t>(data.size())) + data;
  if (data.size() % 2) out += '\0';
  return out;
}

// An animated WebP of two frames (both `img`): VP8X with the animation flag, ANIM, two ANMF.
inline std::string animated_webp_of(const image::Image& img) {
  const std::string still = webp_of(img);
  const std::string frame_chunks = still.substr(12);  // after "RIFF" size "WEBP"
  const auto w = static_cast<uint32_t>(img.width - 1), h = static_cast<uint32_t>(img.height - 1);
  std::string body = "WEBP";
  body += riff_chunk("VP8X", std::string(1, '\x02') + std::string(3, '\0') + le24(w) + le24(h));
  body += riff_chunk("ANIM", le32(0xFFFFFFFFu) + le16(0));
  for (int i = 0; i < 2; ++i) {
    body += riff_chunk("ANMF", le24(0) + le24(0) + le24(w) + le24(h) + le24(100) +
                                   std::string(1, '\0') + frame_chunks);
  }
  return "RIFF" + le32(static_cast<uint32_t>(body.size())) + body;
}

// An EXIF APP1 segment (little-endian TIFF): IFD0 with Orientation and a GPS IFD pointer; the
// GPS IFD has a latitude and `gps_marker` as its map datum, so a test can look for those bytes.
inline std::string exif_app1(int orientation, const std::string& gps_marker) {
  std::string tiff = "II" + le16(42) + le32(8);
  // IFD0 at 8: 2 entries -> 2 + 24 + 4 = 30 bytes; the GPS IFD follows at 38.
  constexpr uint32_t kGpsIfd = 38;
  auto entry = [](uint16_t tag, uint16_t type, uint32_t count, const std::string& value4) {
    return le16(tag) + le16(type) + le32(count) + value4;
  };
  tiff += le16(2);
  tiff += entry(0x0112, 3, 1, le16(static_cast<uint32_t>(orientation)) + le16(0));
  tiff += entry(0x8825, 4, 1, le32(kGpsIfd));
  tiff += le32(0);
  // GPS IFD: 3 entries -> 2 + 36 + 4 = 42 bytes; its data follows at 80.
  constexpr uint32_t kLatitude = kGpsIfd + 42;
  constexpr uint32_t kDatum = kLatitude + 24;
  tiff += le16(3);
  tiff += entry(0x0001, 2, 2, std::string("N\0\0\0", 4));
  tiff += entry(0x0002, 5, 3, le32(kLatitude));
  tiff += entry(0x0012, 2, static_cast<uint32_t>(gps_marker.size() + 1), le32(kDatum));
  tiff += le32(0);
  tiff += le32(51) + le32(1) + le32(30) + le32(1) + le32(1234) + le32(100);
  tiff += gps_marker + std::string(1, '\0');
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  return "\xFF\xE1" + be16(static_cast<uint32_t>(payload.size() + 2)) + payload;
}

// `jpeg` with an EXIF segment right after its SOI marker, where cameras put it.
inline std::string with_exif(const std::string& jpeg, int orientation,
                             const std::string& gps_marker) {
  return jpeg.substr(0, 2) + exif_app1(orientation, gps_marker) + jpeg.substr(2);
}

}  // namespace atelier::uploadtest
