#include "server/inference/sd/model_files.h"

#include <fstream>
#include <iterator>

namespace atelier::sd {

Result<std::string> read_model_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("no file " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace atelier::sd
