#include "server/inference/sd/model_files.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

namespace atelier::sd {

Result<std::string> read_model_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("no file " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Result<std::string> read_gzip_file(const std::string& path, size_t max_bytes) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> in(gzopen(path.c_str(), "rb"), gzclose);
  if (!in) return Status::not_found("no file " + path);
  std::string out;
  char buf[1 << 16];
  while (true) {
    const int n = gzread(in.get(), buf, sizeof(buf));
    if (n < 0) return Status::invalid_argument(path + " is not a readable gzip file");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) return Status::invalid_argument(path + " is too large");
  }
  return out;
}

std::string shipped_clip_vocab() {
  namespace fs = std::filesystem;
  constexpr const char* kName = "clip/bpe_simple_vocab_16e6.txt.gz";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share/atelier" / kName;
    if (fs::exists(installed, ec)) return installed.string();
  }
  return std::string(ATELIER_SOURCE_DATA_DIR) + "/" + kName;
}

}  // namespace atelier::sd
