// run_edit end to end with the null model (wrapped to declare other ranges and to record what it
// is asked) on PNG files in a temp dir: output sizes, the parent kept exactly wherever the
// blurred mask is 0, the masked area changed, one generator call with a binary mask at a size
// the model accepts, and the refusals.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/inference/edit.h"
#include "server/inference/edit_canvas.h"
#include "server/inference/null_generator.h"
#include "tests/support/temp_dir.h"

namespace atelier::inference {
namespace {

// The null model under other declared ranges, recording each request it gets.
class FakeModel final : public Generator {
 public:
  explicit FakeModel(ModelInfo info = null_model_info())
      : info_(std::move(info)), null_(make_null_generator()) {}
  const ModelInfo& info() const override { return info_; }
  Result<std::vector<GeneratedImage>> generate(const GenerateRequest& r, ProgressSink& progress,
                                               const CancelToken& cancel) override {
    requests.push_back(r);
    auto out = null_->generate(r, progress, cancel);
    if (out.is_ok() && wrong_size) {
      for (GeneratedImage& g : *out) g.image = canvas::resize(g.image, r.width + 8, r.height);
    }
    return out;
  }
  std::vector<GenerateRequest> requests;
  bool wrong_size = false;

 private:
  ModelInfo info_;
  std::unique_ptr<Generator> null_;
};

class StepCounter final : public ProgressSink {
 public:
  void on_step(int, int, const Image*) override { ++steps; }
  int steps = 0;
};

Image pattern(int w, int h) {
  Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[(size_t(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 7 + y * 3);
      p[1] = static_cast<uint8_t>(x * 2 + y * 11);
      p[2] = static_cast<uint8_t>((x ^ y) * 5);
    }
  }
  return img;
}

// White inside `r`, black elsewhere, as an RGB image.
Image box_mask_image(int w, int h, canvas::Region r) {
  Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (int y = r.y; y < r.y + r.height; ++y) {
    for (int x = r.x; x < r.x + r.width; ++x) {
      for (int c = 0; c < 3; ++c) img.pixels[(size_t(y) * w + x) * 3 + c] = 255;
    }
  }
  return img;
}

class EditRunTest : public ::testing::Test {
 protected:
  std::string write_png(const std::string& name, const Image& img) {
    auto png = image::encode_png(img);
    EXPECT_TRUE(png.is_ok()) << png.status().to_string();
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(png->data()), std::streamsize(png->size()));
    return path;
  }

  GenerateRequest inpaint_job(const Image& parent, const Image& mask, EditSpec edit = {}) {
    GenerateRequest r;
    r.model = "null";
    r.prompt = "a harbour";
    r.width = parent.width;
    r.height = parent.height;
    r.steps = 3;
    r.seed = 77;
    r.count = 1;
    r.sampler = "none";
    r.mode = Mode::kInpaint;
    r.strength = 1.0;
    r.parent = ParentImage{.width = parent.width, .height = parent.height};
    r.parent->png_path = write_png("parent.png", parent);
    r.mask_png_path = write_png("mask.png", mask);
    r.edit = edit;
    return r;
  }

  static Result<std::vector<GeneratedImage>> run(Generator& g, const GenerateRequest& job) {
    StepCounter progress;
    CancelToken cancel;
    return run_edit(g, job, progress, cancel);
  }

  // Every pixel where `alpha` is 0 equals the parent's; most where it is 255 differ.
  static void expect_kept_outside_changed_inside(const Image& out, const Image& parent,
                                                 const image::Mask& alpha, canvas::Region at) {
    int64_t inside = 0, changed = 0;
    for (int y = 0; y < alpha.height; ++y) {
      for (int x = 0; x < alpha.width; ++x) {
        const uint8_t a = alpha.values[size_t(y) * alpha.width + x];
        const uint8_t* o = &out.pixels[(size_t(y) * out.width + x) * 3];
        const int px = x - at.x, py = y - at.y;
        if (px < 0 || py < 0 || px >= parent.width || py >= parent.height) continue;
        const uint8_t* p = &parent.pixels[(size_t(py) * parent.width + px) * 3];
        if (a == 0) {
          ASSERT_TRUE(o[0] == p[0] && o[1] == p[1] && o[2] == p[2]) << x << "," << y;
        } else if (a == 255) {
          ++inside;
          changed += o[0] != p[0] || o[1] != p[1] || o[2] != p[2];
        }
      }
    }
    EXPECT_GT(inside, 0);
    EXPECT_GT(changed, inside * 9 / 10) << changed << " of " << inside;
  }

