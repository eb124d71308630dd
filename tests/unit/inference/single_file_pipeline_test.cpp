// Single-file checkpoints as whole pipelines: the sd15-tiny-ldm and sdxl-tiny files (made by
// diffusers' own conversion scripts), given a sidecar naming the fixture's configs, generate
// what diffusers generated from the folders; the CLIP vocabulary Atelier ships tokenizes exactly
// as the reference tokenizer.
#include "server/inference/sd/single_file_pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/safetensors.h"
#include "server/inference/sd/model_files.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::fixture_tensor;
using fixture::max_diff;

const fs::path kFixtures = "../shared/fixtures";

// A temp models folder with `file` linked in as <name>.safetensors and a sidecar naming
// `config_dir` (../shared is read-only).
fs::path staged(const std::string& name, const fs::path& file, const fs::path& config_dir) {
  // One folder per process: ctest runs each case of this suite in its own process at once.
  const fs::path dir =
      fs::temp_directory_path() / ("atelier-sfp-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::create_symlink(fs::absolute(file), dir / (name + ".safetensors"));
  std::ofstream(dir / (name + ".json")) << nlohmann::json{{"config_dir", fs::absolute(config_dir)}};
  return dir / (name + ".safetensors");
}

TEST(ShippedVocabularyTest, TokenizesLikeOpenAIsReferenceTokenizer) {
  const fs::path cases = kFixtures / "clip-tokenizer/token_ids.json";
  if (!fs::exists(cases)) GTEST_SKIP() << "../shared/fixtures/clip-tokenizer is absent";
  auto text = read_gzip_file(shipped_clip_vocab());
  ASSERT_TRUE(text.is_ok()) << text.status().message();
  auto t = ClipTokenizer::from_openai_bpe(*text);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(t->vocab_size(), 49408u);
  EXPECT_EQ(t->bos_id(), 49406);
  EXPECT_EQ(t->eos_id(), 49407);
  std::ifstream in(cases);
  const auto j = nlohmann::json::parse(in);
  int n = 0;
  for (const auto& c : j["cases"]) {
    const std::string s = c["text"];
    EXPECT_EQ(t->encode(s), c["ids"].get<std::vector<int64_t>>()) << s;
    EXPECT_EQ(t->encode_padded(s), c["ids_77_sd1"].get<std::vector<int64_t>>()) << s;
    ++n;
  }
  EXPECT_GE(n, 10);
  // SD 2.x / SDXL's second tokenizer pads with "!" and, as transformers does, splits it out.
  auto bang = ClipTokenizer::from_openai_bpe(*text, "!");
  ASSERT_TRUE(bang.is_ok());
  EXPECT_EQ(bang->pad_id(), 0);
  const auto ids = bang->encode("wow!");
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[2], 0);
  EXPECT_FALSE(ClipTokenizer::from_openai_bpe("#version\na b\n").is_ok());
}

struct RunCase {
  const char* fixture;
  const char* file;
  const char* run;
  SamplerKind sampler;
  double guidance;
  int width, height;
};

class SingleFilePipelineTest : public ::testing::TestWithParam<RunCase> {};

TEST_P(SingleFilePipelineTest, GeneratesWhatDiffusersGeneratedFromTheFolder) {
  const RunCase& c = GetParam();
  const fs::path root = kFixtures / c.fixture;
  if (!fs::exists(root)) GTEST_SKIP() << "../shared/fixtures/" << c.fixture << " is absent";
  const fs::path file = staged(c.fixture, root / "single_file" / c.file, root);
  auto pipe = load_single_file_pipeline(file.string());
  ASSERT_TRUE(pipe.is_ok()) << pipe.status().message();
  auto ref =
      safetensors::File::open((root / "expected" / (std::string(c.run) + ".safetensors")).string());
  ASSERT_TRUE(ref.is_ok());
  GenerationRequest r;
  r.prompt = "a red fox in the snow";
  r.negative_prompt = "blurry, low quality";
  r.width = c.width;
  r.height = c.height;
  r.steps = 5;
  r.guidance = c.guidance;
  r.sampler = c.sampler;
  r.original_width = r.original_height = r.target_width = r.target_height = 1024;
  r.init_latents = fixture_tensor(*ref, "init_latents");
  GenerationTrace trace;
  auto image = pipe->generate(r, {}, &trace);
  ASSERT_TRUE(image.is_ok()) << image.status().message();
  EXPECT_LT(max_diff(trace.prompt_embeds, fixture_tensor(*ref, "prompt_embeds")), 1e-4);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_LT(max_diff(trace.latents[i], fixture_tensor(*ref, "latents_" + std::to_string(i + 1))),
              1e-3)
        << "step " << i;
  }
  EXPECT_LT(max_diff(*image, fixture_tensor(*ref, "image")), 1e-3);
  EXPECT_EQ(pipe->parameters().count("unet"), 1u);
  fs::remove_all(file.parent_path());
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, SingleFilePipelineTest,
    ::testing::Values(RunCase{"sd15-tiny-ldm", "sd15-tiny-ldm.safetensors",
                              "txt2img_euler_g7p5_neg", SamplerKind::kEuler, 7.5, 128, 128},
                      RunCase{"sd15-tiny-ldm", "sd15-tiny-ldm.safetensors", "txt2img_ddim_g1",
                              SamplerKind::kDdim, 1.0, 128, 128},
                      RunCase{"sdxl-tiny", "sdxl-tiny.safetensors", "txt2img_euler_g5_neg",
                              SamplerKind::kEuler, 5.0, 192, 128}));

}  // namespace
}  // namespace atelier::sd
