// Upload decoding (image_decode.h): sniffing, header probes for PNG and WebP, EXIF orientation,
// WebP decoding, and the decode_upload pipeline. JPEG is in jpeg_decode.cpp, PNG pixels in
// png.cpp (decode_png_limited).
#include "common/image_decode.h"

#include <webp/decode.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "common/image_decode_detail.h"
#include "common/jpeg_decode.h"

namespace atelier::image {
namespace {

bool starts_with(std::span<const uint8_t> b, std::string_view magic, size_t at = 0) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

uint32_t le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}

Status file_error(std::string message) {
  return Status::invalid_argument(std::move(message), "file");
}

Status corrupt(const std::string& codec_message) {
  return file_error("the file is truncated or corrupt (" + codec_message + ")");
}

// Known formats that are refused, by their magic bytes; empty when unrecognised.
std::string_view refused_format(std::span<const uint8_t> b) {
  using namespace std::string_view_literals;
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) return "GIF";
  if (starts_with(b, "II*\0"sv) || starts_with(b, "MM\0*"sv)) return "TIFF";
  if (starts_with(b, "BM") && b.size() >= 26) return "BMP";
  if (starts_with(b, "\0\0\1\0"sv)) return "ICO";
  if (starts_with(b, "%PDF-")) return "PDF";
  if (starts_with(b, "8BPS")) return "PSD";
  if (starts_with(b, "qoif")) return "QOI";
  if (starts_with(b, "\xff\x0a") || starts_with(b, "\0\0\0\x0cJXL \r\n\x87\n"sv)) return "JPEG XL";
  if (starts_with(b, "\0\0\0\x0cjP  \r\n\x87\n"sv) || starts_with(b, "\xff\x4f\xff\x51")) {
    return "JPEG 2000";
  }
  if (starts_with(b, "ftyp", 4)) {
    for (std::string_view brand : {"avif", "avis"}) {
      if (starts_with(b, brand, 8)) return "AVIF";
    }
    for (std::string_view brand : {"heic", "heix", "hevc", "heim", "heis", "mif1", "msf1"}) {
      if (starts_with(b, brand, 8)) return "HEIC";
    }
  }
  // Text markup: SVG, or XML / HTML in general (after an optional UTF-8 BOM and white space).
  size_t i = starts_with(b, "\xef\xbb\xbf") ? 3 : 0;
  while (i < b.size() && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) ++i;
  if (i < b.size() && b[i] == '<') {
    const std::string_view head(reinterpret_cast<const char*>(b.data()),
                                std::min<size_t>(b.size(), 4096));
    return head.find("<svg") != std::string_view::npos ? "SVG" : "XML or HTML text";
  }
  return {};
}

// ---- PNG header -------------------------------------------------------------------------------

bool valid_png_depth(uint8_t color_type, uint8_t depth) {
  switch (color_type) {
    case 0:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
      return depth == 8 || depth == 16;
    default:
      return false;
  }
}

// IHDR, then the chunks that follow as far as they are present: acTL before the image data
// (APNG), tRNS, eXIf. Chunk contents are not CRC-checked here; the decode does that.
Result<ImageProbe> probe_png(std::span<const uint8_t> b) {
  constexpr size_t kIhdrEnd = 8 + 8 + 13 + 4;  // signature, length + type, data, CRC
  if (b.size() < kIhdrEnd - 4) return corrupt("png: header cut short");
  if (be32(b.data() + 8) != 13 || !starts_with(b, "IHDR", 12)) {
    return corrupt("png: IHDR is not the first chunk");
  }
  const uint32_t width = be32(b.data() + 16);
  const uint32_t height = be32(b.data() + 20);
  const uint8_t depth = b[24];
  const uint8_t color_type = b[25];
  if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu) {
    return corrupt("png: invalid image size");
  }
  if (!valid_png_depth(color_type, depth) || b[26] != 0 || b[27] != 0 || b[28] > 1) {
    return corrupt("png: invalid IHDR");
  }
  ImageProbe probe{ImageFormat::kPng,
                   static_cast<int>(width),
                   static_cast<int>(height),
                   color_type >= 4,
                   false,
                   1};
  bool seen_idat = false;
  bool seen_exif = false;
  size_t pos = kIhdrEnd;
  while (b.size() >= pos + 12) {
    const uint32_t length = be32(b.data() + pos);
    if (length > b.size() - pos - 12) break;  // cut short: the decode reports it
    const std::span<const uint8_t> body = b.subspan(pos + 8, length);
    if (starts_with(b, "IDAT", pos + 4)) {
      seen_idat = true;
    } else if (starts_with(b, "IEND", pos + 4)) {
      break;
    } else if (starts_with(b, "acTL", pos + 4) && !seen_idat) {
      probe.animated = true;  // after IDAT it is ignored by APNG readers: a still image
    } else if (starts_with(b, "tRNS", pos + 4) && !seen_idat) {
      probe.has_alpha = true;
    } else if (starts_with(b, "eXIf", pos + 4) && !seen_exif) {
      seen_exif = true;
      probe.orientation = detail::exif_orientation(body);
    }
    pos += 12 + static_cast<size_t>(length);
  }
  return probe;
}

