// The job record's helpers: state names and the A1111 "parameters" text.
#include "server/jobs/job.h"

#include <gtest/gtest.h>

#include <string>

namespace atelier::jobs {
namespace {

constexpr JobState kAllStates[] = {JobState::kQueued, JobState::kRunning, JobState::kDone,
                                   JobState::kFailed, JobState::kCancelled};

TEST(JobStateTest, NamesAreTheApiStrings) {
  EXPECT_EQ(state_name(JobState::kQueued), "queued");
  EXPECT_EQ(state_name(JobState::kRunning), "running");
  EXPECT_EQ(state_name(JobState::kDone), "done");
  EXPECT_EQ(state_name(JobState::kFailed), "failed");
  EXPECT_EQ(state_name(JobState::kCancelled), "cancelled");
}

TEST(JobStateTest, ParseIsTheInverseOfStateName) {
  for (JobState s : kAllStates) {
    auto parsed = parse_state(state_name(s));
    ASSERT_TRUE(parsed.has_value()) << state_name(s);
    EXPECT_EQ(*parsed, s);
  }
}

TEST(JobStateTest, ParseRefusesUnknownNames) {
  EXPECT_EQ(parse_state(""), std::nullopt);
  EXPECT_EQ(parse_state("Queued"), std::nullopt);
  EXPECT_EQ(parse_state("canceled"), std::nullopt);
  EXPECT_EQ(parse_state("done "), std::nullopt);
  EXPECT_EQ(parse_state("pending"), std::nullopt);
}

TEST(JobStateTest, TerminalStates) {
  EXPECT_FALSE(is_terminal(JobState::kQueued));
  EXPECT_FALSE(is_terminal(JobState::kRunning));
  EXPECT_TRUE(is_terminal(JobState::kDone));
  EXPECT_TRUE(is_terminal(JobState::kFailed));
  EXPECT_TRUE(is_terminal(JobState::kCancelled));
}

JobParams cat_params() {
  JobParams p;
  p.model = "cppn";
  p.prompt = "a cat";
  p.negative_prompt = "blurry";
  p.steps = 20;
  p.sampler = "smooth";
  p.guidance = 7.5;
  p.seed = 1;  // the seed argument wins: it is the image's, not the job's
  p.width = 64;
  p.height = 64;
  return p;
}

TEST(A1111ParametersTest, ExactFormatWithNegativePrompt) {
  EXPECT_EQ(a1111_parameters(cat_params(), 42, 512, 768),
            "a cat\nNegative prompt: blurry\nSteps: 20, Sampler: smooth, CFG scale: 7.5, "
            "Seed: 42, Size: 512x768, Model: cppn");
}

TEST(A1111ParametersTest, NoNegativePromptLineWithoutANegativePrompt) {
  JobParams p = cat_params();
  p.negative_prompt.clear();
  std::string text = a1111_parameters(p, 42, 512, 768);
  EXPECT_EQ(text,
            "a cat\nSteps: 20, Sampler: smooth, CFG scale: 7.5, Seed: 42, Size: 512x768, "
            "Model: cppn");
  EXPECT_EQ(text.find("Negative prompt"), std::string::npos);
}

TEST(A1111ParametersTest, WholeGuidancePrintsWithoutDecimals) {
  JobParams p = cat_params();
  p.guidance = 7;
  EXPECT_NE(a1111_parameters(p, 42, 512, 768).find(", CFG scale: 7, "), std::string::npos);
  p.guidance = 0;
  EXPECT_NE(a1111_parameters(p, 42, 512, 768).find(", CFG scale: 0, "), std::string::npos);
  p.guidance = 12.25;
  EXPECT_NE(a1111_parameters(p, 42, 512, 768).find(", CFG scale: 12.25, "), std::string::npos);
}

TEST(A1111ParametersTest, UsesTheGivenSeedAndSizeNotTheJobs) {
  JobParams p = cat_params();
  std::string text = a1111_parameters(p, 9007199254740991, 1024, 8);
  EXPECT_NE(text.find("Seed: 9007199254740991, Size: 1024x8,"), std::string::npos) << text;
  EXPECT_EQ(text.find("Size: 64x64"), std::string::npos);
}

TEST(A1111ParametersTest, MultilinePromptIsKeptAsIs) {
  JobParams p = cat_params();
  p.prompt = "line one\nline two";
  std::string text = a1111_parameters(p, 1, 8, 8);
  EXPECT_EQ(text.rfind("line one\nline two\nNegative prompt: blurry\nSteps: 20,", 0), 0u) << text;
}

JobParams xl_params() {
  JobParams p;
  p.model = "sdxl-base";
  p.prompt = "a cat, <lora:ink:0.7>";
  p.steps = 20;
  p.sampler = "euler";
  p.guidance = 7;
  p.model_hash = "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b";
  return p;
}

TEST(A1111ParametersTest, ModelHashComesBeforeTheModel) {
  JobParams p = xl_params();
  p.prompt = "a cat";
  EXPECT_EQ(a1111_parameters(p, 42, 1024, 1024),
            "a cat\nSteps: 20, Sampler: euler, CFG scale: 7, Seed: 42, Size: 1024x1024, "
            "Model hash: 31e35c80fc, Model: sdxl-base");
}

TEST(A1111ParametersTest, LoraHashesAsA1111WritesThem) {
  JobParams p = xl_params();
  p.loras = {{"ink", 0.7}, {"film:grain,v2", -1}, {"nohash", 1}};
  p.lora_hashes = {{"ink", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
                   {"film:grain,v2",
                    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba98"
                    "76543210"}};
  // The prompt keeps its tags; names lose ':' and ','; a LoRA without a hash is left out; the
  // list is quoted since it holds ':' and ','.
  EXPECT_EQ(a1111_parameters(p, 7, 1024, 768),
            "a cat, <lora:ink:0.7>\nSteps: 20, Sampler: euler, CFG scale: 7, Seed: 7, "
            "Size: 1024x768, Model hash: 31e35c80fc, Model: sdxl-base, "
            "Lora hashes: \"ink: 0123456789ab, filmgrainv2: fedcba987654\"");
}

TEST(A1111ParametersTest, NoLoraHashesWithoutLorasOrHashes) {
  JobParams p = xl_params();
  EXPECT_EQ(a1111_parameters(p, 7, 8, 8).find("Lora hashes"), std::string::npos);
  p.loras = {{"ink", 0.7}};  // no hash known
  EXPECT_EQ(a1111_parameters(p, 7, 8, 8).find("Lora hashes"), std::string::npos);
}

TEST(A1111ParametersTest, ValuesWithCommasOrColonsAreQuoted) {
  JobParams p = cat_params();
  p.model = "my,model";
  p.sampler = "dpm:2";
  std::string text = a1111_parameters(p, 1, 8, 8);
  EXPECT_NE(text.find("Sampler: \"dpm:2\", "), std::string::npos) << text;
  EXPECT_NE(text.find(", Model: \"my,model\""), std::string::npos) << text;
}

}  // namespace
}  // namespace atelier::jobs
