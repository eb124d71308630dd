// The CPPN generator end to end on the CPU: determinism, prompts, steps and progress,
// cancellation, lineage modes and image quality. Sizes stay small so the suite runs in seconds.
//
// Set ATELIER_CPPN_GALLERY=<dir> to also write a gallery of PNGs there (for looking at).
#include "server/inference/cppn_generator.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/image.h"
#include "server/inference/cppn_style.h"

namespace atelier::inference {
namespace {

class RecordingSink : public ProgressSink {
 public:
  struct Call {
    int step, steps;
    bool has_preview;
    int preview_width, preview_height, preview_channels;
  };
  explicit RecordingSink(bool want = false) : want_(want) {}
  void on_step(int step, int steps, const Image* preview) override {
    calls.push_back({step, steps, preview != nullptr, preview ? preview->width : 0,
                     preview ? preview->height : 0, preview ? preview->channels : 0});
    if (hook) hook(step);
  }
  bool wants_preview() const override { return want_; }

  std::vector<Call> calls;
  std::function<void(int)> hook;

 private:
  bool want_;
};

GenerateRequest make_request(std::string prompt = "ocean waves", int64_t seed = 42, int width = 96,
                             int height = 96) {
  GenerateRequest r;
  r.model = "cppn";
  r.prompt = std::move(prompt);
  r.width = width;
  r.height = height;
  r.steps = 3;
  r.guidance = 7;
  r.seed = seed;
  r.count = 1;
  r.sampler = "smooth";
  return r;
}

ParentImage parent_of(const GenerateRequest& r, const GeneratedImage& g) {
  return ParentImage{.width = r.width,
                     .height = r.height,
                     .seed = g.seed,
                     .prompt = r.prompt,
                     .negative_prompt = r.negative_prompt,
                     .lineage = g.lineage};
}

double mean_abs_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / a.pixels.size();
}

struct Quality {
  double neighbour_diff;  // mean |p(x+1,y) - p(x,y)| over channels
  double luma_std;
  double clipped;  // share of channel values at 0 or 255
};

Quality quality(const Image& img) {
  Quality q{};
  double sum = 0, sum2 = 0, diff = 0;
  int64_t clipped = 0, diffs = 0;
  const int n = img.width * img.height;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = &img.pixels[(size_t(y) * img.width + x) * 3];
      const double luma = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
      sum += luma;
      sum2 += luma * luma;
      for (int c = 0; c < 3; ++c) clipped += p[c] == 0 || p[c] == 255;
      if (x + 1 < img.width) {
        for (int c = 0; c < 3; ++c) diff += std::abs(int(p[c + 3]) - int(p[c]));
        diffs += 3;
      }
    }
  }
  q.neighbour_diff = diff / diffs;
  q.luma_std = std::sqrt(std::max(0.0, sum2 / n - (sum / n) * (sum / n)));
  q.clipped = double(clipped) / (3.0 * n);
  return q;
}

class CppnTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto gen = make_cppn_generator("cpu");
    ASSERT_TRUE(gen.is_ok()) << gen.status().to_string();
    generator_ = std::move(gen).value().release();
  }
  static void TearDownTestSuite() {
    delete generator_;
    generator_ = nullptr;
  }

  static std::vector<GeneratedImage> run(const GenerateRequest& r, ProgressSink* sink = nullptr) {
    RecordingSink quiet;
    CancelToken cancel;
    auto res = generator_->generate(r, sink ? *sink : quiet, cancel);
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    return res.is_ok() ? std::move(res).value() : std::vector<GeneratedImage>{};
  }
  static Status run_status(const GenerateRequest& r) {
    RecordingSink quiet;
    CancelToken cancel;
    return generator_->generate(r, quiet, cancel).status();
  }

  static Generator* generator_;
};
Generator* CppnTest::generator_ = nullptr;

