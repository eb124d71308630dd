// ImageStore: generated image files, content-addressed on disk.
//
// Layout under `root`: images/<2 hex>/<sha256>.png for finished files, *.tmp beside them while
// one is being written, thumbs/<sha256>-<size>.<ext> for cached thumbnails.
//
// put() writes the bytes to a *.tmp file, fsyncs it, renames it to its content address and
// fsyncs the directory, so after put() returns the file survives a crash and a reader never sees
// a partial file. Identical bytes are stored once. A file becomes visible to users only when an
// image row refers to it (the job service commits that row after put()); files left behind by a
// crash in between, and stray *.tmp files, are removed by sweep() at start-up.
//
// Thread-safe: every method works on its own files; concurrent put()s of the same bytes are
// harmless (rename is atomic and both write the same content).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <unordered_set>

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

class ImageStore {
 public:
  // Creates the directories when missing. `durable` false skips the fsyncs (files then survive
  // the process being killed, not a power loss), matching the store's sync mode.
  static Result<std::unique_ptr<ImageStore>> open(const std::filesystem::path& root,
                                                  bool durable = true);

  Result<StoredFile> put(std::span<const uint8_t> bytes);
  // Where the file for `sha256` lives (whether or not it exists). `sha256` must be 64 hex.
  std::filesystem::path path_for(const std::string& sha256) const;
  std::filesystem::path thumb_path(const std::string& sha256, int size,
                                   std::string_view extension) const;
  // Writes a thumbnail atomically (tmp + rename; no fsync: a lost thumbnail is rebuilt).
  Status put_thumb(const std::filesystem::path& path, std::span<const uint8_t> bytes);

  // Removes *.tmp files and every file whose sha256 is not in `referenced` (with its thumbs).
  // Only call while nothing else writes (start-up, before the workers run).
  Result<SweepReport> sweep(const std::unordered_set<std::string>& referenced);

  const std::filesystem::path& root() const { return root_; }

 private:
  ImageStore(std::filesystem::path root, bool durable)
      : root_(std::move(root)), durable_(durable) {}
  std::filesystem::path root_;
  bool durable_ = true;
};

}  // namespace atelier::jobs
