// Runs the fuzz target (safetensors_fuzz.cpp) where libFuzzer is not built: every file of the
// seed corpus, then 20,000 deterministic mutations of them (bit flips, byte sets, truncations,
// insertions of interesting bytes, header-length rewrites). A crash or abort fails the test.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("tests/fuzz/corpus/safetensors")) {
    std::ifstream in(e.path(), std::ios::binary);
    out.emplace_back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // A valid file written by the serializer, so mutations start from something accepted.
  auto valid = atelier::safetensors::serialize(
      {{"a", atelier::safetensors::DType::kF32, {2, 2}, std::string(16, '\1')},
       {"b", atelier::safetensors::DType::kBF16, {3}, std::string(6, '\2')}},
      {{"format", "pt"}});
  out.push_back(*valid);
  return out;
}

void run(const std::string& bytes) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

TEST(SafetensorsFuzzSmoke, CorpusAndMutationsNeverCrash) {
  const auto seeds = corpus();
  ASSERT_GE(seeds.size(), 4u) << "the seed corpus is missing (run from the repository root)";
  for (const auto& s : seeds) run(s);
  std::mt19937_64 rng(20261126);
  const char interesting[] = {'\0', '\xff', '{', '}', '[', ']', '"', ',', ':', '-', '9', 'e'};
  for (int i = 0; i < 20'000; ++i) {
    std::string b = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const size_t at = rng() % b.size();
      switch (rng() % 5) {
        case 0:
          b[at] = static_cast<char>(b[at] ^ (1 << (rng() % 8)));
          break;
        case 1:
          b[at] = interesting[rng() % sizeof(interesting)];
          break;
        case 2:
          b.resize(at);
          break;
        case 3:
          b.insert(at, 1, interesting[rng() % sizeof(interesting)]);
          break;
        case 4:
          if (b.size() >= 8) {
            const uint64_t len = rng() % (b.size() + 16);
            for (int k = 0; k < 8; ++k)
              b[static_cast<size_t>(k)] = static_cast<char>(len >> (8 * k));
          }
          break;
      }
    }
    run(b);
  }
}

}  // namespace
