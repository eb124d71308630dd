// The CPPN model's pixel modes: inpaint (its own picture blended into the prepared input by
// strength, inside run_edit's compositing) and variation / remix / upscale of an upload, which
// has no lineage to follow: strength 0 gives the upload back, higher strengths depart further.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/image.h"
#include "server/inference/cppn_generator.h"
#include "server/inference/edit.h"
#include "server/inference/edit_canvas.h"

namespace atelier::inference {
namespace {

class NoProgress final : public ProgressSink {
 public:
  void on_step(int, int, const Image*) override {}
};

Image textured(int w, int h) {
  Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[(size_t(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 5 + y);
      p[1] = static_cast<uint8_t>(255 - y * 3);
      p[2] = static_cast<uint8_t>((x * y) % 200);
    }
  }
  return img;
}

double mean_abs_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / a.pixels.size();
}

int max_abs_diff(const Image& a, const Image& b) {
  int worst = a.pixels.size() == b.pixels.size() ? 0 : 256;
  for (size_t i = 0; i < a.pixels.size() && i < b.pixels.size(); ++i) {
    worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  }
  return worst;
}

class CppnEditTest : public ::testing::Test {
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
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("atelier-cppn-edit-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write_png(const std::string& name, const Image& img) {
    auto png = image::encode_png(img);
    EXPECT_TRUE(png.is_ok());
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(png->data()), std::streamsize(png->size()));
    return path;
  }

  static GenerateRequest request(Mode mode, double strength, int w = 64, int h = 64) {
    GenerateRequest r;
    r.model = "cppn";
    r.prompt = "ocean sunset";
    r.width = w;
    r.height = h;
    r.steps = 2;
    r.guidance = 7;
    r.seed = 11;
    r.count = 1;
    r.sampler = "smooth";
    r.mode = mode;
    r.strength = strength;
    return r;
  }

  static Image run(const GenerateRequest& r) {
    NoProgress progress;
    CancelToken cancel;
    auto out = generator_->generate(r, progress, cancel);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    if (!out.is_ok() || out->empty()) return {};
    EXPECT_EQ((*out)[0].image.width, r.width);
    EXPECT_EQ((*out)[0].image.height, r.height);
    return (*out)[0].image;
  }

  static Generator* generator_;
  std::filesystem::path dir_;
};
Generator* CppnEditTest::generator_ = nullptr;

TEST(CppnEditModes, CppnListsInpaintAndOutpaint) {
  const std::vector<Mode>& modes = cppn_model_info().modes;
  EXPECT_NE(std::find(modes.begin(), modes.end(), Mode::kInpaint), modes.end());
  EXPECT_NE(std::find(modes.begin(), modes.end(), Mode::kOutpaint), modes.end());
}

TEST_F(CppnEditTest, InpaintBlendsItsOwnPictureIntoTheInputByStrength) {
  const Image input = textured(64, 64);
  auto inpaint = [&](double strength) {
    GenerateRequest r = request(Mode::kInpaint, strength);
    r.inpaint = InpaintInput{input, image::Mask{64, 64, std::vector<uint8_t>(64 * 64, 255)}};
    r.parent = ParentImage{.width = 64, .height = 64, .lineage = "null1;0123456789abcdef"};
    return run(r);
  };
  EXPECT_EQ(inpaint(0).pixels, input.pixels);
  // Strength 1 is the picture a txt2img of the same request draws.
  const Image own = run(request(Mode::kTxt2Img, 0));
  EXPECT_LE(max_abs_diff(inpaint(1), own), 1);
  const Image half = inpaint(0.5);
  EXPECT_LE(max_abs_diff(half, canvas::blend(input, own, 0.5)), 1);
}

TEST_F(CppnEditTest, RunEditInpaintsASmallCanvas) {
  const Image parent = textured(96, 80);
  Image mask{96, 80, 3, std::vector<uint8_t>(96 * 80 * 3)};
  for (int y = 30; y < 60; ++y) {
    for (int x = 40; x < 80; ++x) {
      for (int c = 0; c < 3; ++c) mask.pixels[(size_t(y) * 96 + x) * 3 + c] = 255;
    }
  }
  GenerateRequest job = request(Mode::kInpaint, 1.0, 96, 80);
  job.parent = ParentImage{.width = 96, .height = 80, .png_path = write_png("p.png", parent)};
  job.mask_png_path = write_png("m.png", mask);
  job.edit = EditSpec{.mask_blur = 2};
  NoProgress progress;
  CancelToken cancel;
  auto out = run_edit(*generator_, job, progress, cancel);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  const Image& img = (*out)[0].image;
  ASSERT_EQ(img.width, 96);
  ASSERT_EQ(img.height, 80);
  const image::Mask alpha = canvas::blur_mask(*mask_from_image(mask), 2);
  int64_t inside = 0, changed = 0;
  for (size_t i = 0; i < alpha.values.size(); ++i) {
    const bool same = img.pixels[i * 3] == parent.pixels[i * 3] &&
                      img.pixels[i * 3 + 1] == parent.pixels[i * 3 + 1] &&
                      img.pixels[i * 3 + 2] == parent.pixels[i * 3 + 2];
    if (alpha.values[i] == 0) {
      ASSERT_TRUE(same) << i;
    }
    if (alpha.values[i] == 255) {
      ++inside;
      changed += !same;
    }
  }
  EXPECT_GT(changed, inside * 9 / 10);
}

TEST_F(CppnEditTest, VariationAndRemixOfAnUploadHonourStrength) {
  const Image parent = textured(64, 48);
  const ParentImage upload{
      .width = 64, .height = 48, .png_path = write_png("u.png", parent), .uploaded = true};
  for (Mode m : {Mode::kVariation, Mode::kRemix}) {
    GenerateRequest r = request(m, 0, 64, 48);
    r.parent = upload;
    EXPECT_LE(max_abs_diff(run(r), parent), 1) << mode_name(m);
    double previous = 0;
    for (double s : {0.25, 0.5, 0.75, 1.0}) {
      r.strength = s;
      const double d = mean_abs_diff(run(r), parent);
      EXPECT_GT(d, previous) << mode_name(m) << " " << s;
      previous = d;
    }
  }
}

TEST_F(CppnEditTest, UpscaleOfAnUploadStartsFromTheResizedUpload) {
  const Image parent = textured(64, 48);
  GenerateRequest r = request(Mode::kUpscale, 0, 128, 96);
  r.parent = ParentImage{
      .width = 64, .height = 48, .png_path = write_png("u.png", parent), .uploaded = true};
  EXPECT_EQ(run(r).pixels, canvas::resize(parent, 128, 96).pixels);
  r.parent->png_path += ".gone";
  NoProgress progress;
  CancelToken cancel;
  EXPECT_EQ(generator_->generate(r, progress, cancel).status().code(), StatusCode::kUnprocessable);
}

}  // namespace
}  // namespace atelier::inference
