// Content hashes of model and LoRA files (sha256, as A1111 and model sites publish them), with a
// cache so that a restart does not read multi-GB files again. No torch: the app and the sd
// discovery both use it.
//
// FileHashCache remembers each hash by (absolute path, size, modification time in ns) in a small
// JSON file (e.g. `<data-dir>/model_hashes.json`), rewritten atomically (temp file + rename)
// after each file it had to hash. A file whose size or mtime changed is hashed again; entries
// of files that no longer exist are dropped on the next write. A missing cache file is an empty
// cache; an unreadable or corrupt one is ignored (everything is hashed again, then rewritten).
//
// Thread-safe: several threads may ask at once (each file is read by the thread that asks).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace atelier::inference {

// Called with each chunk of a file, in order.
using ChunkSink = std::function<void(std::string_view chunk)>;
// Reads a whole file into a ChunkSink. Injectable so tests can count and fake reads.
using FileStreamer =
    std::function<Status(const std::filesystem::path& path, const ChunkSink& sink)>;

inline constexpr size_t kHashChunkBytes = size_t{1} << 20;  // 1 MiB

// Reads `path` in chunks of `chunk_bytes`.
Status stream_file(const std::filesystem::path& path, const ChunkSink& sink,
                   size_t chunk_bytes = kHashChunkBytes);

// sha256 of everything `streamer` yields for `path`, 64 lowercase hex. No cache.
Result<std::string> sha256_file(const std::filesystem::path& path,
                                const FileStreamer& streamer = FileStreamer());

// A1111's short forms: the first 10 hex digits of a model's sha256 ("Model hash"), the first 12
// of a LoRA's ("Lora hashes"). Shorter input is returned as it is.
std::string short_model_hash(std::string_view sha256);
std::string short_lora_hash(std::string_view sha256);

class FileHashCache {
 public:
  // `cache_file` empty: remember in memory only. `streamer` empty: stream_file().
  explicit FileHashCache(std::filesystem::path cache_file, FileStreamer streamer = {});
  FileHashCache(const FileHashCache&) = delete;
  FileHashCache& operator=(const FileHashCache&) = delete;

  // sha256 of the file at `path` (made absolute), from the cache when its size and mtime match
  // what was remembered, else read, hashed and remembered (the cache file rewritten). A file
  // that changes while it is read is hashed, but not remembered. Errors: the file cannot be
  // stat'ed or read (kNotFound / kIoError). A failure to write the cache file is only logged.
  Result<std::string> sha256(const std::filesystem::path& path);

  // Files read and hashed (cache misses) since construction.
  int64_t files_hashed() const;

 private:
  struct Entry {
    int64_t size = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };
  void load_locked();
  Status save_locked();

  const std::filesystem::path cache_file_;
  const FileStreamer streamer_;
  mutable std::mutex mu_;
  bool loaded_ = false;
  std::map<std::string, Entry> entries_;  // by absolute path
  int64_t files_hashed_ = 0;
};

}  // namespace atelier::inference
