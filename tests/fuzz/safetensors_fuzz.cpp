// Fuzz target for the safetensors header parser (common/safetensors.h): any bytes must be
// either refused with a Status or parsed into a header whose every range lies inside the input.
//
// With clang: cmake -DATELIER_FUZZ=ON ... builds `safetensors_fuzz` with libFuzzer
//   build/fuzz/tests/fuzz/safetensors_fuzz -max_total_time=60 tests/fuzz/corpus/safetensors
// Without it, safetensors_fuzz_smoke (a CTest test) replays the corpus and a fixed number of
// deterministic mutations of it through the same entry point.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto header = atelier::safetensors::parse(std::span<const uint8_t>(data, size));
  if (!header.is_ok()) return 0;
  uint64_t covered = 0;
  for (const auto& t : header->tensors) {
    if (t.end < t.begin || header->data_offset + t.end > size) std::abort();
    covered += t.end - t.begin;
  }
  if (header->data_offset + covered != size) std::abort();
  return 0;
}
