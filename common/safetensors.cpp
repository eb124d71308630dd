#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace atelier::safetensors {

namespace {

using nlohmann::json;

struct DTypeName {
  DType dtype;
  std::string_view name;
  size_t size;
};
constexpr std::array<DTypeName, 10> kDTypes = {{{DType::kF64, "F64", 8},
                                                {DType::kF32, "F32", 4},
                                                {DType::kF16, "F16", 2},
                                                {DType::kBF16, "BF16", 2},
                                                {DType::kI64, "I64", 8},
                                                {DType::kI32, "I32", 4},
                                                {DType::kI16, "I16", 2},
                                                {DType::kI8, "I8", 1},
                                                {DType::kU8, "U8", 1},
                                                {DType::kBool, "BOOL", 1}}};

Status bad(const std::string& msg) {
  return Status::invalid_argument("safetensors: " + msg);
}

Status bad_tensor(const std::string& name, const std::string& msg) {
  return bad("tensor '" + name + "': " + msg);
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A JSON number that is a non-negative integer fitting uint64_t.
bool as_u64(const json& j, uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

Status parse_tensor(const std::string& name, const json& entry, uint64_t data_size, TensorInfo& t) {
  t.name = name;
  if (!entry.is_object()) return bad_tensor(name, "entry is not an object");
  for (const auto& [key, value] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return bad_tensor(name, "unexpected field '" + key + "'");
    }
  }
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) return bad_tensor(name, "no dtype");
  const std::string d = dtype->get<std::string>();
  auto known =
      std::find_if(kDTypes.begin(), kDTypes.end(), [&](const DTypeName& x) { return x.name == d; });
  if (known == kDTypes.end()) return bad_tensor(name, "unsupported dtype '" + d + "'");
  t.dtype = known->dtype;

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) return bad_tensor(name, "no shape");
  if (shape->size() > 16) return bad_tensor(name, "more than 16 dimensions");
  // numel * size, refusing overflow: no product of dimensions can exceed the data anyway.
  uint64_t bytes = known->size;
  for (const auto& dim : *shape) {
    uint64_t n = 0;
    if (!as_u64(dim, n) || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return bad_tensor(name, "shape has a dimension that is not a non-negative integer");
    }
    t.shape.push_back(static_cast<int64_t>(n));
    if (n != 0 && bytes > std::numeric_limits<uint64_t>::max() / n) {
      return bad_tensor(name, "shape is too large");
    }
    bytes *= n;
  }

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    return bad_tensor(name, "data_offsets is not [begin, end]");
  }
  if (!as_u64((*offsets)[0], t.begin) || !as_u64((*offsets)[1], t.end) || t.begin > t.end) {
    return bad_tensor(name, "data_offsets is not [begin, end] with begin <= end");
  }
  if (t.end > data_size) {
    return bad_tensor(name, "data_offsets end " + std::to_string(t.end) + " is past the data (" +
                                std::to_string(data_size) +
                                " bytes): the file is truncated or the header is wrong");
  }
  if (t.end - t.begin != bytes) {
    return bad_tensor(name, "data_offsets span " + std::to_string(t.end - t.begin) +
                                " bytes but dtype and shape need " + std::to_string(bytes));
  }
  return Status::ok();
}

}  // namespace

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

std::string_view dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<Header> parse(std::span<const uint8_t> file) {
  if (file.size() < 8) return bad("file is " + std::to_string(file.size()) + " bytes, too short");
  const uint64_t header_len = read_le64(file.data());
  if (header_len > kMaxHeaderBytes) {
    return bad("header length " + std::to_string(header_len) + " is over the limit of " +
               std::to_string(kMaxHeaderBytes));
  }
  if (header_len > file.size() - 8) {
    return bad("header length " + std::to_string(header_len) + " is past the end of the " +
               std::to_string(file.size()) + "-byte file (truncated?)");
  }
  const auto* text = reinterpret_cast<const char*>(file.data() + 8);
  // The JSON parser is iterative, so deep nesting costs memory, not stack; a header must be an
  // object, and it is refused at the first byte if it does not look like one.
  std::string_view header_text(text, header_len);
  const size_t first = header_text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || header_text[first] != '{') {
    return bad("header is not a JSON object");
  }
  json j = json::parse(header_text.begin(), header_text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("header is not valid JSON");

  Header h;
  h.data_offset = 8 + header_len;
  const uint64_t data_size = file.size() - h.data_offset;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) return bad("__metadata__ '" + k + "' is not a string");
        h.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    TensorInfo t;
    if (Status st = parse_tensor(name, entry, data_size, t); !st.is_ok()) return st;
    h.tensors.push_back(std::move(t));
  }
  // The ranges must tile the data exactly: sorted by begin, each starts where the last ended.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const TensorInfo& t = h.tensors[i];
    if (t.begin < at) {
      return bad_tensor(t.name, "its data overlaps tensor '" + h.tensors[i - 1].name + "'");
    }
    if (t.begin > at) {
      return bad_tensor(
          t.name, "there is a gap of " + std::to_string(t.begin - at) + " bytes before its data");
    }
    at = t.end;
  }
  if (at != data_size) {
    return bad(std::to_string(data_size - at) + " bytes after the last tensor's data belong to " +
               "no tensor");
  }
  return h;
}