  testing::TempDir dir_{"atelier-edit"};
};

TEST_F(EditRunTest, InpaintWholeKeepsThePixelsOutsideTheBlurredMask) {
  const Image parent = pattern(96, 64);
  const Image mask = box_mask_image(96, 64, {20, 10, 50, 40});
  FakeModel model;
  auto out = run(model, inpaint_job(parent, mask));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->size(), 1u);
  const Image& img = (*out)[0].image;
  EXPECT_EQ(img.width, 96);
  EXPECT_EQ(img.height, 64);
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ((*out)[0].seed, 77);
  EXPECT_EQ((*out)[0].lineage.rfind("null1;", 0), 0u);
  const image::Mask alpha = canvas::blur_mask(*mask_from_image(mask), 4);
  expect_kept_outside_changed_inside(img, parent, alpha, {0, 0, 96, 64});

  // One call, as an inpaint of the whole (already valid) canvas with the binary mask.
  ASSERT_EQ(model.requests.size(), 1u);
  const GenerateRequest& req = model.requests[0];
  EXPECT_EQ(req.mode, Mode::kInpaint);
  EXPECT_EQ(req.width, 96);
  EXPECT_EQ(req.height, 64);
  EXPECT_EQ(req.prompt, "a harbour");
  EXPECT_EQ(req.seed, 77);
  ASSERT_TRUE(req.inpaint.has_value());
  EXPECT_EQ(req.inpaint->image.pixels, parent.pixels);
  EXPECT_EQ(req.inpaint->mask.values, mask_from_image(mask)->values);
}

TEST_F(EditRunTest, InpaintMaskedWorksOnACropAtTheDefaultSize) {
  const Image parent = pattern(200, 150);
  const Image mask = box_mask_image(200, 150, {120, 40, 20, 30});
  FakeModel model;
  auto out = run(model, inpaint_job(parent, mask, {.mask_blur = 2, .area = InpaintArea::kMasked}));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  const image::Mask alpha = canvas::blur_mask(*mask_from_image(mask), 2);
  expect_kept_outside_changed_inside((*out)[0].image, parent, alpha, {0, 0, 200, 150});
  ASSERT_EQ(model.requests.size(), 1u);
  const GenerateRequest& req = model.requests[0];
  EXPECT_EQ(req.width, 64);  // the null model's default size
  EXPECT_EQ(req.height, 64);
  for (uint8_t v : req.inpaint->mask.values) ASSERT_TRUE(v == 0 || v == 255);
  // The crop is square around the mask: the mask fills the middle of the working image.
  EXPECT_EQ(req.inpaint->mask.values[size_t(32) * 64 + 32], 255);
  EXPECT_EQ(req.inpaint->mask.values[0], 0);
}

TEST_F(EditRunTest, AParentTheModelCannotTakeDirectlyIsFittedAndPastedBack) {
  ModelInfo info = null_model_info();
  info.width = info.height = {.min = 8, .max = 1024, .default_value = 512, .multiple_of = 8};
  const Image parent = pattern(1000, 750);
  const Image mask = box_mask_image(1000, 750, {600, 100, 150, 300});
  for (InpaintArea area : {InpaintArea::kWhole, InpaintArea::kMasked}) {
    FakeModel model(info);
    auto out = run(model, inpaint_job(parent, mask, {.mask_blur = 4, .area = area}));
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    EXPECT_EQ((*out)[0].image.width, 1000);
    EXPECT_EQ((*out)[0].image.height, 750);
    const image::Mask alpha = canvas::blur_mask(*mask_from_image(mask), 4);
    expect_kept_outside_changed_inside((*out)[0].image, parent, alpha, {0, 0, 1000, 750});
    ASSERT_EQ(model.requests.size(), 1u);
    const GenerateRequest& req = model.requests[0];
    if (area == InpaintArea::kWhole) {
      EXPECT_EQ(req.width, 1000);
      EXPECT_EQ(req.height, 752);
    } else {
      EXPECT_EQ(req.width, 512);
      EXPECT_EQ(req.height, 512);
    }
    EXPECT_FALSE(mask_is_empty(req.inpaint->mask));
  }
}

