// ImageStore: generated image files, content-addressed on disk.
//
// Layout under `root`: images/<2 hex>/<sha256>.png for finished files, *.tmp beside them while
// one is being written, thumbs/<sha256>-<size>.<ext> for cached thumbnails.
//
// put() writes the bytes to a *.tmp file, fsyncs it, renames it to its content address and
// fsyncs the directory, so after put() returns the file survives a crash and a reader never sees
// a partial file. Identical bytes are stored once. A file becomes visible to users only when an
// image row refers to it (the job service commits that row after put()).
//
// No orphan files: put() pins the file until the caller says how its commit went: unpin() once
// a row refers to it, discard() when none was committed (a cancelled, failed or fenced-out run),
// which removes it at once unless another put() pins it or a row refers to it (the same bytes
// made by another job). Files a crash left behind, and stray *.tmp files, are removed by
// sweep(referenced) at start-up and then periodically by sweep_unreferenced() (the job service
// runs it), which keeps pinned files and anything modified within its grace period.
//
// Costs: discard() and sweep_unreferenced() ask `ReferenceCheck` (a database read) while holding
// the pin lock, so a put() may wait for one such read before it starts writing.
// Thread-safe: every method works on its own files; concurrent put()s of the same bytes are
// harmless (rename is atomic and both write the same content); the pins are under one lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/mutex.h"
#include "common/status.h"

namespace atelier::jobs {

struct StoredFile {
  std::string sha256;  // 64 lowercase hex characters
  int64_t bytes = 0;
};

struct SweepReport {
  int64_t temp_files_removed = 0;
  int64_t orphans_removed = 0;  // finished files no image row refers to
  int64_t thumbs_removed = 0;   // thumbnails of such files
};

// Which of `sha256s` an image row refers to (a database read; asked in batches).
using ReferenceCheck =
    std::function<Result<std::unordered_set<std::string>>(std::span<const std::string> sha256s)>;

class ImageStore {
 public:
  // Creates the directories when missing. `durable` false skips the fsyncs (files then survive
  // the process being killed, not a power loss), matching the store's sync mode.
  static Result<std::unique_ptr<ImageStore>> open(const std::filesystem::path& root,
                                                  bool durable = true);

  // Stores the bytes (or finds them stored) and pins the file: call unpin() or discard() with
  // its sha256 once, whether or not put() wrote it. On error nothing stays pinned.
  Result<StoredFile> put(std::span<const uint8_t> bytes) ATELIER_EXCLUDES(mu_);
  // The row referring to a put() file is committed: it no longer needs the pin.
  void unpin(const std::string& sha256) ATELIER_EXCLUDES(mu_);
  // No row referring to a put() file was committed: unpins it and removes it unless it is still
  // pinned by another put() or `referenced` finds a row for it. True when it was removed.
  Result<bool> discard(const std::string& sha256, const ReferenceCheck& referenced)
      ATELIER_EXCLUDES(mu_);
  // Where the file for `sha256` lives (whether or not it exists). `sha256` must be 64 hex.
  std::filesystem::path path_for(const std::string& sha256) const;
  std::filesystem::path thumb_path(const std::string& sha256, int size,
                                   std::string_view extension) const;
  // Writes a thumbnail atomically (tmp + rename; no fsync: a lost thumbnail is rebuilt).
  Status put_thumb(const std::filesystem::path& path, std::span<const uint8_t> bytes);

  // Removes *.tmp files and every file whose sha256 is not in `referenced` (with its thumbs).
  // Only call while nothing else writes (start-up, before the workers run): pins are ignored.
  Result<SweepReport> sweep(const std::unordered_set<std::string>& referenced)
      ATELIER_EXCLUDES(mu_);
  // The sweep while the server runs: removes *.tmp files, files no row refers to and their
  // thumbnails, keeping whatever is pinned or was modified less than `grace` ago (written, not
  // yet committed). Each file found unreferenced is asked about again under the pin lock before
  // it goes, so a row committed meanwhile keeps it. Reads every name in the store.
  Result<SweepReport> sweep_unreferenced(std::chrono::milliseconds grace,
                                         const ReferenceCheck& referenced) ATELIER_EXCLUDES(mu_);

  const std::filesystem::path& root() const { return root_; }

 private:
  ImageStore(std::filesystem::path root, bool durable)
      : root_(std::move(root)), durable_(durable) {}
  Result<StoredFile> write(const std::string& sha256, std::span<const uint8_t> bytes);
  // Removes `sha256`'s file when nothing pins it and `referenced` finds no row; pins ignored
  // when `honour_pins` is false (start-up). True when removed.
  Result<bool> remove_if_unreferenced(const std::string& sha256, const ReferenceCheck& referenced,
                                      bool honour_pins) ATELIER_EXCLUDES(mu_);
  bool pinned(const std::string& sha256) ATELIER_EXCLUDES(mu_);
  Result<SweepReport> sweep_files(std::chrono::milliseconds grace, const ReferenceCheck& referenced,
                                  bool honour_pins) ATELIER_EXCLUDES(mu_);

  std::filesystem::path root_;
  bool durable_ = true;
  Mutex mu_;
  // put() files whose commit has not been settled, with how many put()s pinned each.
  std::unordered_map<std::string, int> pins_ ATELIER_GUARDED_BY(mu_);
};

}  // namespace atelier::jobs
