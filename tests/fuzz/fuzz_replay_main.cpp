// A stand-in for libFuzzer's driver in the normal build: feeds every file of the given corpus
// directories (or the given files) to LLVMFuzzerTestOneInput, in name order, then, with
// -mutations=N, N deterministic mutations of them (bit flips, byte sets, truncations,
// insertions, splices). A crash, abort or sanitizer report fails the run, so CTest runs each
// target over its seed corpus (FuzzSmoke.<target>) with the ordinary compiler.
//
//   fuzz_json_body_replay [-mutations=N] tests/fuzz/corpus/json_body [more dirs or files]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run(const std::string& bytes) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// One to four edits of `b`, with bytes that matter to the formats fuzzed here (JSON, PNG).
std::string mutate(std::string b, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  static constexpr char kInteresting[] = {'\0', '\xff', '\x80', '\xc2', '{', '}', '[', ']',   '"',
                                          ',',  ':',    '\\',   '\n',   '-', '9', 'e', '\x02'};
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t at = b.empty() ? 0 : rng() % b.size();
    switch (rng() % 5) {
      case 0:
        if (!b.empty()) b[at] = static_cast<char>(b[at] ^ (1 << (rng() % 8)));
        break;
      case 1:
        if (!b.empty()) b[at] = kInteresting[rng() % sizeof(kInteresting)];
        break;
      case 2:
        b.resize(at);
        break;
      case 3:
        b.insert(at, 1, kInteresting[rng() % sizeof(kInteresting)]);
        break;
      case 4: {  // a piece of another seed
        const std::string& other = seeds[rng() % seeds.size()];
        if (other.empty()) break;
        const size_t from = rng() % other.size();
        b.insert(at, other.substr(from, 1 + rng() % 32));
        break;
      }
    }
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 0;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "-mutations=", 11) == 0) {
      mutations = std::strtol(argv[i] + 11, nullptr, 10);
      continue;
    }
    const fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }
  if (files.empty()) {
    // A smoke test over nothing would pass while testing nothing.
    std::fprintf(stderr, "no inputs (run from the repository root, or name a corpus)\n");
    return 2;
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> seeds;
  for (const auto& f : files) {
    seeds.push_back(read_file(f));
    run(seeds.back());
  }
  std::mt19937_64 rng(20261207);
  for (long i = 0; i < mutations; ++i) run(mutate(seeds[rng() % seeds.size()], seeds, rng));
  std::printf("replayed %zu inputs and %ld mutations\n", files.size(), mutations);
  return 0;
}
