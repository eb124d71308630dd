// split_prompt_loras: A1111's `<lora:name:weight>` tags cut out of the prompt the encoder sees.
#include "server/inference/prompt_loras.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace atelier::inference {
namespace {

using Loras = std::vector<LoraRef>;

TEST(PromptLorasTest, NoTagsLeavesThePromptAsItIs) {
  PromptLoras r = split_prompt_loras("a cat on a mat, <b>bold</b>, 3:2 ratio");
  EXPECT_EQ(r.prompt, "a cat on a mat, <b>bold</b>, 3:2 ratio");
  EXPECT_TRUE(r.loras.empty());
  EXPECT_EQ(split_prompt_loras("").prompt, "");
}

TEST(PromptLorasTest, OneTagWithAWeight) {
  PromptLoras r = split_prompt_loras("a cat, <lora:pixel_art:0.8>");
  EXPECT_EQ(r.prompt, "a cat, ");  // only the tag goes, as in A1111
  EXPECT_EQ(r.loras, (Loras{{"pixel_art", 0.8}}));
}

TEST(PromptLorasTest, WeightIsOptionalAndDefaultsToOne) {
  PromptLoras r = split_prompt_loras("<lora:style>a cat");
  EXPECT_EQ(r.prompt, "a cat");
  EXPECT_EQ(r.loras, (Loras{{"style", 1.0}}));
}

TEST(PromptLorasTest, NegativeSignedAndExponentWeights) {
  PromptLoras r =
      split_prompt_loras("<lora:a:-1><lora:b:+.5><lora:c:1e-1><lora:d:-0.25><lora:e:2.>");
  EXPECT_EQ(r.prompt, "");
  EXPECT_EQ(r.loras, (Loras{{"a", -1.0}, {"b", 0.5}, {"c", 0.1}, {"d", -0.25}, {"e", 2.0}}));
}

TEST(PromptLorasTest, SeveralTagsInPromptOrderWithDuplicatesKept) {
  PromptLoras r = split_prompt_loras("x <lora:one:0.5> y <lora:two> z <lora:one:1.5>");
  EXPECT_EQ(r.prompt, "x  y  z ");
  EXPECT_EQ(r.loras, (Loras{{"one", 0.5}, {"two", 1.0}, {"one", 1.5}}));
}

TEST(PromptLorasTest, NestedColonsBelongToTheName) {
  PromptLoras r = split_prompt_loras("<lora:studio:ghibli:v2:0.7> and <lora:a:b:c>");
  // The last part is a number: the rest is the name. "<lora:a:b:c>" ends in no number.
  EXPECT_EQ(r.loras, (Loras{{"studio:ghibli:v2", 0.7}}));
  EXPECT_EQ(r.prompt, " and <lora:a:b:c>");
}

TEST(PromptLorasTest, SpacesAroundNameAndWeightAreIgnored) {
  PromptLoras r = split_prompt_loras("<lora: film grain : 0.6 >, <lora:\tsoft\t>");
  EXPECT_EQ(r.loras, (Loras{{"film grain", 0.6}, {"soft", 1.0}}));
  EXPECT_EQ(r.prompt, ", ");
}

TEST(PromptLorasTest, MalformedTagsStayAsText) {
  for (const char* text :
       {"<lora:>", "<lora::0.5>", "<lora:  :1>", "<lora:name:>", "<lora:name:abc>",
        "<lora:name:te=0.5>", "<lora:name:0.5", "<lora:name", "<lora:na\nme:1>", "<lora:name:nan>",
        "<lora:name:inf>", "<lora:name:1e999>", "<LORA:name:1>", "<lyco:name:1>", "< lora:name:1>",
        "<lora:name:0x10>", "<lora:name:1.2.3>"}) {
    PromptLoras r = split_prompt_loras(text);
    EXPECT_EQ(r.prompt, text);
    EXPECT_TRUE(r.loras.empty()) << text;
  }
}

TEST(PromptLorasTest, AWellFormedTagAfterAMalformedOneIsFound) {
  PromptLoras r = split_prompt_loras("<lora:<lora:ok:0.3> <lora:bad:x> <lora:fine>");
  EXPECT_EQ(r.loras, (Loras{{"ok", 0.3}, {"fine", 1.0}}));
  EXPECT_EQ(r.prompt, "<lora: <lora:bad:x> ");
}

TEST(PromptLorasTest, MultilinePromptsAndUnicodeNames) {
  PromptLoras r = split_prompt_loras("line one\n<lora:café:0.9>\nline two");
  EXPECT_EQ(r.prompt, "line one\n\nline two");
  EXPECT_EQ(r.loras, (Loras{{"café", 0.9}}));
}

TEST(PromptLorasTest, SplittingTwiceChangesNothingMore) {
  PromptLoras once = split_prompt_loras("a <lora:x:0.5> b <lora:y> c");
  PromptLoras twice = split_prompt_loras(once.prompt);
  EXPECT_EQ(twice.prompt, once.prompt);
  EXPECT_TRUE(twice.loras.empty());
}

}  // namespace
}  // namespace atelier::inference
