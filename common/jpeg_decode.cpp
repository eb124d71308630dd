// JPEG probing and decoding of untrusted files (jpeg_decode.h), on libjpeg-turbo.
//
// Hostile-input measures, as libjpeg-turbo's documentation advises for untrusted data: errors
// longjmp back here instead of exit(); warnings that mean lost or corrupt data are errors (a
// truncated file would otherwise decode to grey); a progress monitor caps the number of scans;
// max_memory_to_use caps the whole-image coefficient buffers of progressive files (there is no
// backing store, so a request above it fails).
#include "common/jpeg_decode.h"

#include <jerror.h>
#include <jpeglib.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/image_decode_detail.h"

namespace atelier::image::detail {
namespace {

// ---- libjpeg plumbing -------------------------------------------------------------------------
//
// jpeg_read_impl calls setjmp and holds no local with a destructor; what it fills is owned by
// its caller, so a longjmp back into it skips only libjpeg's frames.

struct JpegReadError {
  jpeg_error_mgr mgr;  // First member: libjpeg hands us a jpeg_error_mgr*.
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void fail_with(j_common_ptr cinfo, const char* message) {
  auto* err = reinterpret_cast<JpegReadError*>(cinfo->err);
  std::snprintf(err->message, sizeof(err->message), "%s", message);
  std::longjmp(err->jump, 1);
}

[[noreturn]] void error_exit_cb(j_common_ptr cinfo) {
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  fail_with(cinfo, message);
}

// Warnings about metadata or padding: the image data is intact.
bool benign_warning(int code) {
  return code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC || code == JWRN_EXTRANEOUS_DATA ||
         code == JWRN_JFIF_MAJOR;
}

void emit_message_cb(j_common_ptr cinfo, int msg_level) {
  // Level -1 is a warning; >= 0 are trace messages, never shown.
  if (msg_level < 0 && !benign_warning(cinfo->err->msg_code)) error_exit_cb(cinfo);
}

void output_message_cb(j_common_ptr) {}  // Never print to stderr.

void progress_cb(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<JpegReadError*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d scans", kMaxJpegScans);
    std::longjmp(err->jump, 1);
  }
}

// Inputs and outputs of one jpeg_read_impl call, owned by its caller.
struct JpegJob {
  const uint8_t* data = nullptr;
  size_t size = 0;
  const UploadLimits* limits = nullptr;  // null: read the header only
  ImageProbe probe{};
  Image* out = nullptr;
  std::vector<uint8_t>* cmyk_row = nullptr;
};

int read_orientation(jpeg_decompress_struct* cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
        std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      return exif_orientation(std::span<const uint8_t>(m->data, m->data_length));
    }
  }
  return 1;
}

// Whole-image buffers libjpeg may need for this header: the coefficients of a progressive or
// multi-scan file (2 bytes per sample, MCU padding included) plus strip buffers and tables.
long memory_cap(const jpeg_decompress_struct* cinfo) {
  const uint64_t padded =
      (uint64_t{cinfo->image_width} + 64) * (uint64_t{cinfo->image_height} + 64);
  const uint64_t components = static_cast<uint64_t>(cinfo->num_components);
  return static_cast<long>(padded * components * 2 + (16u << 20));
}