TEST(CppnFactory, DeclaresParametersAndChecksDevices) {
  const ModelInfo& info = cppn_model_info();
  EXPECT_EQ(info.id, "cppn");
  EXPECT_EQ(info.kind, "builtin");
  EXPECT_NE(info.description.find("does not draw"), std::string::npos);
  EXPECT_EQ(info.width.default_value, 512);
  EXPECT_EQ(info.width.multiple_of, 8);
  EXPECT_EQ(info.steps.default_value, 12);
  EXPECT_EQ(info.samplers.front(), "smooth");
  EXPECT_EQ(info.upscale_factors, (std::vector<int>{2, 4}));
  EXPECT_EQ(info.modes.size(), 6u);  // txt2img, variation, remix, upscale, inpaint, outpaint

  EXPECT_EQ(make_cppn_generator("potato").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make_cppn_generator("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make_cppn_generator("meta").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make_cppn_generator("cuda:63").status().code(), StatusCode::kUnavailable);
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(make_cppn_generator("cuda").status().code(), StatusCode::kUnavailable);
  }
}

TEST_F(CppnTest, SameRequestSamePixels) {
  const GenerateRequest r = make_request();
  const auto a = run(r);
  const auto b = run(r);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].image.width, 96);
  EXPECT_EQ(a[0].image.channels, 3);
  EXPECT_EQ(a[0].image.pixels, b[0].image.pixels);
  EXPECT_EQ(a[0].lineage, b[0].lineage);
  // A fresh generator too.
  auto other = make_cppn_generator("cpu");
  ASSERT_TRUE(other.is_ok());
  RecordingSink sink;
  CancelToken cancel;
  auto c = (*other)->generate(r, sink, cancel);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c.value()[0].image.pixels, a[0].image.pixels);
}

TEST_F(CppnTest, ThreadCountChangesAtMostRounding) {
  const GenerateRequest r = make_request("forest", 5, 160, 120);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = run(r);
  at::set_num_threads(std::max(2, threads));
  const auto many = run(r);
  at::set_num_threads(threads);
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(many.size(), 1u);
  int worst = 0;
  for (size_t i = 0; i < one[0].image.pixels.size(); ++i) {
    worst = std::max(worst, std::abs(int(one[0].image.pixels[i]) - int(many[0].image.pixels[i])));
  }
  EXPECT_LE(worst, 1);
}