// ---- WebP -------------------------------------------------------------------------------------

std::string webp_status(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY:
      return "webp: out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "webp: invalid parameter";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "webp: unsupported feature";
    case VP8_STATUS_NOT_ENOUGH_DATA:
    case VP8_STATUS_SUSPENDED:
      return "webp: not enough data";
    default:
      return "webp: bitstream error";
  }
}

// The EXIF chunk of the RIFF container, walked within the bytes present (the RIFF size field is
// not trusted).
int webp_orientation(std::span<const uint8_t> b) {
  size_t pos = 12;
  while (b.size() >= pos + 8) {
    const uint32_t length = le32(b.data() + pos + 4);
    if (length > b.size() - pos - 8) break;
    if (starts_with(b, "EXIF", pos)) return detail::exif_orientation(b.subspan(pos + 8, length));
    pos += 8 + static_cast<size_t>(length) + (length & 1u);  // chunks are padded to even sizes
  }
  return 1;
}

Result<ImageProbe> probe_webp(std::span<const uint8_t> b) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(b.data(), b.size(), &features);
  if (status != VP8_STATUS_OK) return corrupt(webp_status(status));
  if (features.width < 1 || features.height < 1) return corrupt("webp: invalid image size");
  return ImageProbe{
      ImageFormat::kWebp,          features.width,     features.height, features.has_alpha != 0,
      features.has_animation != 0, webp_orientation(b)};
}

// Decodes into a buffer of the probed size; libwebp refuses a bitstream that does not fit it.
Result<Image> decode_webp(std::span<const uint8_t> b, const ImageProbe& probe) {
  Image img{probe.width, probe.height, probe.has_alpha ? 4 : 3, {}};
  const size_t stride = static_cast<size_t>(img.width) * static_cast<size_t>(img.channels);
  img.pixels.resize(stride * static_cast<size_t>(img.height));
  WebPDecoderConfig config;
  if (WebPInitDecoderConfig(&config) == 0) return Status::internal("webp: version mismatch");
  config.output.colorspace = probe.has_alpha ? MODE_RGBA : MODE_RGB;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = img.pixels.data();
  config.output.u.RGBA.stride = static_cast<int>(stride);
  config.output.u.RGBA.size = img.pixels.size();
  const VP8StatusCode status = WebPDecode(b.data(), b.size(), &config);
  WebPFreeDecBuffer(&config.output);  // frees nothing of ours (external memory)
  if (status != VP8_STATUS_OK) return Status::invalid_argument(webp_status(status));
  return img;
}

// ---- Pixels -----------------------------------------------------------------------------------

Status check_limits(int width, int height, const UploadLimits& limits) {
  const int max_side = std::clamp(limits.max_side, 0, kMaxDimension);
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width > max_side || height > max_side) {
    return file_error("the image is " + size + " pixels: each side at most " +
                      std::to_string(max_side));
  }
  const int64_t pixels = int64_t{width} * height;
  if (pixels > limits.max_pixels) {
    return file_error("the image is " + size + " = " + std::to_string(pixels) +
                      " pixels, more than max_upload_pixels (" + std::to_string(limits.max_pixels) +
                      ")");
  }
  return Status::ok();
}

