#include "server/jobs/image_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

#include "server/auth/token.h"

namespace atelier::jobs {

namespace fs = std::filesystem;

namespace {

Status errno_status(const std::string& what, const fs::path& path) {
  return Status::io_error(what + " " + path.string() + ": " + std::strerror(errno));
}

Status write_all(int fd, std::span<const uint8_t> bytes, const fs::path& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("writing", path);
    }
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("opening directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return errno_status("syncing directory", dir);
  return Status::ok();
}

// A name no other writer in this process or another uses at the same moment.
std::string temp_name() {
  static std::atomic<uint64_t> counter{0};
  return "." + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + ".tmp";
}

// Writes `bytes` to a temp file in `dir` and renames it to `target`. kNotFound: `dir` is missing.
Status write_atomically(const fs::path& dir, const fs::path& target, std::span<const uint8_t> bytes,
                        bool durable) {
  fs::path tmp = dir / temp_name();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) return Status::not_found("no directory " + dir.string());
  if (fd < 0) return errno_status("creating", tmp);
  Status st = write_all(fd, bytes, tmp);
  if (st.is_ok() && durable && ::fsync(fd) != 0) st = errno_status("syncing", tmp);
  if (::close(fd) != 0 && st.is_ok()) st = errno_status("closing", tmp);
  if (st.is_ok() && ::rename(tmp.c_str(), target.c_str()) != 0) {
    st = errno_status("renaming into", target);
  }
  if (!st.is_ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return durable ? fsync_dir(dir) : Status::ok();
}

// Names asked about per database read in a sweep.
constexpr size_t kSweepBatch = 256;

bool is_sha256(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ImageStore>> ImageStore::open(const fs::path& root, bool durable) {
  std::error_code ec;
  fs::create_directories(root / "images", ec);
  if (!ec) fs::create_directories(root / "thumbs", ec);
  if (ec) return Status::io_error("creating image store in " + root.string() + ": " + ec.message());
  // The 256 fan-out directories up front: a put() then never creates (or fsyncs) a directory
  // on a job's path, and a new installation's first images cost what later ones do.
  static constexpr char kHex[] = "0123456789abcdef";
  bool created_any = false;
  for (int i = 0; i < 256; ++i) {
    const char name[3] = {kHex[i >> 4], kHex[i & 15], '\0'};
    created_any |= fs::create_directory(root / "images" / name, ec);
    if (ec)
      return Status::io_error("creating image directories in " + root.string() + ": " +
                              ec.message());
  }
  if (created_any && durable) ATELIER_RETURN_IF_ERROR(fsync_dir(root / "images"));
  return std::unique_ptr<ImageStore>(new ImageStore(root, durable));
}

fs::path ImageStore::path_for(const std::string& sha256) const {
  return root_ / "images" / sha256.substr(0, 2) / (sha256 + ".png");
}

fs::path ImageStore::thumb_path(const std::string& sha256, int size,
                                std::string_view extension) const {
  return root_ / "thumbs" / (sha256 + "-" + std::to_string(size) + "." + std::string(extension));
}

Result<StoredFile> ImageStore::put(std::span<const uint8_t> bytes) {
  const std::string sha256 =
      auth::sha256_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  {
    // Pinned before the file is looked at: a discard() or sweep that has not removed it yet
    // now keeps it; one that already did leaves it missing, and write() stores it again.
    MutexLock lock(mu_);
    ++pins_[sha256];
  }
  Result<StoredFile> out = write(sha256, bytes);
  if (!out.is_ok()) unpin(sha256);
  return out;
}

Result<StoredFile> ImageStore::write(const std::string& sha256, std::span<const uint8_t> bytes) {
  StoredFile out{sha256, static_cast<int64_t>(bytes.size())};
  fs::path target = path_for(out.sha256);
  fs::path dir = target.parent_path();
  std::error_code ec;
  if (fs::exists(target, ec) && fs::file_size(target, ec) == bytes.size() && !ec) {
    return out;  // same content already stored (an earlier attempt, or another job)
  }
  Status st = write_atomically(dir, target, bytes, durable_);
  if (st.code() == StatusCode::kNotFound) {
    // Its fan-out directory was removed behind our back (open() creates them all): again.
    bool created = fs::create_directories(dir, ec);
    if (ec) return Status::io_error("creating " + dir.string() + ": " + ec.message());
    if (created && durable_) ATELIER_RETURN_IF_ERROR(fsync_dir(dir.parent_path()));
    st = write_atomically(dir, target, bytes, durable_);
  }
  ATELIER_RETURN_IF_ERROR(st);
  return out;
}

void ImageStore::unpin(const std::string& sha256) {
  MutexLock lock(mu_);
  auto it = pins_.find(sha256);
  if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
}

bool ImageStore::pinned(const std::string& sha256) {
  MutexLock lock(mu_);
  return pins_.contains(sha256);
}

Result<bool> ImageStore::discard(const std::string& sha256, const ReferenceCheck& referenced) {
  unpin(sha256);
  return remove_if_unreferenced(sha256, referenced, /*honour_pins=*/true);
}

Result<bool> ImageStore::remove_if_unreferenced(const std::string& sha256,
                                                const ReferenceCheck& referenced,
                                                bool honour_pins) {
  // The check and the removal under the pin lock: a put() of the same bytes waits, then finds
  // the file gone and writes it again; a row committed before the check keeps the file.
  MutexLock lock(mu_);
  if (honour_pins && pins_.contains(sha256)) return false;
  const std::string one[] = {sha256};
  ATELIER_ASSIGN_OR_RETURN(std::unordered_set<std::string> found, referenced(one));
  if (found.contains(sha256)) return false;
  const fs::path path = path_for(sha256);
  std::error_code ec;
  const bool removed = fs::remove(path, ec);
  if (ec) return Status::io_error("removing " + path.string() + ": " + ec.message());
  return removed;
}

Status ImageStore::put_thumb(const fs::path& path, std::span<const uint8_t> bytes) {
  Status st = write_atomically(path.parent_path(), path, bytes, /*durable=*/false);
  // The thumbs directory is the store's own: it missing is an I/O failure, not a lookup miss.
  if (st.code() == StatusCode::kNotFound) return Status::io_error(st.message());
  return st;
}

Result<SweepReport> ImageStore::sweep(const std::unordered_set<std::string>& referenced) {
  ReferenceCheck in_set = [&referenced](std::span<const std::string> shas) {
    std::unordered_set<std::string> found;
    for (const std::string& sha : shas) {
      if (referenced.contains(sha)) found.insert(sha);
    }
    return Result<std::unordered_set<std::string>>(std::move(found));
  };
  return sweep_files(std::chrono::milliseconds(0), in_set, /*honour_pins=*/false);
}

Result<SweepReport> ImageStore::sweep_unreferenced(std::chrono::milliseconds grace,
                                                   const ReferenceCheck& referenced) {
  return sweep_files(grace, referenced, /*honour_pins=*/true);
}

Result<SweepReport> ImageStore::sweep_files(std::chrono::milliseconds grace,
                                            const ReferenceCheck& referenced, bool honour_pins) {
  SweepReport report;
  const auto cutoff = fs::file_time_type::clock::now() - grace;
  // Old enough to go: modified before the grace period (a file gone meanwhile is not).
  auto old_enough = [&](const fs::path& p) {
    if (grace.count() <= 0) return true;
    std::error_code ec;
    const auto modified = fs::last_write_time(p, ec);
    return !ec && modified <= cutoff;
  };
  // Of `shas`, those no row refers to, asked in batches (one database read each).
  auto unreferenced =
      [&](const std::vector<std::string>& shas) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    for (size_t at = 0; at < shas.size(); at += kSweepBatch) {
      std::span<const std::string> batch(shas.data() + at, std::min(kSweepBatch, shas.size() - at));
      ATELIER_ASSIGN_OR_RETURN(std::unordered_set<std::string> found, referenced(batch));
      for (const std::string& sha : batch) {
        if (!found.contains(sha)) out.push_back(sha);
      }
    }
    return out;
  };

  std::vector<std::string> candidates;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_ / "images", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const fs::path& p = it->path();
    if (p.extension() == ".tmp") {
      if (old_enough(p) && fs::remove(p, ec)) ++report.temp_files_removed;
      continue;
    }
    std::string stem = p.stem().string();
    if (p.extension() == ".png" && is_sha256(stem) && old_enough(p)) {
      candidates.push_back(std::move(stem));
    }
  }
  if (ec) return Status::io_error("sweeping the image store: " + ec.message());
  ATELIER_ASSIGN_OR_RETURN(std::vector<std::string> orphans, unreferenced(candidates));
  for (const std::string& sha : orphans) {
    // Asked again under the pin lock: a row may have been committed since the batch was read.
    ATELIER_ASSIGN_OR_RETURN(bool removed, remove_if_unreferenced(sha, referenced, honour_pins));
    if (removed) ++report.orphans_removed;
  }

  // Thumbnails are made only for images with rows: those of files no row refers to go too.
  std::unordered_map<std::string, std::vector<fs::path>> thumbs;
  for (auto it = fs::directory_iterator(root_ / "thumbs", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    if (!old_enough(p)) continue;
    if (p.extension() == ".tmp") {
      if (fs::remove(p, ec)) ++report.thumbs_removed;
    } else if (name.size() > 64) {
      thumbs[name.substr(0, 64)].push_back(p);
    }
  }
  if (ec) return Status::io_error("sweeping thumbnails: " + ec.message());
  std::vector<std::string> thumbed;
  thumbed.reserve(thumbs.size());
  for (const auto& [sha, paths] : thumbs) thumbed.push_back(sha);
  ATELIER_ASSIGN_OR_RETURN(std::vector<std::string> gone, unreferenced(thumbed));
  for (const std::string& sha : gone) {
    if (honour_pins && pinned(sha)) continue;
    for (const fs::path& p : thumbs[sha]) {
      if (fs::remove(p, ec)) ++report.thumbs_removed;
    }
  }
  if (ec) return Status::io_error("sweeping thumbnails: " + ec.message());
  return report;
}

}  // namespace atelier::jobs
