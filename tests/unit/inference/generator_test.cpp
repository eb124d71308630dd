// The Generator interface's shared helpers: mode names and the cancel token.
#include "server/inference/generator.h"

#include <gtest/gtest.h>

namespace atelier::inference {
namespace {

TEST(ModeTest, NamesAreTheApiStrings) {
  EXPECT_EQ(mode_name(Mode::kTxt2Img), "txt2img");
  EXPECT_EQ(mode_name(Mode::kVariation), "variation");
  EXPECT_EQ(mode_name(Mode::kRemix), "remix");
  EXPECT_EQ(mode_name(Mode::kUpscale), "upscale");
}

TEST(ModeTest, ParseIsTheInverseOfModeName) {
  for (Mode m : {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix, Mode::kUpscale}) {
    auto parsed = parse_mode(mode_name(m));
    ASSERT_TRUE(parsed.has_value()) << mode_name(m);
    EXPECT_EQ(*parsed, m);
  }
}

TEST(ModeTest, ParseRefusesUnknownNames) {
  EXPECT_EQ(parse_mode(""), std::nullopt);
  EXPECT_EQ(parse_mode("img2img"), std::nullopt);
  EXPECT_EQ(parse_mode("Txt2Img"), std::nullopt);
  EXPECT_EQ(parse_mode("upscale "), std::nullopt);
  EXPECT_EQ(parse_mode("variations"), std::nullopt);
}

TEST(CancelTokenTest, StartsUncancelledAndStaysCancelled) {
  CancelToken token;
  EXPECT_FALSE(token.cancelled());
  token.cancel();
  EXPECT_TRUE(token.cancelled());
  token.cancel();
  EXPECT_TRUE(token.cancelled());
}

}  // namespace
}  // namespace atelier::inference
