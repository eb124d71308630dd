// The torch-free half of the CPPN model: prompt normalisation, palettes, structure, latents and
// the lineage format.
#include "server/inference/cppn_style.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace atelier::inference::cppn {
namespace {

// The palette's mean colour over t.
std::array<float, 3> mean_colour(const Palette& p) {
  std::array<float, 3> sum{};
  for (int i = 0; i < 64; ++i) {
    const auto rgb = eval_palette(p, (i + 0.5f) / 64);
    for (int c = 0; c < 3; ++c) sum[c] += rgb[c] / 64;
  }
  return sum;
}

TEST(CppnStyle, PromptWordsAreNormalised) {
  EXPECT_EQ(normalize_words("A Red, red CASTLE!! at-night"),
            (std::vector<std::string>{"castle", "night", "red"}));
  EXPECT_EQ(normalize_words("  "), std::vector<std::string>{});
  EXPECT_EQ(normalize_words("café"), std::vector<std::string>{"café"});

  const Palette a = palette_for_prompt("neon city lights");
  const Palette b = palette_for_prompt("Lights, city; NEON");
  EXPECT_EQ(a.a, b.a);
  EXPECT_EQ(a.d, b.d);
  EXPECT_EQ(structure_for_prompt("neon city lights").layers,
            structure_for_prompt("lights city neon").layers);
}

TEST(CppnStyle, ColourWordsSteerThePalette) {
  const auto red = mean_colour(palette_for_prompt("red dragon"));
  EXPECT_GT(red[0], red[1] + 0.15f);
  EXPECT_GT(red[0], red[2] + 0.15f);
  const auto blue = mean_colour(palette_for_prompt("blue dragon"));
  EXPECT_GT(blue[2], blue[0] + 0.15f);
  const auto forest = mean_colour(palette_for_prompt("forest"));
  EXPECT_GT(forest[1], forest[2]);
  // Monochrome is (nearly) grey everywhere.
  const Palette mono = palette_for_prompt("monochrome portrait");
  for (int i = 0; i < 16; ++i) {
    const auto rgb = eval_palette(mono, i / 15.0f);
    EXPECT_NEAR(rgb[0], rgb[1], 0.1f);
    EXPECT_NEAR(rgb[1], rgb[2], 0.1f);
  }
  // Jitter: same colour word, different other words, slightly different palettes.
  EXPECT_NE(palette_for_prompt("red dragon").a, palette_for_prompt("red castle").a);

  const auto plain = mean_colour(palette_for_prompt("sunset"));
  const auto no_red = mean_colour(palette_for_prompt("sunset", "red"));
  EXPECT_LT(no_red[0] - no_red[2], plain[0] - plain[2]);
  // Non-colour negative words change nothing.
  EXPECT_EQ(palette_for_prompt("sunset", "people, text").a, palette_for_prompt("sunset").a);
}

TEST(CppnStyle, PalettesStayInGamut) {
  for (const char* prompt : {"", "neon", "ice", "fire", "night", "pastel", "rainbow", "x y z",
                             "gold red blue", "monochrome"}) {
    const Palette p = palette_for_prompt(prompt, "blue");
    for (int i = 0; i <= 100; ++i) {
      for (float v : eval_palette(p, i / 100.0f)) {
        EXPECT_GE(v, 0.0199f) << prompt;
        EXPECT_LE(v, 0.9801f) << prompt;
      }
    }
  }
}

TEST(CppnStyle, StructureIgnoresColourWords) {
  const Structure a = structure_for_prompt("a red castle");
  const Structure b = structure_for_prompt("castle in blue and gold");
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.gain, b.gain);
  EXPECT_GE(a.layers.size(), 3u);
  EXPECT_LE(a.layers.size(), 5u);
  // Mood words.
  EXPECT_LT(structure_for_prompt("castle calm").scale,
            structure_for_prompt("castle intricate").scale);
}