TEST_F(CppnTest, SeedsDifferAndCountUsesConsecutiveSeeds) {
  const auto a = run(make_request("ocean waves", 1));
  const auto b = run(make_request("ocean waves", 2));
  EXPECT_GT(mean_abs_diff(a[0].image, b[0].image), 8.0);

  GenerateRequest r = make_request("sunset", 100, 64, 64);
  r.count = 3;
  const auto all = run(r);
  ASSERT_EQ(all.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(all[i].seed, 100 + i);
  const auto second = run(make_request("sunset", 101, 64, 64));
  EXPECT_EQ(all[1].image.pixels, second[0].image.pixels);
  EXPECT_NE(all[0].image.pixels, all[1].image.pixels);
}

TEST_F(CppnTest, PromptChangesPaletteButKeepsStructure) {
  const GenerateRequest red = make_request("a red castle", 9);
  const GenerateRequest blue = make_request("a blue castle", 9);
  const auto a = run(red);
  const auto b = run(blue);
  EXPECT_GT(mean_abs_diff(a[0].image, b[0].image), 10.0);
  // Same network (seed, structure, latent), different palette.
  const auto la = cppn::parse_lineage(a[0].lineage);
  const auto lb = cppn::parse_lineage(b[0].lineage);
  ASSERT_TRUE(la.is_ok() && lb.is_ok());
  EXPECT_EQ(la->network.seed, lb->network.seed);
  EXPECT_EQ(la->network.structure.layers, lb->network.structure.layers);
  EXPECT_EQ(la->network.structure.scale, lb->network.structure.scale);
  EXPECT_EQ(la->network.latent, lb->network.latent);
  EXPECT_NE(la->look.palette.a, lb->look.palette.a);
  // And pixel for pixel: the red castle remixed with the blue prompt is the blue castle.
  GenerateRequest remix = blue;
  remix.mode = Mode::kRemix;
  remix.seed = 12345;  // remix ignores the seed
  remix.parent = parent_of(red, a[0]);
  EXPECT_EQ(run(remix)[0].image.pixels, b[0].image.pixels);
  // Word order, case and punctuation do not matter.
  EXPECT_EQ(run(make_request("Castle, RED!", 9))[0].image.pixels, a[0].image.pixels);
}

TEST_F(CppnTest, StepsReportProgressAndDoNotChangeTheImage) {
  GenerateRequest r = make_request("neon", 3, 64, 48);
  std::vector<uint8_t> first;
  for (int steps : {1, 5, 12}) {
    r.steps = steps;
    RecordingSink sink;
    const auto out = run(r, &sink);
    ASSERT_EQ(sink.calls.size(), size_t(steps));
    for (int i = 0; i < steps; ++i) {
      EXPECT_EQ(sink.calls[i].step, i + 1);
      EXPECT_EQ(sink.calls[i].steps, steps);
      EXPECT_FALSE(sink.calls[i].has_preview);
    }
    if (first.empty()) first = out[0].image.pixels;
    EXPECT_EQ(out[0].image.pixels, first) << "steps " << steps;
  }
  // count 2: steps count across the whole job.
  r.steps = 4;
  r.count = 2;
  RecordingSink sink;
  run(r, &sink);
  ASSERT_EQ(sink.calls.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(sink.calls[i].step, i + 1);
    EXPECT_EQ(sink.calls[i].steps, 8);
  }
}

TEST_F(CppnTest, PreviewsOnlyWhenWantedAndGrowing) {
  GenerateRequest r = make_request("gold", 4, 512, 256);
  r.steps = 6;
  RecordingSink sink(/*want=*/true);
  run(r, &sink);
  ASSERT_EQ(sink.calls.size(), 6u);
  int last_width = 0;
  for (const auto& c : sink.calls) {
    ASSERT_TRUE(c.has_preview);
    EXPECT_EQ(c.preview_channels, 3);
    EXPECT_LE(c.preview_width, 256);
    EXPECT_GE(c.preview_width, last_width);
    EXPECT_NEAR(double(c.preview_width) / c.preview_height, 2.0, 0.2);
    last_width = c.preview_width;
  }
  EXPECT_EQ(sink.calls.back().preview_width, 256);
  EXPECT_LT(sink.calls.front().preview_width, 64);
}

TEST_F(CppnTest, CancelBeforeAndDuringSteps) {
  GenerateRequest r = make_request();
  r.steps = 6;
  {
    RecordingSink sink;
    CancelToken cancel;
    cancel.cancel();
    auto res = generator_->generate(r, sink, cancel);
    EXPECT_EQ(res.status().code(), StatusCode::kCancelled);
    EXPECT_TRUE(sink.calls.empty());
  }
  {
    RecordingSink sink(/*want=*/true);
    CancelToken cancel;
    sink.hook = [&](int step) {
      if (step == 2) cancel.cancel();
    };
    auto res = generator_->generate(r, sink, cancel);
    EXPECT_EQ(res.status().code(), StatusCode::kCancelled);
    EXPECT_EQ(sink.calls.size(), 2u);
  }
}

TEST_F(CppnTest, VariationStrength) {
  const GenerateRequest base = make_request("pastel", 21);
  const auto parent = run(base);
  auto vary = [&](double strength, int64_t seed) {
    GenerateRequest r = base;
    r.mode = Mode::kVariation;
    r.strength = strength;
    r.seed = seed;
    r.prompt = "something else entirely";  // variation keeps the parent's look
    r.guidance = 15;
    r.parent = parent_of(base, parent[0]);
    return run(r);
  };
  EXPECT_EQ(vary(0.0, 777)[0].image.pixels, parent[0].image.pixels);
  const double small = mean_abs_diff(vary(0.15, 777)[0].image, parent[0].image);
  const double large = mean_abs_diff(vary(0.8, 777)[0].image, parent[0].image);
  EXPECT_GT(small, 0.0);
  EXPECT_LT(small, large);
  EXPECT_NE(vary(0.5, 1)[0].image.pixels, vary(0.5, 2)[0].image.pixels);

  // Grandchild: a variation of a variation, and its strength-0 copy.
  const auto child = vary(0.5, 3);
  GenerateRequest r2 = base;
  r2.mode = Mode::kVariation;
  r2.strength = 0;
  r2.parent = parent_of(base, child[0]);
  EXPECT_EQ(run(r2)[0].image.pixels, child[0].image.pixels);
}

TEST_F(CppnTest, RemixWithParentPromptReproducesParent) {
  GenerateRequest base = make_request("autumn fractal", 8);
  base.negative_prompt = "green";
  base.sampler = "contour";
  const auto parent = run(base);
  GenerateRequest r = base;
  r.mode = Mode::kRemix;
  r.seed = 999;
  r.strength = 0.9;
  r.parent = parent_of(base, parent[0]);
  const auto same = run(r);
  EXPECT_EQ(same[0].image.pixels, parent[0].image.pixels);
  EXPECT_EQ(same[0].lineage, parent[0].lineage);
  r.prompt = "ice";
  EXPECT_GT(mean_abs_diff(run(r)[0].image, parent[0].image), 10.0);
}

TEST_F(CppnTest, UpscaleMatchesParentWhenDownsampled) {
  for (const char* sampler : {"smooth", "contour"}) {
    GenerateRequest base = make_request("desert", 31, 96, 64);
    base.sampler = sampler;
    const auto parent = run(base);
    for (int factor : {2, 4}) {
      GenerateRequest r = base;
      r.mode = Mode::kUpscale;
      r.width = base.width * factor;
      r.height = base.height * factor;
      r.prompt = "ignored";
      r.parent = parent_of(base, parent[0]);
      const auto up = run(r);
      ASSERT_EQ(up.size(), 1u);
      EXPECT_EQ(up[0].image.width, r.width);
      const Image down = image::resize_box(up[0].image, base.width);
      const double diff = mean_abs_diff(down, parent[0].image);
      EXPECT_LT(diff, std::string(sampler) == "smooth" ? 1.5 : 3.0) << sampler << " x" << factor;

      // Grandchild: upscale the upscale's lineage back down is not allowed, but its lineage
      // renders the same network again.
      GenerateRequest again = r;
      again.parent = parent_of(r, up[0]);
      again.width = r.width * 2;
      again.height = r.height * 2;
      if (factor == 2) {
        const auto up2 = run(again);
        ASSERT_EQ(up2.size(), 1u);
        EXPECT_LT(mean_abs_diff(image::resize_box(up2[0].image, base.width), parent[0].image),
                  std::string(sampler) == "smooth" ? 1.5 : 3.0);
      }
    }
  }
}

TEST_F(CppnTest, RejectsBadLineageAndSizes) {
  const GenerateRequest base = make_request("blue", 2, 64, 64);
  const auto parent = run(base);
  const std::string good = parent[0].lineage;
  for (const std::string& bad :
       {std::string(), std::string("cppn2") + good.substr(5), good.substr(0, good.size() / 2),
        good + ";extra=1", std::string("garbage"),
        good.substr(0, good.find(";z=")) + ";z=nan,1,2,3,4,5,6,7" +
            good.substr(good.find(";pal="))}) {
    GenerateRequest r = base;
    r.mode = Mode::kVariation;
    r.parent = parent_of(base, parent[0]);
    r.parent->lineage = bad;
    const Status st = run_status(r);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.field(), "parent");
  }
  GenerateRequest no_parent = base;
  no_parent.mode = Mode::kRemix;
  EXPECT_EQ(run_status(no_parent).code(), StatusCode::kInvalidArgument);

  GenerateRequest up = base;
  up.mode = Mode::kUpscale;
  up.parent = parent_of(base, parent[0]);
  up.width = 96;  // 1.5x
  up.height = 96;
  EXPECT_EQ(run_status(up).code(), StatusCode::kInvalidArgument);

  GenerateRequest sampler = base;
  sampler.sampler = "euler_a";
  EXPECT_EQ(run_status(sampler).field(), "sampler");
}