// EXIF orientation: output pixel (X, Y) comes from source (x, y) = (ax X + bx Y + cx,
// ay X + by Y + cy), per the TIFF definitions of values 2..8 (5..8 swap the sides).
Image apply_orientation(Image src, int orientation) {
  if (orientation < 2 || orientation > 8) return src;
  struct Map {
    int ax, bx, ay, by;
    bool flip_x, flip_y;  // cx = W - 1, cy = H - 1 (else 0)
  };
  static constexpr Map kMaps[9] = {{},
                                   {},
                                   {-1, 0, 0, 1, true, false},
                                   {-1, 0, 0, -1, true, true},
                                   {1, 0, 0, -1, false, true},
                                   {0, 1, 1, 0, false, false},
                                   {0, 1, -1, 0, false, true},
                                   {0, -1, -1, 0, true, true},
                                   {0, -1, 1, 0, true, false}};
  const Map& m = kMaps[orientation];
  const bool swap = orientation >= 5;
  const ptrdiff_t ch = src.channels;
  const ptrdiff_t src_stride = ptrdiff_t{src.width} * ch;
  Image out{swap ? src.height : src.width, swap ? src.width : src.height, src.channels, {}};
  out.pixels.resize(src.pixels.size());
  const ptrdiff_t cx = m.flip_x ? src.width - 1 : 0;
  const ptrdiff_t cy = m.flip_y ? src.height - 1 : 0;
  const ptrdiff_t step = m.ax * ch + m.ay * src_stride;
  uint8_t* dst = out.pixels.data();
  for (ptrdiff_t y = 0; y < out.height; ++y) {
    ptrdiff_t at = (m.bx * y + cx) * ch + (m.by * y + cy) * src_stride;
    for (ptrdiff_t x = 0; x < out.width; ++x, at += step, dst += ch) {
      std::memcpy(dst, src.pixels.data() + at, static_cast<size_t>(ch));
    }
  }
  return out;
}

// RGBA is kept only when asked and some pixel is not opaque; otherwise composited over white
// (a no-op for opaque pixels) and returned as RGB.
Image finish_alpha(Image img, AlphaMode mode) {
  if (img.channels != 4) return img;
  const size_t n = static_cast<size_t>(img.width) * static_cast<size_t>(img.height);
  if (mode == AlphaMode::kKeep) {
    for (size_t i = 0; i < n; ++i) {
      if (img.pixels[i * 4 + 3] != 255) return img;
    }
  }
  Image out{img.width, img.height, 3, std::vector<uint8_t>(n * 3)};
  for (size_t i = 0; i < n; ++i) {
    const unsigned a = img.pixels[i * 4 + 3];
    for (size_t c = 0; c < 3; ++c) {
      const unsigned v = img.pixels[i * 4 + c];
      out.pixels[i * 3 + c] = static_cast<uint8_t>((v * a + 255 * (255 - a) + 127) / 255);
    }
  }
  return out;
}

Result<Image> decode_pixels(std::span<const uint8_t> bytes, const ImageProbe& probe,
                            const UploadLimits& limits) {
  switch (probe.format) {
    case ImageFormat::kPng:
      return decode_png_limited(bytes, limits);
    case ImageFormat::kJpeg:
      return detail::decode_jpeg(bytes, limits);
    case ImageFormat::kWebp:
      return decode_webp(bytes, probe);
  }
  return Status::internal("unknown image format");
}

}  // namespace

