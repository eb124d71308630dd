#include "server/jobs/image_store.h"

#include <fcntl.h>
#include <unistd.h>

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
  StoredFile out;
  out.sha256 =
      auth::sha256_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  out.bytes = static_cast<int64_t>(bytes.size());
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

Status ImageStore::put_thumb(const fs::path& path, std::span<const uint8_t> bytes) {
  Status st = write_atomically(path.parent_path(), path, bytes, /*durable=*/false);
  // The thumbs directory is the store's own: it missing is an I/O failure, not a lookup miss.
  if (st.code() == StatusCode::kNotFound) return Status::io_error(st.message());
  return st;
}

Result<SweepReport> ImageStore::sweep(const std::unordered_set<std::string>& referenced) {
  SweepReport report;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_ / "images", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const fs::path& p = it->path();
    if (p.extension() == ".tmp") {
      if (fs::remove(p, ec)) ++report.temp_files_removed;
      continue;
    }
    std::string stem = p.stem().string();
    if (p.extension() == ".png" && is_sha256(stem) && !referenced.contains(stem)) {
      if (fs::remove(p, ec)) ++report.orphans_removed;
    }
  }
  if (ec) return Status::io_error("sweeping the image store: " + ec.message());
  for (auto it = fs::directory_iterator(root_ / "thumbs", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    bool orphan =
        p.extension() == ".tmp" || (name.size() > 64 && !referenced.contains(name.substr(0, 64)));
    if (orphan && fs::remove(p, ec)) ++report.thumbs_removed;
  }
  if (ec) return Status::io_error("sweeping thumbnails: " + ec.message());
  return report;
}

}  // namespace atelier::jobs