TEST(CppnStyle, LatentAndVariation) {
  const auto z = latent_for_seed(7);
  EXPECT_EQ(z, latent_for_seed(7));
  EXPECT_NE(z, latent_for_seed(8));
  EXPECT_EQ(vary_latent(z, 99, 0.0), z);
  auto dist = [&](const std::array<float, kLatentDim>& v) {
    double s = 0;
    for (int i = 0; i < kLatentDim; ++i) s += (v[i] - z[i]) * (v[i] - z[i]);
    return std::sqrt(s);
  };
  double last = 0;
  for (double s : {0.1, 0.3, 0.6, 1.0}) {
    const double d = dist(vary_latent(z, 99, s));
    EXPECT_GT(d, last);
    last = d;
  }
  EXPECT_NE(vary_latent(z, 1, 0.5), vary_latent(z, 2, 0.5));
}

TEST(CppnStyle, GuidanceMapping) {
  EXPECT_LT(contrast_for_guidance(1), contrast_for_guidance(7));
  EXPECT_LT(contrast_for_guidance(7), contrast_for_guidance(20));
  EXPECT_LT(saturation_for_guidance(1), saturation_for_guidance(7));
  EXPECT_FLOAT_EQ(saturation_for_guidance(7), 1.0f);
  EXPECT_FLOAT_EQ(saturation_for_guidance(20), 1.0f);
}

State sample_state() {
  State st;
  st.network.seed = 0xfedcba9876543210ULL;
  st.network.structure = structure_for_prompt("spiral galaxy");
  st.network.latent = latent_for_seed(3);
  st.look.palette = palette_for_prompt("spiral galaxy", "green");
  st.look.guidance = 7.3f;
  st.look.sampler = Sampler::kContour;
  return st;
}

TEST(CppnLineage, RoundTripsExactly) {
  const State st = sample_state();
  const std::string text = format_lineage(st);
  EXPECT_EQ(text.rfind("cppn1;net=fedcba9876543210;", 0), 0u) << text;
  auto parsed = parse_lineage(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->network.seed, st.network.seed);
  EXPECT_EQ(parsed->network.structure.layers, st.network.structure.layers);
  EXPECT_EQ(parsed->network.structure.width, st.network.structure.width);
  EXPECT_EQ(parsed->network.structure.scale, st.network.structure.scale);
  EXPECT_EQ(parsed->network.structure.gain, st.network.structure.gain);
  EXPECT_EQ(parsed->network.latent, st.network.latent);
  EXPECT_EQ(parsed->look.palette.a, st.look.palette.a);
  EXPECT_EQ(parsed->look.palette.b, st.look.palette.b);
  EXPECT_EQ(parsed->look.palette.c, st.look.palette.c);
  EXPECT_EQ(parsed->look.palette.d, st.look.palette.d);
  EXPECT_EQ(parsed->look.guidance, st.look.guidance);
  EXPECT_EQ(parsed->look.sampler, st.look.sampler);
  EXPECT_EQ(format_lineage(*parsed), text);
}

TEST(CppnLineage, RejectsMalformed) {
  const std::string good = format_lineage(sample_state());
  auto replace = [&](const std::string& key, const std::string& value) {
    const size_t at = good.find(";" + key + "=");
    const size_t end = good.find(';', at + 1);
    return good.substr(0, at) + ";" + key + "=" + value +
           (end == std::string::npos ? "" : good.substr(end));
  };
  const std::vector<std::string> bad = {
      "",
      "cppn1",
      "cppn0" + good.substr(5),
      good + ";net=0000000000000000",
      good.substr(0, good.rfind(';')),
      replace("net", "xyz"),
      replace("net", "123"),
      replace("w", "4"),
      replace("w", "32x"),
      replace("act", "t"),
      replace("act", "t.q.t"),
      replace("act", "t..t"),
      replace("act", "ttttt.t"),
      replace("sc", "-1"),
      replace("sc", "inf"),
      replace("gain", "nan"),
      replace("z", "1,2,3"),
      replace("z", "1,2,3,4,5,6,7,1e30"),
      replace("pal", "1,2"),
      replace("gd", "abc"),
      replace("smp", "euler"),
      good + ";",
  };
  for (const std::string& s : bad) {
    auto r = parse_lineage(s);
    EXPECT_FALSE(r.is_ok()) << s;
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(r.status().field(), "parent");
    }
  }

  Structure s;
  s.width = 32;
  s.layers = {"t", "s", "g", "t"};
  EXPECT_EQ(multiply_adds_per_pixel(s), 3 * 32 + 3 * 32 * 32 + 32 * kOutputs);
}

