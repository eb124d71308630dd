// Live previews of running jobs: one small JPEG per step, framed as proto/websocket.md's binary
// preview layout, built once for every watcher of the project, and a per-job throttle.
//
// Why here and not per session: a project with 1,000 watchers must not encode 1,000 previews;
// the frame is encoded once and its shared buffer goes into every session's Outbox.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/image.h"
#include "common/mutex.h"
#include "common/status.h"

namespace atelier::rooms {

constexpr size_t kPreviewHeaderBytes = 40;
constexpr int kPreviewMaxSide = 256;
constexpr int kPreviewJpegQuality = 70;

enum class PreviewFormat : uint8_t { kJpeg = 1, kWebp = 2 };

// The fields of a preview frame's header (see proto/websocket.md, "Previews").
struct PreviewHeader {
  int64_t project = 0;
  int64_t job = 0;
  uint32_t step = 0;
  uint32_t steps = 0;
  uint16_t width = 0;
  uint16_t height = 0;
  PreviewFormat format = PreviewFormat::kJpeg;
};

// `image` scaled to at most kPreviewMaxSide on its longer side, JPEG-encoded, behind the header.
Result<std::shared_ptr<const std::string>> encode_preview_frame(int64_t project, int64_t job,
                                                                int step, int steps,
                                                                const image::Image& image);

// Reads a frame's header back (tests, and what a client does); kInvalidArgument for a frame
// that is too short, has the wrong magic or an unknown layout version.
Result<PreviewHeader> parse_preview_header(const std::string& frame);

// At most one preview per job every `interval`, the first one `interval` after the job started
// (start(), when its job.started event is committed), none before it started nor after it ended
// (forget(), at its terminal event): a step that comes late is refused and leaves no entry, so
// the throttle holds exactly the running jobs. Neither the first nor the last step is special: a
// job's start and end are already busy moments for every watcher (its events, the finished
// image right after the last step), and a preview there only delays the next progress message.
// Thread-safe: workers of several devices call it.
class PreviewThrottle {
 public:
  using Clock = std::function<SteadyTime()>;
  PreviewThrottle(std::chrono::milliseconds interval, Clock now)
      : interval_(interval), now_(std::move(now)) {}

  // True when a preview of `job` should be made now (and records it).
  bool admit(int64_t job) ATELIER_EXCLUDES(mu_);
  // The job started now: its first preview waits a whole interval.
  void start(int64_t job) ATELIER_EXCLUDES(mu_);
  // Whether admit() would pass now (records nothing): lets a generator skip building a preview
  // that would be thrown away.
  bool due(int64_t job) const ATELIER_EXCLUDES(mu_);
  // The job ended: forget it.
  void forget(int64_t job) ATELIER_EXCLUDES(mu_);
  size_t tracked() const ATELIER_EXCLUDES(mu_);  // jobs with an entry (tests, diagnostics)

 private:
  bool due_locked(int64_t job, SteadyTime now) const ATELIER_REQUIRES(mu_);

  const std::chrono::milliseconds interval_;
  const Clock now_;
  mutable Mutex mu_;
  std::unordered_map<int64_t, SteadyTime> last_ ATELIER_GUARDED_BY(mu_);  // running jobs
};

}  // namespace atelier::rooms