TEST_F(EditRunTest, OutpaintExtendsTheCanvasAndKeepsTheParent) {
  const Image parent = pattern(48, 40);
  GenerateRequest job = inpaint_job(parent, box_mask_image(48, 40, {0, 0, 1, 1}));
  job.mode = Mode::kOutpaint;
  job.mask_png_path.clear();
  job.edit = EditSpec{.mask_blur = 3, .extend = {.left = 16, .right = 8, .top = 0, .bottom = 24}};
  job.width = 72;
  job.height = 64;
  FakeModel model;
  auto out = run(model, job);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  const Image& img = (*out)[0].image;
  EXPECT_EQ(img.width, 72);
  EXPECT_EQ(img.height, 64);
  const canvas::OutpaintCanvas c = canvas::outpaint_canvas(parent, job.edit->extend, job.seed);
  const image::Mask alpha = canvas::blur_mask(c.mask, 3);
  expect_kept_outside_changed_inside(img, c.image, alpha, {0, 0, 72, 64});
  // The parent itself, away from the seam, is untouched.
  EXPECT_EQ(img.pixels[(size_t(20) * 72 + 40) * 3], parent.pixels[(size_t(20) * 48 + 24) * 3]);
  ASSERT_EQ(model.requests.size(), 1u);
  EXPECT_EQ(model.requests[0].mode, Mode::kInpaint);
  EXPECT_EQ(model.requests[0].inpaint->mask.values, c.mask.values);
}

TEST_F(EditRunTest, CountSeedsProgressAndCancellationPassThrough) {
  const Image parent = pattern(40, 32);
  GenerateRequest job = inpaint_job(parent, box_mask_image(40, 32, {5, 5, 10, 10}));
  job.count = 2;
  job.steps = 4;
  FakeModel model;
  StepCounter progress;
  CancelToken cancel;
  auto out = run_edit(model, job, progress, cancel);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[1].seed, 78);
  EXPECT_NE((*out)[0].image.pixels, (*out)[1].image.pixels);
  EXPECT_EQ(progress.steps, 4);

  CancelToken cancelled;
  cancelled.cancel();
  auto stopped = run_edit(model, job, progress, cancelled);
  ASSERT_FALSE(stopped.is_ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kCancelled);
}

TEST_F(EditRunTest, AMaskOfAnotherSizeOrEmptyIsRefusedNamingIt) {
  const Image parent = pattern(40, 32);
  FakeModel model;
  for (const Image& mask : {box_mask_image(40, 31, {5, 5, 10, 10}),   // one row short
                            box_mask_image(40, 32, {0, 0, 0, 0})}) {  // all black
    auto out = run(model, inpaint_job(parent, mask));
    ASSERT_FALSE(out.is_ok());
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().to_string();
    EXPECT_EQ(out.status().field(), "mask_image_id");
  }
  EXPECT_TRUE(model.requests.empty());
}

TEST_F(EditRunTest, UnreadableFilesAndWrongSizesAreErrors) {
  const Image parent = pattern(40, 32);
  const Image mask = box_mask_image(40, 32, {5, 5, 10, 10});
  FakeModel model;
  GenerateRequest job = inpaint_job(parent, mask);
  job.parent->png_path = (dir_ / "gone.png").string();
  auto out = run(model, job);
  EXPECT_EQ(out.status().code(), StatusCode::kUnprocessable);
  EXPECT_EQ(out.status().message(), "the parent image cannot be read");

  job = inpaint_job(parent, mask);
  job.mask_png_path = (dir_ / "no-mask.png").string();
  out = run(model, job);
  EXPECT_EQ(out.status().code(), StatusCode::kUnprocessable);
  EXPECT_EQ(out.status().message(), "the mask image cannot be read");

  job = inpaint_job(parent, mask);
  job.width = 48;  // not the parent's size
  EXPECT_EQ(run(model, job).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(model.requests.empty());

  model.wrong_size = true;
  out = run(model, inpaint_job(parent, mask));
  EXPECT_EQ(out.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace atelier::inference