TEST_F(CppnTest, LooksLikeSmoothArtNotNoise) {
  const char* prompts[] = {
      "ocean waves", "sunset over hills", "neon city", "forest spirit", "abstract", "pastel dream",
      "monochrome",  "gold and red",      "",          "intricate fire"};
  int seed = 1;
  for (const char* prompt : prompts) {
    for (int s = 0; s < 3; ++s, ++seed) {
      const auto out = run(make_request(prompt, seed, 128, 128));
      ASSERT_EQ(out.size(), 1u);
      const Quality q = quality(out[0].image);
      SCOPED_TRACE(std::string("prompt '") + prompt + "' seed " + std::to_string(seed));
      EXPECT_LT(q.neighbour_diff, 12.0);
      EXPECT_GT(q.luma_std, 8.0);
      EXPECT_LT(q.clipped, 0.05);
    }
  }
  // The metrics do catch noise.
  Image noise{128, 128, 3, std::vector<uint8_t>(128 * 128 * 3)};
  uint32_t x = 1;
  for (uint8_t& p : noise.pixels) p = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  EXPECT_GT(quality(noise).neighbour_diff, 12.0);
}

TEST_F(CppnTest, SamplerAndGuidanceChangeTheLook) {
  GenerateRequest r = make_request("ocean", 17, 128, 128);
  const auto smooth = run(r);
  r.sampler = "contour";
  const auto contour = run(r);
  EXPECT_GT(mean_abs_diff(smooth[0].image, contour[0].image), 3.0);
  EXPECT_LT(quality(contour[0].image).clipped, 0.05);

  // Mean chroma, and the share of pixels on plateaus (flat against their right neighbour).
  auto measure = [](const Image& img) {
    double chroma = 0;
    int64_t flat = 0;
    const size_t n = img.pixels.size() / 3;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &img.pixels[i * 3];
      chroma += std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]});
      if ((i + 1) % img.width != 0) {
        int d = 0;
        for (int c = 0; c < 3; ++c) d += std::abs(int(p[c + 3]) - int(p[c]));
        flat += d <= 1;
      }
    }
    return std::pair<double, double>(chroma / n, double(flat) / n);
  };
  r = make_request("rainbow", 12, 128, 128);
  r.guidance = 1;
  const auto soft = measure(run(r)[0].image);
  r.guidance = 20;
  const auto crisp = measure(run(r)[0].image);
  EXPECT_LT(soft.first * 1.5, crisp.first);
  EXPECT_LT(soft.second, crisp.second);
}