namespace detail {

int exif_orientation(std::span<const uint8_t> e) {
  using namespace std::string_view_literals;
  if (starts_with(e, "Exif\0\0"sv)) e = e.subspan(6);
  if (e.size() < 8) return 1;
  bool little;
  if (starts_with(e, "II")) {
    little = true;
  } else if (starts_with(e, "MM")) {
    little = false;
  } else {
    return 1;
  }
  // Callers check at + 2 (or 4) <= e.size().
  auto u16 = [&](size_t at) {
    return little ? uint32_t{e[at]} | (uint32_t{e[at + 1]} << 8)
                  : (uint32_t{e[at]} << 8) | uint32_t{e[at + 1]};
  };
  auto u32 = [&](size_t at) { return little ? le32(e.data() + at) : be32(e.data() + at); };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd + 2 > e.size()) return 1;
  const uint32_t count = u16(static_cast<size_t>(ifd));
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t entry = ifd + 2 + uint64_t{12} * i;
    if (entry + 12 > e.size()) break;
    const auto at = static_cast<size_t>(entry);
    if (u16(at) != 0x0112) continue;
    if (u16(at + 2) != 3 || u32(at + 4) < 1) return 1;  // must be one SHORT
    const uint32_t value = u16(at + 8);                 // left-justified in the value field
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

}  // namespace detail

std::string_view format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kWebp:
      return "WebP";
  }
  return "?";
}

Result<ImageFormat> sniff_format(std::span<const uint8_t> bytes) {
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n")) return ImageFormat::kPng;
  if (starts_with(bytes, "\xff\xd8\xff")) return ImageFormat::kJpeg;
  if (starts_with(bytes, "RIFF") && starts_with(bytes, "WEBP", 8)) return ImageFormat::kWebp;
  const std::string_view refused = refused_format(bytes);
  if (!refused.empty()) {
    return Status::invalid_argument(
        std::string(refused) + " is not accepted; send PNG, JPEG or WebP", "Content-Type");
  }
  return file_error("the file is not a PNG, JPEG or WebP image");
}

Result<ImageProbe> probe_image(std::span<const uint8_t> bytes) {
  ATELIER_ASSIGN_OR_RETURN(const ImageFormat format, sniff_format(bytes));
  switch (format) {
    case ImageFormat::kPng:
      return probe_png(bytes);
    case ImageFormat::kJpeg: {
      auto probe = detail::probe_jpeg(bytes);
      if (!probe.is_ok()) return corrupt(probe.status().message());
      return probe;
    }
    case ImageFormat::kWebp:
      return probe_webp(bytes);
  }
  return Status::internal("unknown image format");
}

Result<Image> decode_upload(std::span<const uint8_t> bytes, ImageFormat declared,
                            const UploadLimits& limits, AlphaMode alpha) {
  auto sniffed = sniff_format(bytes);
  if (!sniffed.is_ok()) {
    if (sniffed.status().field() != "Content-Type") return sniffed.status();
    return Status(StatusCode::kFailedPrecondition, sniffed.status().message(), "Content-Type");
  }
  if (*sniffed != declared) {
    return Status(StatusCode::kFailedPrecondition,
                  "the file is a " + std::string(format_name(*sniffed)) + ", not the declared " +
                      std::string(format_name(declared)),
                  "Content-Type");
  }
  ATELIER_ASSIGN_OR_RETURN(const ImageProbe probe, probe_image(bytes));
  if (probe.animated) {
    return file_error(std::string("animated images are not accepted (") +
                      (probe.format == ImageFormat::kPng ? "APNG" : "animated WebP") +
                      "); send a single frame as PNG, JPEG or WebP");
  }
  ATELIER_RETURN_IF_ERROR(check_limits(probe.width, probe.height, limits));
  try {
    auto decoded = decode_pixels(bytes, probe, limits);
    if (!decoded.is_ok()) {
      if (decoded.status().code() == StatusCode::kResourceExhausted) {
        return Status(StatusCode::kResourceExhausted, decoded.status().message(), "file");
      }
      return corrupt(decoded.status().message());
    }
    if (decoded->width != probe.width || decoded->height != probe.height) {
      return corrupt(std::string(format_name(probe.format)) + ": size differs from the header");
    }
    Image upright = apply_orientation(std::move(*decoded), probe.orientation);
    ATELIER_RETURN_IF_ERROR(check_limits(upright.width, upright.height, limits));
    return finish_alpha(std::move(upright), alpha);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "out of memory decoding the image", "file");
  }
}

}  // namespace atelier::image