File::File(std::shared_ptr<const void> owner, std::span<const uint8_t> file, Header header)
    : owner_(std::move(owner)), file_(file), header_(std::move(header)) {
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

Result<File> File::from_bytes(std::string bytes) {
  auto owned = std::make_shared<const std::string>(std::move(bytes));
  std::span<const uint8_t> view(reinterpret_cast<const uint8_t*>(owned->data()), owned->size());
  auto header = parse(view);
  if (!header.is_ok()) return header.status();
  return File(owned, view, std::move(*header));
}

Result<File> File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::not_found("safetensors: no file " + path);
    return Status::io_error("safetensors: cannot open " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::io_error("safetensors: " + path + " is not a readable file");
  }
  const auto size = static_cast<size_t>(st.st_size);
  std::shared_ptr<const void> owner;
  std::span<const uint8_t> view;
  void* map = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  if (map != MAP_FAILED) {
    owner = std::shared_ptr<const void>(
        map, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
    view = {static_cast<const uint8_t*>(map), size};
  } else {
    // Not mappable (an empty file, some file systems): read it.
    auto buf = std::make_shared<std::string>(size, '\0');
    size_t got = 0;
    while (got < size) {
      const ssize_t n = ::read(fd, buf->data() + got, size - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    buf->resize(got);
    view = {reinterpret_cast<const uint8_t*>(buf->data()), buf->size()};
    owner = buf;
  }
  ::close(fd);
  auto header = parse(view);
  if (!header.is_ok()) {
    return Status::invalid_argument(path + ": " + header.status().message());
  }
  return File(std::move(owner), view, std::move(*header));
}

const TensorInfo* File::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const uint8_t> File::bytes(const TensorInfo& t) const {
  return file_.subspan(header_.data_offset + t.begin, t.end - t.begin);
}

Result<std::vector<float>> File::to_float(const TensorInfo& t) const {
  const auto raw = bytes(t);
  const auto n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out.data(), raw.data(), n * 4);  // little-endian hosts only (x86, arm64)
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, raw.data() + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      break;
    case DType::kF16:
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t bits = static_cast<uint16_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
        out[i] = t.dtype == DType::kF16 ? f16_to_f32(bits) : bf16_to_f32(bits);
      }
      break;
    default:
      return Status::invalid_argument("safetensors: tensor '" + t.name + "' is " +
                                      std::string(dtype_name(t.dtype)) + ", not floating point");
  }
  return out;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf or NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: normalise the mantissa.
    int e = 113;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

Result<std::string> serialize_header(const std::vector<TensorSpec>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t at = 0;
  for (const auto& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return Status::invalid_argument("tensor '" + t.name + "': negative dimension");
      numel *= static_cast<uint64_t>(d);
    }
    if (t.name == "__metadata__" || header.contains(t.name)) {
      return Status::invalid_argument("tensor name '" + t.name + "' is used twice or reserved");
    }
    const uint64_t bytes = numel * dtype_size(t.dtype);
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {at, at + bytes}}};
    at += bytes;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::string out(8, '\0');
  const uint64_t len = text.size();
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
  return out + text;
}

Result<std::string> serialize(const std::vector<TensorData>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<uint64_t>(std::max<int64_t>(d, 0));
    if (t.bytes.size() != numel * dtype_size(t.dtype)) {
      return Status::invalid_argument("tensor '" + t.name + "': " + std::to_string(t.bytes.size()) +
                                      " bytes do not match its dtype and shape");
    }
    specs.push_back({t.name, t.dtype, t.shape});
  }
  auto out = serialize_header(specs, metadata);
  if (!out.is_ok()) return out.status();
  for (const auto& t : tensors) *out += t.bytes;
  return out;
}

}  // namespace atelier::safetensors