int jpeg_read_impl(jpeg_decompress_struct* cinfo, JpegReadError* err, jpeg_progress_mgr* progress,
                   JpegJob* job) {
  if (setjmp(err->jump)) return 0;
  jpeg_create_decompress(cinfo);
  cinfo->progress = progress;
  jpeg_mem_src(cinfo, job->data, static_cast<unsigned long>(job->size));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(cinfo, TRUE);
  job->probe = ImageProbe{ImageFormat::kJpeg,
                          static_cast<int>(cinfo->image_width),
                          static_cast<int>(cinfo->image_height),
                          false,
                          false,
                          read_orientation(cinfo)};
  if (job->limits == nullptr) return 1;

  const uint64_t w = cinfo->image_width;
  const uint64_t h = cinfo->image_height;
  const auto max_side = static_cast<uint64_t>(std::clamp(job->limits->max_side, 0, kMaxDimension));
  if (w > max_side || h > max_side ||
      w * h > static_cast<uint64_t>(std::max<int64_t>(job->limits->max_pixels, 0))) {
    fail_with(reinterpret_cast<j_common_ptr>(cinfo), "image over the size limits");
  }
  bool cmyk = false;
  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo->out_color_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo->out_color_space = JCS_CMYK;
      cmyk = true;
      break;
    default:
      fail_with(reinterpret_cast<j_common_ptr>(cinfo), "unsupported colour space");
  }
  if (cinfo->num_components > 4) {
    fail_with(reinterpret_cast<j_common_ptr>(cinfo), "too many components");
  }
  cinfo->mem->max_memory_to_use = memory_cap(cinfo);
  jpeg_start_decompress(cinfo);
  if (cinfo->output_width != w || cinfo->output_height != h ||
      cinfo->output_components != (cmyk ? 4 : 3)) {
    fail_with(reinterpret_cast<j_common_ptr>(cinfo), "unexpected output layout");
  }
  Image& out = *job->out;
  out.width = static_cast<int>(w);
  out.height = static_cast<int>(h);
  out.channels = 3;
  const size_t stride = static_cast<size_t>(w) * 3;
  out.pixels.resize(stride * h);  // may throw bad_alloc: no libjpeg frame is active here
  if (cmyk) job->cmyk_row->resize(static_cast<size_t>(w) * 4);
  // Adobe's writers (Photoshop) store CMYK inverted and say so with their APP14 marker.
  const bool inverted = cinfo->saw_Adobe_marker;
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* dst = out.pixels.data() + stride * cinfo->output_scanline;
    JSAMPROW row = cmyk ? job->cmyk_row->data() : dst;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      fail_with(reinterpret_cast<j_common_ptr>(cinfo), "no scanline read");
    }
    if (!cmyk) continue;
    for (size_t x = 0; x < w; ++x) {
      const uint8_t* p = row + x * 4;
      const unsigned k = inverted ? p[3] : 255u - p[3];
      for (int c = 0; c < 3; ++c) {
        const unsigned v = inverted ? p[c] : 255u - p[c];
        dst[x * 3 + c] = static_cast<uint8_t>((v * k + 127) / 255);
      }
    }
  }
  jpeg_finish_decompress(cinfo);
  return 1;
}

// Owns the decompressor so that every exit path (bad_alloc included) frees it. jpeg_destroy on
// a zeroed struct (creation never reached) is a no-op.
struct JpegReadGuard {
  jpeg_decompress_struct cinfo;
  JpegReadError err;
  jpeg_progress_mgr progress;
  JpegReadGuard() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    std::memset(&err, 0, sizeof(err));
    std::memset(&progress, 0, sizeof(progress));
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = error_exit_cb;
    err.mgr.emit_message = emit_message_cb;
    err.mgr.output_message = output_message_cb;
    progress.progress_monitor = progress_cb;
  }
  ~JpegReadGuard() { jpeg_destroy_decompress(&cinfo); }
  JpegReadGuard(const JpegReadGuard&) = delete;
  JpegReadGuard& operator=(const JpegReadGuard&) = delete;
};

Status run(JpegJob* job) {
  auto g = std::make_unique<JpegReadGuard>();  // ~1 KiB of libjpeg state: off the stack
  try {
    if (jpeg_read_impl(&g->cinfo, &g->err, &g->progress, job) == 0) {
      return Status::invalid_argument(std::string("jpeg: ") + g->err.message);
    }
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "jpeg: out of memory decoding image");
  }
  return Status::ok();
}

}  // namespace

Result<ImageProbe> probe_jpeg(std::span<const uint8_t> bytes) {
  JpegJob job;
  job.data = bytes.data();
  job.size = bytes.size();
  ATELIER_RETURN_IF_ERROR(run(&job));
  return job.probe;
}

Result<Image> decode_jpeg(std::span<const uint8_t> bytes, const UploadLimits& limits) {
  Image out;
  std::vector<uint8_t> cmyk_row;
  JpegJob job;
  job.data = bytes.data();
  job.size = bytes.size();
  job.limits = &limits;
  job.out = &out;
  job.cmyk_row = &cmyk_row;
  ATELIER_RETURN_IF_ERROR(run(&job));
  return out;
}

}  // namespace atelier::image::detail