TEST(CppnRequest, PreviewSizesAndValidation) {
  int last = 0;
  for (int step = 1; step < 12; ++step) {
    const auto [w, h] = preview_size(1024, 512, step, 12);
    EXPECT_GE(w, last);
    EXPECT_NEAR(double(w) / h, 2.0, 0.15);
    last = w;
  }
  EXPECT_EQ(preview_size(1024, 512, 11, 12).first, kPreviewMaxSide);
  EXPECT_EQ(preview_size(1024, 512, 1, 1).first, kPreviewMaxSide);
  EXPECT_EQ(preview_size(64, 64, 1, 1).first, 64);  // never above the picture
  EXPECT_LE(preview_size(64, 64, 1, 12).first, 64);

  GenerateRequest r;
  r.width = 64;
  r.height = 64;
  r.steps = 1;
  r.count = 1;
  EXPECT_TRUE(validate_request(r, {2, 4}).is_ok());
  r.sampler = "ddim";
  EXPECT_EQ(validate_request(r, {2, 4}).field(), "sampler");
  r.sampler = "contour";
  r.mode = Mode::kUpscale;
  EXPECT_EQ(validate_request(r, {2, 4}).field(), "parent");
  r.parent = ParentImage{.width = 32, .height = 32};
  EXPECT_TRUE(validate_request(r, {2, 4}).is_ok());
  r.height = 128;  // 2x wide, 4x high
  EXPECT_EQ(validate_request(r, {2, 4}).field(), "width");
  r.width = 4;
  EXPECT_EQ(validate_request(r, {2, 4}).field(), "width");
}

TEST(CppnRequest, ModesKeepWhatTheyPromise) {
  GenerateRequest r;
  r.prompt = "blue spiral";
  r.guidance = 9;
  r.sampler = "contour";
  auto parent = state_for_request(r, 5);
  ASSERT_TRUE(parent.is_ok());
  EXPECT_EQ(parent->network.seed, 5u);
  EXPECT_EQ(parent->look.sampler, Sampler::kContour);

  GenerateRequest child;
  child.prompt = "red spiral";
  child.guidance = 3;
  child.strength = 0.5;
  child.parent = ParentImage{.lineage = format_lineage(*parent)};
  child.mode = Mode::kRemix;
  auto remix = state_for_request(child, 99);
  ASSERT_TRUE(remix.is_ok());
  EXPECT_EQ(remix->network.latent, parent->network.latent);
  EXPECT_EQ(remix->look.palette.a, palette_for_prompt("red spiral").a);
  EXPECT_EQ(remix->look.guidance, 3.0f);
  child.mode = Mode::kVariation;
  auto variation = state_for_request(child, 99);
  ASSERT_TRUE(variation.is_ok());
  EXPECT_NE(variation->network.latent, parent->network.latent);
  EXPECT_EQ(variation->look.palette.a, parent->look.palette.a);
  EXPECT_EQ(variation->look.guidance, 9.0f);
  child.mode = Mode::kUpscale;
  auto upscale = state_for_request(child, 99);
  ASSERT_TRUE(upscale.is_ok());
  EXPECT_EQ(format_lineage(*upscale), format_lineage(*parent));
}

}  // namespace
}  // namespace atelier::inference::cppn
