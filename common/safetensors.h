// safetensors: the tensor file format model authors publish weights in (Hugging Face's
// `*.safetensors`). Layout: an 8-byte little-endian header length N, N bytes of JSON naming each
// tensor's dtype, shape and [begin, end) byte range within the data that follows, then the raw
// little-endian data. An optional "__metadata__" entry maps strings to strings.
//
// Why our own parser: the format is small, the files come from strangers, and every check below
// is one a loader must make anyway (offsets inside the file, sizes that match shapes, no
// overlaps, a header length that is not an allocation bomb). No torch here: inference code turns
// the views into tensors.
//
// Contract:
//   * parse() and File::open() accept only well-formed files, as the reference implementation
//     does: the header is a JSON object; every tensor has a known dtype, a shape of non-negative
//     dimensions and data_offsets [begin, end] with end - begin == numel * dtype size; the ranges
//     cover the data exactly, without overlap or gap. Anything else is refused with a Status whose
//     message names the tensor (and the field) at fault. Nothing is allocated in proportion to
//     an untrusted length before it has been checked against the file's size.
//   * A File is immutable and thread-safe to read. open() memory-maps the file (falling back to
//     reading it), so tensors are views, not copies; they live as long as the File (copies share
//     the mapping).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace atelier::safetensors {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // as the header spells it: "F32", "BF16", ...

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section

  int64_t numel() const;
};

// The header larger than this is refused (real ones are well under 1 MiB; this is the
// reference implementation's limit).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct Header {
  std::vector<TensorInfo> tensors;  // in data order
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // where the data section starts in the file (8 + header length)
};

// Parses and validates a whole file's bytes (header and the data's extent; the data itself is
// not read). The fuzz target's entry point.
Result<Header> parse(std::span<const uint8_t> file);

class File {
 public:
  // Opens and validates `path`. Errors: not_found, io_error, or invalid_argument naming the
  // problem ("truncated", "tensor 'x': ...").
  static Result<File> open(const std::string& path);
  // The same over bytes already in memory (kept by the File).
  static Result<File> from_bytes(std::string bytes);

  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // Null when there is no such tensor.
  const TensorInfo* find(std::string_view name) const;
  // The tensor's raw little-endian bytes (not necessarily aligned).
  std::span<const uint8_t> bytes(const TensorInfo& tensor) const;
  // The values converted to float32 (from F32, F16, BF16 or F64); invalid_argument for others.
  Result<std::vector<float>> to_float(const TensorInfo& tensor) const;

 private:
  File(std::shared_ptr<const void> owner, std::span<const uint8_t> file, Header header);

  std::shared_ptr<const void> owner_;  // the mapping or the buffer
  std::span<const uint8_t> file_;
  Header header_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Half-precision conversions (exact: every F16 and BF16 value is a float32 value).
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);

// Writes a file: what parse() accepts, header padded with spaces to a multiple of 8 bytes.
struct TensorData {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian, numel * dtype size of them
};
Result<std::string> serialize(const std::vector<TensorData>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// A file's first part alone (the 8-byte length and the padded header), for writers that stream
// tensors too large to hold at once: the data follows in the same order, each tensor
// numel * dtype size bytes.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};
Result<std::string> serialize_header(const std::vector<TensorSpec>& tensors,
                                     const std::map<std::string, std::string>& metadata = {});

}  // namespace atelier::safetensors
