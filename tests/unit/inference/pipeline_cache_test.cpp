#include "server/inference/sd/pipeline_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::kTiny;

// The sd-tiny folder's parameters (its README): text encoder, UNet and VAE.
constexpr int64_t kTinyParameters = 68'473 + 1'427'012 + 658'375;

class PipelineCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTiny)) GTEST_SKIP() << "skipped: " << kTiny << " is absent";
    root_ = fs::temp_directory_path() / ("atelier_cache_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    // Three model folders with the fixture's files under different names.
    for (const char* name : {"a", "b", "c"}) {
      fs::create_directory_symlink(fs::absolute(kTiny), root_ / name);
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string dir(const char* name) const { return (root_ / name).string(); }

  // A loader that counts the loads it passes on to the real one.
  PipelineCache::Loader counting() {
    return [this](const std::string& d, torch::Dtype t, torch::Device dev) {
      ++loads_;
      return StableDiffusion::load(d, t, dev);
    };
  }

  fs::path root_;
  int loads_ = 0;
};

TEST_F(PipelineCacheTest, CountsTheParametersInTheDtypeTheyAreLoadedAs) {
  EXPECT_EQ(*parameter_bytes(kTiny.string(), torch::kFloat32), kTinyParameters * 4);
  // The fixture's VAE config says force_upcast: it stays float32 in a half-precision pipeline.
  constexpr int64_t kTinyVae = 658'375;
  EXPECT_EQ(*parameter_bytes(kTiny.string(), torch::kHalf), kTinyParameters * 2 + kTinyVae * 2);
}

TEST_F(PipelineCacheTest, KeepsWhatFitsAndDropsTheLeastRecentlyUsed) {
  const torch::Device cpu(torch::kCPU);
  PipelineCache cache(kTinyParameters * 4 * 5 / 2, counting());  // room for two
  ASSERT_TRUE(cache.get(dir("a"), torch::kFloat32, cpu).is_ok());
  ASSERT_TRUE(cache.get(dir("b"), torch::kFloat32, cpu).is_ok());
  auto again = cache.get(dir("a"), torch::kFloat32, cpu);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(loads_, 2) << "a second use of a loaded model loads nothing";
  EXPECT_EQ(cache.loaded(), (std::vector<std::string>{dir("a"), dir("b")}));
  EXPECT_EQ(cache.used_bytes(), kTinyParameters * 4 * 2);

  ASSERT_TRUE(cache.get(dir("c"), torch::kFloat32, cpu).is_ok());
  EXPECT_EQ(loads_, 3);
  EXPECT_EQ(cache.loaded(), (std::vector<std::string>{dir("c"), dir("a")}))
      << "b was the least recently used";
  EXPECT_EQ(cache.used_bytes(), kTinyParameters * 4 * 2);

  // The same folder in another dtype is another pipeline; in float64 it takes twice the bytes,
  // so both float32 ones make room for it.
  ASSERT_TRUE(cache.get(dir("c"), torch::kFloat64, cpu).is_ok());
  EXPECT_EQ(loads_, 4);
  EXPECT_EQ(cache.loaded(), std::vector<std::string>{dir("c")});
  EXPECT_EQ(cache.used_bytes(), kTinyParameters * 8);

  // A pipeline handed out works.
  auto p = cache.get(dir("c"), torch::kFloat64, cpu);
  ASSERT_TRUE(p.is_ok());
  GenerationRequest r;
  r.prompt = "fox";
  r.width = r.height = 64;
  r.steps = 1;
  EXPECT_TRUE((*p)->pipeline.generate(r).is_ok());
}

TEST_F(PipelineCacheTest, AModelLargerThanTheBudgetIsRefusedWithBothSizes) {
  const torch::Device cpu(torch::kCPU);
  PipelineCache cache(kTinyParameters * 4 - 1, counting());
  auto big = cache.get(dir("a"), torch::kFloat32, cpu);
  ASSERT_FALSE(big.is_ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("--sd-cache-mb"), std::string::npos)
      << big.status().message();
  EXPECT_EQ(loads_, 0) << "refused before reading any weights";
  // In half precision it fits.
  EXPECT_TRUE(cache.get(dir("a"), torch::kHalf, cpu).is_ok());
}

TEST_F(PipelineCacheTest, ALoadThatThrowsFailsTheJobAndTheCacheGoesOn) {
  const torch::Device cpu(torch::kCPU);
  int calls = 0;
  PipelineCache cache(
      int64_t{1} << 40,
      [&](const std::string& d, torch::Dtype t, torch::Device dev) -> Result<StableDiffusion> {
        if (++calls == 1) throw std::runtime_error("CUDA out of memory.\nbacktrace...");
        return StableDiffusion::load(d, t, dev);
      });
  auto oom = cache.get(dir("a"), torch::kFloat32, cpu);
  ASSERT_FALSE(oom.is_ok());
  EXPECT_EQ(oom.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(oom.status().message().find("CUDA out of memory."), std::string::npos);
  EXPECT_EQ(oom.status().message().find("backtrace"), std::string::npos);
  EXPECT_TRUE(cache.loaded().empty());
  EXPECT_TRUE(cache.get(dir("a"), torch::kFloat32, cpu).is_ok());
}

TEST_F(PipelineCacheTest, AFailedLoadIsReportedAndNotKept) {
  const torch::Device cpu(torch::kCPU);
  PipelineCache cache(int64_t{1} << 40, counting());
  ASSERT_TRUE(cache.get(dir("a"), torch::kFloat32, cpu).is_ok());
  fs::create_directories(root_ / "empty");
  auto bad = cache.get(dir("empty"), torch::kFloat32, cpu);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("model_index.json"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(cache.loaded(), std::vector<std::string>{dir("a")});
  EXPECT_EQ(cache.used_bytes(), kTinyParameters * 4);
}

}  // namespace
}  // namespace atelier::sd