TEST(CppnCuda, RendersLikeTheCpu) {
  if (!torch::cuda::is_available()) {
    std::cout << "[  SKIPPED ] CUDA is not available (no GPU or CPU-only libtorch)\n";
    GTEST_SKIP() << "CUDA is not available (no GPU or CPU-only libtorch)";
  }
  auto gpu = make_cppn_generator("cuda:0");
  auto cpu = make_cppn_generator("cpu");
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  ASSERT_TRUE(cpu.is_ok());
  GenerateRequest r = make_request("sunset", 7, 256, 192);
  RecordingSink sink;
  CancelToken cancel;
  auto a = (*gpu)->generate(r, sink, cancel);
  auto b = (*gpu)->generate(r, sink, cancel);
  auto c = (*cpu)->generate(r, sink, cancel);
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
  EXPECT_EQ(a.value()[0].image.pixels, b.value()[0].image.pixels);
  EXPECT_LT(mean_abs_diff(a.value()[0].image, c.value()[0].image), 1.0);
}

// Not a check: writes one contact sheet per sampler (14 prompts x 2 seeds, 256 px each) when
// ATELIER_CPPN_GALLERY names a directory, for looking at the pictures. ATELIER_CPPN_SEED,
// ATELIER_CPPN_TILE and ATELIER_CPPN_GUIDANCE change the first seed, tile size and guidance.
TEST_F(CppnTest, Gallery) {
  const char* dir = std::getenv("ATELIER_CPPN_GALLERY");
  if (!dir) GTEST_SKIP() << "set ATELIER_CPPN_GALLERY=<dir> to write a gallery";
  const char* prompts[] = {"ocean waves",   "sunset",       "neon city",
                           "forest spirit", "pastel dream", "monochrome portrait",
                           "golden spiral", "fire dragon",  "ice castle",
                           "abstract",      "calm lake",    "intricate machine",
                           "red castle",    "space nebula"};
  const int kTile =
      std::getenv("ATELIER_CPPN_TILE") ? std::atoi(std::getenv("ATELIER_CPPN_TILE")) : 256;
  constexpr int kCols = 7;
  const int64_t seed_base =
      std::getenv("ATELIER_CPPN_SEED") ? std::atoll(std::getenv("ATELIER_CPPN_SEED")) : 1;
  for (const char* sampler : {"smooth", "contour"}) {
    Image sheet{kTile * kCols, kTile * 4, 3,
                std::vector<uint8_t>(size_t(kTile) * kCols * kTile * 4 * 3)};
    int index = 0;
    for (const char* prompt : prompts) {
      for (int64_t seed : {seed_base, seed_base + 1}) {
        GenerateRequest r = make_request(prompt, seed, kTile, kTile);
        r.sampler = sampler;
        if (const char* g = std::getenv("ATELIER_CPPN_GUIDANCE")) r.guidance = std::atof(g);
        const auto out = run(r);
        ASSERT_EQ(out.size(), 1u);
        const Image& img = out[0].image;
        const int ox = (index % kCols) * kTile, oy = (index / kCols) * kTile;
        for (int y = 0; y < kTile; ++y) {
          std::copy_n(&img.pixels[size_t(y) * kTile * 3], kTile * 3,
                      &sheet.pixels[(size_t(oy + y) * sheet.width + ox) * 3]);
        }
        ++index;
      }
    }
    auto png = image::encode_png(sheet);
    ASSERT_TRUE(png.is_ok());
    std::ofstream(std::string(dir) + "/" + sampler + ".png", std::ios::binary)
        .write(reinterpret_cast<const char*>(png->data()), png->size());
  }
}

}  // namespace
}  // namespace atelier::inference
