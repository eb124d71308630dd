// The CLIP tokenizer against the reference ids: the full CLIP vocabulary
// (../shared/fixtures/clip-tokenizer) and the tiny pipeline's truncated one
// (../shared/fixtures/sd-tiny/tokenizer), both as OpenAI's tokenizer computed them.
#include "server/inference/sd/clip_tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "server/inference/sd/model_files.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kClip = "../shared/fixtures/clip-tokenizer";
const fs::path kTiny = "../shared/fixtures/sd-tiny";

// A fixture file's text; empty when absent (the tests skip before reading then).
std::string slurp(const fs::path& p) {
  auto text = read_model_file(p.string());
  return text.is_ok() ? *text : std::string();
}

std::vector<int64_t> ids(const json& j) {
  return j.get<std::vector<int64_t>>();
}

TEST(ClipTokenizerTest, MatchesOpenAIsIdsWithTheFullVocabulary) {
  if (!fs::exists(kClip)) GTEST_SKIP() << "../shared/fixtures/clip-tokenizer is absent";
  const std::string vocab = slurp(kClip / "vocab.json");
  const std::string merges = slurp(kClip / "merges.txt");
  auto sd1 = ClipTokenizer::from_strings(vocab, merges, "<|endoftext|>");
  auto sd2 = ClipTokenizer::from_strings(vocab, merges, "!");
  ASSERT_TRUE(sd1.is_ok()) << sd1.status().message();
  ASSERT_TRUE(sd2.is_ok());
  EXPECT_EQ(sd1->vocab_size(), 49408u);
  EXPECT_EQ(sd1->bos_id(), 49406);
  EXPECT_EQ(sd1->eos_id(), 49407);
  EXPECT_EQ(sd2->pad_id(), 0);
  const json cases = json::parse(slurp(kClip / "token_ids.json"))["cases"];
  ASSERT_GE(cases.size(), 19u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    EXPECT_EQ(sd1->encode(text), ids(c["ids"])) << "text: " << text;
    EXPECT_EQ(sd1->encode_padded(text), ids(c["ids_77_sd1"])) << "text: " << text;
    EXPECT_EQ(sd2->encode_padded(text), ids(c["ids_77_sd2"])) << "text: " << text;
  }
}

TEST(ClipTokenizerTest, MatchesTheTinyPipelinesTokenizerCases) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  auto tiny = ClipTokenizer::load((kTiny / "tokenizer").string());
  ASSERT_TRUE(tiny.is_ok()) << tiny.status().message();
  EXPECT_EQ(tiny->vocab_size(), 1000u);
  EXPECT_EQ(tiny->bos_id(), 998);
  EXPECT_EQ(tiny->pad_id(), 999);
  EXPECT_EQ(tiny->max_length(), 77);
  auto full = ClipTokenizer::from_strings(slurp(kClip / "vocab.json"), slurp(kClip / "merges.txt"));
  ASSERT_TRUE(full.is_ok());
  for (const auto& [file, tok] : {std::pair{"tokenizer_cases.json", &*tiny},
                                  std::pair{"tokenizer_cases_full_clip_vocab.json", &*full}}) {
    const json cases = json::parse(slurp(kTiny / "expected" / file))["cases"];
    ASSERT_EQ(cases.size(), 13u);
    for (const auto& c : cases) {
      const std::string text = c["text"];
      // OpenAI's behaviour is the one to match (see the fixture's README).
      EXPECT_EQ(tok->encode(text), ids(c["openai_simple_tokenizer_ids"])) << file << ": " << text;
      // Where the pipeline's tokenizer agrees with it, the 77 ids the pipeline used, too.
      if (c["matches_openai_simple_tokenizer"] == true) {
        EXPECT_EQ(tok->encode_padded(text), ids(c["input_ids"])) << file << ": " << text;
      }
    }
  }
}

TEST(ClipTokenizerTest, CleansAndSplitsLikeTheReference) {
  EXPECT_EQ(ClipTokenizer::clean("  A  PHOTO\tof\n&amp;amp; Cat!  "), "a photo of & cat!");
  EXPECT_EQ(ClipTokenizer::clean("Cafe\u0301"), "caf\u00e9");  // NFC
  EXPECT_EQ(
      ClipTokenizer::split_words("it's 42 mr.x <|endoftext|>!!"),
      (std::vector<std::string>{"it", "'s", "4", "2", "mr", ".", "x", "<|endoftext|>", "!!"}));
}

TEST(ClipTokenizerTest, RefusesBrokenFoldersNamingTheProblem) {
  const std::string vocab = R"({"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2})";
  auto bad_merges = ClipTokenizer::from_strings(vocab, "#version: 0.2\na b\nonlyone\n");
  ASSERT_FALSE(bad_merges.is_ok());
  EXPECT_NE(bad_merges.status().message().find("merges.txt line 3"), std::string::npos);
  auto no_eos = ClipTokenizer::from_strings(R"({"<|startoftext|>": 1})", "");
  ASSERT_FALSE(no_eos.is_ok());
  EXPECT_NE(no_eos.status().message().find("<|endoftext|>"), std::string::npos);
  EXPECT_FALSE(ClipTokenizer::from_strings("[]", "").is_ok());
  EXPECT_FALSE(ClipTokenizer::from_strings(vocab, "", "!").is_ok());
  auto missing = ClipTokenizer::load("/nonexistent/tokenizer");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("vocab.json"), std::string::npos);
}

}  // namespace
}  // namespace atelier::sd
