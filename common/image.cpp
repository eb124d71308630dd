#include "common/image.h"

#include <jerror.h>
#include <jpeglib.h>
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
