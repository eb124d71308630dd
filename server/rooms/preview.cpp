#include "server/rooms/preview.h"

#include <cstring>

namespace atelier::rooms {

namespace {

constexpr char kMagic[4] = {'A', 'T', 'P', 'V'};
constexpr uint8_t kLayoutVersion = 1;

void put_le(std::string& out, size_t at, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out[at + static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFF);
  }
}

uint64_t get_le(const std::string& in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<size_t>(i)]);
  }
  return v;
}

}  // namespace

Result<std::shared_ptr<const std::string>> encode_preview_frame(int64_t project, int64_t job,
                                                                int step, int steps,
                                                                const image::Image& image) {
  image::Image small = image::resize_box(image, kPreviewMaxSide);
  auto jpeg = image::encode_jpeg(small, kPreviewJpegQuality);
  if (!jpeg.is_ok()) return jpeg.status();
  auto frame = std::make_shared<std::string>(kPreviewHeaderBytes + jpeg->size(), '\0');
  std::memcpy(frame->data(), kMagic, sizeof kMagic);
  (*frame)[4] = static_cast<char>(kLayoutVersion);
  (*frame)[5] = static_cast<char>(PreviewFormat::kJpeg);
  put_le(*frame, 8, static_cast<uint64_t>(project), 8);
  put_le(*frame, 16, static_cast<uint64_t>(job), 8);
  put_le(*frame, 24, static_cast<uint32_t>(step), 4);
  put_le(*frame, 28, static_cast<uint32_t>(steps), 4);
  put_le(*frame, 32, static_cast<uint16_t>(small.width), 2);
  put_le(*frame, 34, static_cast<uint16_t>(small.height), 2);
  std::memcpy(frame->data() + kPreviewHeaderBytes, jpeg->data(), jpeg->size());
  return std::shared_ptr<const std::string>(std::move(frame));
}

Result<PreviewHeader> parse_preview_header(const std::string& frame) {
  if (frame.size() < kPreviewHeaderBytes) {
    return Status::invalid_argument("a preview frame has at least 40 bytes");
  }
  if (std::memcmp(frame.data(), kMagic, sizeof kMagic) != 0) {
    return Status::invalid_argument("not a preview frame (magic)");
  }
  if (static_cast<uint8_t>(frame[4]) != kLayoutVersion) {
    return Status::invalid_argument("unknown preview layout version");
  }
  PreviewHeader h;
  h.format = static_cast<PreviewFormat>(static_cast<uint8_t>(frame[5]));
  h.project = static_cast<int64_t>(get_le(frame, 8, 8));
  h.job = static_cast<int64_t>(get_le(frame, 16, 8));
  h.step = static_cast<uint32_t>(get_le(frame, 24, 4));
  h.steps = static_cast<uint32_t>(get_le(frame, 28, 4));
  h.width = static_cast<uint16_t>(get_le(frame, 32, 2));
  h.height = static_cast<uint16_t>(get_le(frame, 34, 2));
  return h;
}

bool PreviewThrottle::due_locked(int64_t job, SteadyTime now) const {
  auto it = last_.find(job);
  return it != last_.end() && now - it->second >= interval_;
}

bool PreviewThrottle::admit(int64_t job) {
  const SteadyTime now = now_();
  MutexLock lock(mu_);
  if (!due_locked(job, now)) return false;
  last_[job] = now;
  return true;
}

void PreviewThrottle::start(int64_t job) {
  const SteadyTime now = now_();
  MutexLock lock(mu_);
  last_[job] = now;
}

bool PreviewThrottle::due(int64_t job) const {
  const SteadyTime now = now_();
  MutexLock lock(mu_);
  return due_locked(job, now);
}

void PreviewThrottle::forget(int64_t job) {
  MutexLock lock(mu_);
  last_.erase(job);
}

size_t PreviewThrottle::tracked() const {
  MutexLock lock(mu_);
  return last_.size();
}

}  // namespace atelier::rooms
