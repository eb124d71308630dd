#include "server/inference/file_hash.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "common/logging.h"

namespace atelier::inference {

namespace fs = std::filesystem;

namespace {

Status errno_status(const std::string& what, const fs::path& path) {
  int err = errno;
  std::string message = what + " " + path.string() + ": " + std::strerror(err);
  return err == ENOENT ? Status::not_found(message) : Status::io_error(message);
}

struct FileStamp {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

Result<FileStamp> stamp_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_status("cannot stat", path);
  if (!S_ISREG(st.st_mode)) return Status::invalid_argument(path.string() + " is not a file");
  return FileStamp{static_cast<int64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

std::string to_hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xF];
  }
  return out;
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string temp_name() {
  static std::atomic<uint64_t> counter{0};
  return "." + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + ".tmp";
}

Status write_atomically(const fs::path& target, const std::string& text) {
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path tmp = dir / (target.filename().string() + temp_name());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot create", tmp);
  Status st;
  size_t done = 0;
  while (done < text.size() && st.is_ok()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = errno_status("cannot write", tmp);
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (st.is_ok() && ::fsync(fd) != 0) st = errno_status("cannot sync", tmp);
  if (::close(fd) != 0 && st.is_ok()) st = errno_status("cannot close", tmp);
  if (st.is_ok() && ::rename(tmp.c_str(), target.c_str()) != 0) {
    st = errno_status("cannot rename into", target);
  }
  if (!st.is_ok()) ::unlink(tmp.c_str());
  return st;
}

}  // namespace

Status stream_file(const fs::path& path, const ChunkSink& sink, size_t chunk_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open", path);
  std::vector<char> buffer(chunk_bytes == 0 ? kHashChunkBytes : chunk_bytes);
  Status st;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = errno_status("cannot read", path);
      break;
    }
    if (n == 0) break;
    sink(std::string_view(buffer.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return st;
}

Result<std::string> sha256_file(const fs::path& path, const FileStreamer& streamer) {
  if (sodium_init() < 0) return Status::internal("libsodium could not be initialised");
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  ChunkSink sink = [&state](std::string_view chunk) {
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(chunk.data()),
                              chunk.size());
  };
  Status st = streamer ? streamer(path, sink) : stream_file(path, sink);
  if (!st.is_ok()) return st;
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  return to_hex(digest, sizeof(digest));
}

std::string short_model_hash(std::string_view sha256) {
  return std::string(sha256.substr(0, 10));
}

std::string short_lora_hash(std::string_view sha256) {
  return std::string(sha256.substr(0, 12));
}

FileHashCache::FileHashCache(fs::path cache_file, FileStreamer streamer)
    : cache_file_(std::move(cache_file)), streamer_(std::move(streamer)) {}

int64_t FileHashCache::files_hashed() const {
  std::lock_guard lock(mu_);
  return files_hashed_;
}

void FileHashCache::load_locked() {
  if (loaded_) return;
  loaded_ = true;
  if (cache_file_.empty()) return;
  std::ifstream in(cache_file_);
  if (!in) return;  // none yet
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("files") || !doc["files"].is_object()) {
    log::warn("{} is not a hash cache; every model file will be hashed again",
              cache_file_.string());
    return;
  }
  for (const auto& [path, e] : doc["files"].items()) {
    if (!e.is_object() || !e.contains("size") || !e.contains("mtime_ns") || !e.contains("sha256") ||
        !e["size"].is_number_integer() || !e["mtime_ns"].is_number_integer() ||
        !e["sha256"].is_string()) {
      continue;
    }
    Entry entry{e["size"].get<int64_t>(), e["mtime_ns"].get<int64_t>(),
                e["sha256"].get<std::string>()};
    if (is_sha256_hex(entry.sha256)) entries_[path] = std::move(entry);
  }
}

Status FileHashCache::save_locked() {
  if (cache_file_.empty()) return Status::ok();
  nlohmann::json files = nlohmann::json::object();
  for (auto it = entries_.begin(); it != entries_.end();) {
    std::error_code ec;
    if (!fs::exists(it->first, ec)) {
      it = entries_.erase(it);
      continue;
    }
    files[it->first] = {{"size", it->second.size},
                        {"mtime_ns", it->second.mtime_ns},
                        {"sha256", it->second.sha256}};
    ++it;
  }
  nlohmann::json doc = {{"version", 1}, {"files", files}};
  return write_atomically(cache_file_, doc.dump(1) + "\n");
}

Result<std::string> FileHashCache::sha256(const fs::path& path) {
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec).lexically_normal();
  if (ec) return Status::io_error("cannot resolve " + path.string() + ": " + ec.message());
  auto before = stamp_of(absolute);
  if (!before.is_ok()) return before.status();
  const std::string key = absolute.string();
  {
    std::lock_guard lock(mu_);
    load_locked();
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.size == before->size &&
        it->second.mtime_ns == before->mtime_ns) {
      return it->second.sha256;
    }
  }
  // Read outside the lock: other files may be looked up (or hashed) meanwhile.
  auto hash = sha256_file(absolute, streamer_);
  if (!hash.is_ok()) return hash.status();
  auto after = stamp_of(absolute);
  std::lock_guard lock(mu_);
  ++files_hashed_;
  if (!after.is_ok() || !(*after == *before)) {
    log::warn("{} changed while it was hashed; its hash is not remembered", key);
    return hash;
  }
  entries_[key] = Entry{before->size, before->mtime_ns, *hash};
  if (Status st = save_locked(); !st.is_ok()) {
    log::warn("cannot write the hash cache {}: {}", cache_file_.string(), st.to_string());
  }
  return hash;
}

}  // namespace atelier::inference
