// The `null` model: deterministic images of the requested size and count, one progress call per
// step, prompt cancellation, lineage modes that derive from the parent's lineage, and the pixel
// modes (inpaint, children of uploads) that blend into their starting image by strength.
#include "server/inference/null_generator.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/inference/edit_canvas.h"
#include "tests/support/temp_dir.h"

namespace atelier::inference {
namespace {

// Records every on_step call; optionally cancels a token at a given step.
class RecordingSink : public ProgressSink {
 public:
  explicit RecordingSink(bool wants_preview = false, CancelToken* cancel = nullptr,
                         int cancel_at = 0)
      : wants_preview_(wants_preview), cancel_(cancel), cancel_at_(cancel_at) {}

  void on_step(int step, int steps, const Image* preview) override {
    calls.emplace_back(step, steps);
    previews.push_back(preview != nullptr);
    if (preview) last_preview = *preview;
    if (cancel_ && step == cancel_at_) cancel_->cancel();
  }
  bool wants_preview() const override { return wants_preview_; }

  std::vector<std::pair<int, int>> calls;
  std::vector<bool> previews;
  Image last_preview;

 private:
  bool wants_preview_;
  CancelToken* cancel_;
  int cancel_at_;
};

GenerateRequest base_request() {
  GenerateRequest r;
  r.model = "null";
  r.prompt = "a lighthouse at dusk";
  r.width = 48;
  r.height = 32;
  r.steps = 3;
  r.guidance = 7;
  r.seed = 1234;
  r.count = 1;
  r.sampler = "none";
  return r;
}

Result<std::vector<GeneratedImage>> run(const GenerateRequest& r, ProgressSink& sink,
                                        const CancelToken& cancel) {
  return make_null_generator()->generate(r, sink, cancel);
}

std::vector<GeneratedImage> must_run(const GenerateRequest& r) {
  RecordingSink sink;
  CancelToken cancel;
  auto out = run(r, sink, cancel);
  EXPECT_TRUE(out.is_ok()) << out.status().to_string();
  return out.is_ok() ? std::move(out).value() : std::vector<GeneratedImage>{};
}

GeneratedImage one(const GenerateRequest& r) {
  std::vector<GeneratedImage> out = must_run(r);
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? GeneratedImage{} : out[0];
}

ParentImage parent_from(const GeneratedImage& img, const GenerateRequest& r) {
  ParentImage p;
  p.width = img.image.width;
  p.height = img.image.height;
  p.seed = img.seed;
  p.prompt = r.prompt;
  p.lineage = img.lineage;
  return p;
}

GenerateRequest child_request(Mode mode, const ParentImage& parent, double strength = 0.5) {
  GenerateRequest r = base_request();
  r.mode = mode;
  r.parent = parent;
  r.strength = strength;
  return r;
}

bool is_null_lineage(const std::string& s) {
  if (s.size() != 22 || s.rfind("null1;", 0) != 0) return false;
  return s.find_first_not_of("0123456789abcdef", 6) == std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// The model's declared parameters

TEST(NullModelInfoTest, DeclaresATestModelWithEveryMode) {
  const ModelInfo& m = null_model_info();
  EXPECT_EQ(m.id, "null");
  EXPECT_EQ(m.kind, "test");
  EXPECT_FALSE(m.description.empty());
  ASSERT_FALSE(m.samplers.empty());
  EXPECT_EQ(m.modes, (std::vector<Mode>{Mode::kTxt2Img, Mode::kVariation, Mode::kRemix,
                                        Mode::kUpscale, Mode::kInpaint, Mode::kOutpaint}));
  EXPECT_FALSE(m.upscale_factors.empty());
  // Defaults lie inside their ranges (and on the size grid).
  for (const IntParam* p : {&m.width, &m.height, &m.steps, &m.count}) {
    EXPECT_LE(p->min, p->default_value);
    EXPECT_LE(p->default_value, p->max);
    EXPECT_EQ(p->default_value % p->multiple_of, 0);
  }
  for (const RealParam* p : {&m.guidance, &m.strength}) {
    EXPECT_LE(p->min, p->default_value);
    EXPECT_LE(p->default_value, p->max);
  }
}

TEST(NullModelInfoTest, EntryAndGeneratorShareTheInfo) {
  ModelEntry e = null_model_entry();
  EXPECT_EQ(e.info.id, "null");
  auto g = e.create("cpu");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ((*g)->info().id, "null");
  EXPECT_EQ(&make_null_generator()->info(), &null_model_info());
}

// ---------------------------------------------------------------------------------------------
// txt2img

TEST(NullGeneratorTest, ImagesHaveTheRequestedSize) {
  GenerateRequest r = base_request();
  r.width = 40;
  r.height = 24;
  GeneratedImage img = one(r);
  EXPECT_EQ(img.image.width, 40);
  EXPECT_EQ(img.image.height, 24);
  EXPECT_EQ(img.image.channels, 3);
  EXPECT_EQ(img.image.pixels.size(), 40u * 24u * 3u);
  EXPECT_TRUE(image::validate(img.image).is_ok());
}

TEST(NullGeneratorTest, CountImagesWithConsecutiveSeeds) {
  GenerateRequest r = base_request();
  r.count = 4;
  r.seed = 100;
  std::vector<GeneratedImage> out = must_run(r);
  ASSERT_EQ(out.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i].seed, 100 + i);
    EXPECT_EQ(out[i].image.width, r.width);
    EXPECT_EQ(out[i].image.height, r.height);
    EXPECT_TRUE(is_null_lineage(out[i].lineage)) << out[i].lineage;
  }
  // Each image differs from the others.
  for (int i = 0; i < 4; ++i) {
    for (int k = i + 1; k < 4; ++k) {
      EXPECT_NE(out[i].lineage, out[k].lineage) << i << " vs " << k;
      EXPECT_NE(out[i].image.pixels, out[k].image.pixels) << i << " vs " << k;
    }
  }
}

TEST(NullGeneratorTest, ImageIOfAJobEqualsImageZeroOfAJobSeededSeedPlusI) {
  GenerateRequest r = base_request();
  r.count = 3;
  r.seed = 500;
  std::vector<GeneratedImage> batch = must_run(r);
  ASSERT_EQ(batch.size(), 3u);
  GenerateRequest single = base_request();
  single.seed = 502;
  GeneratedImage alone = one(single);
  EXPECT_EQ(alone.seed, 502);
  EXPECT_EQ(alone.lineage, batch[2].lineage);
  EXPECT_EQ(alone.image.pixels, batch[2].image.pixels);
}

TEST(NullGeneratorTest, Deterministic) {
  GenerateRequest r = base_request();
  r.count = 2;
  std::vector<GeneratedImage> a = must_run(r);
  // A second, separate instance makes the same images.
  RecordingSink sink;
  CancelToken cancel;
  auto second = make_null_generator()->generate(r, sink, cancel);
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  std::vector<GeneratedImage> b = std::move(second).value();
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(a[i].image.pixels, b[i].image.pixels);
    EXPECT_EQ(a[i].lineage, b[i].lineage);
    EXPECT_EQ(a[i].seed, b[i].seed);
  }
}

TEST(NullGeneratorTest, SeedAndPromptChangeTheImage) {
  GeneratedImage base = one(base_request());
  GenerateRequest other_seed = base_request();
  other_seed.seed += 1000;
  GenerateRequest other_prompt = base_request();
  other_prompt.prompt = "a lighthouse at dawn";
  GeneratedImage by_seed = one(other_seed);
  GeneratedImage by_prompt = one(other_prompt);
  EXPECT_NE(by_seed.lineage, base.lineage);
  EXPECT_NE(by_seed.image.pixels, base.image.pixels);
  EXPECT_NE(by_prompt.lineage, base.lineage);
  EXPECT_NE(by_prompt.image.pixels, base.image.pixels);
}

TEST(NullGeneratorTest, NegativeSeedsWork) {
  GenerateRequest r = base_request();
  r.seed = -3;
  r.count = 2;
  std::vector<GeneratedImage> out = must_run(r);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].seed, -3);
  EXPECT_EQ(out[1].seed, -2);
}

// ---------------------------------------------------------------------------------------------
// progress and cancellation

TEST(NullGeneratorTest, ProgressOncePerStepInOrder) {
  GenerateRequest r = base_request();
  r.steps = 5;
  r.count = 2;  // steps are per job, not per image
  RecordingSink sink;
  CancelToken cancel;
  ASSERT_TRUE(run(r, sink, cancel).is_ok());
  EXPECT_EQ(sink.calls, (std::vector<std::pair<int, int>>{{1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}}));
  for (bool had_preview : sink.previews) EXPECT_FALSE(had_preview);
}

TEST(NullGeneratorTest, PreviewOnlyWhenWanted) {
  GenerateRequest r = base_request();
  r.steps = 2;
  RecordingSink sink(/*wants_preview=*/true);
  CancelToken cancel;
  ASSERT_TRUE(run(r, sink, cancel).is_ok());
  ASSERT_EQ(sink.previews.size(), 2u);
  EXPECT_TRUE(sink.previews[0]);
  EXPECT_TRUE(sink.previews[1]);
  EXPECT_TRUE(image::validate(sink.last_preview).is_ok());
  EXPECT_EQ(sink.last_preview.channels, 3);
}

TEST(NullGeneratorTest, CancelledBeforeStartDoesNoStep) {
  RecordingSink sink;
  CancelToken cancel;
  cancel.cancel();
  auto out = run(base_request(), sink, cancel);
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_TRUE(sink.calls.empty());
}

TEST(NullGeneratorTest, CancelledMidwayStopsAtTheNextStep) {
  GenerateRequest r = base_request();
  r.steps = 6;
  CancelToken cancel;
  RecordingSink sink(false, &cancel, /*cancel_at=*/2);
  auto out = run(r, sink, cancel);
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(sink.calls.size(), 2u);  // no step after the cancel
}

TEST(NullGeneratorTest, CancelledDuringTheLastStepReturnsNoImages) {
  GenerateRequest r = base_request();
  r.steps = 3;
  CancelToken cancel;
  RecordingSink sink(false, &cancel, /*cancel_at=*/3);
  auto out = run(r, sink, cancel);
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(sink.calls.size(), 3u);
}

TEST(NullGeneratorTest, StepDelaySlowsEveryStep) {
  GenerateRequest r = base_request();
  r.steps = 4;
  RecordingSink sink;
  CancelToken cancel;
  auto slow = make_null_generator(std::chrono::milliseconds(10));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow->generate(r, sink, cancel).is_ok());
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(elapsed, std::chrono::milliseconds(40));
  EXPECT_EQ(sink.calls.size(), 4u);
  // The delay changes nothing in the output.
  RecordingSink sink2;
  auto fast = make_null_generator()->generate(r, sink2, cancel);
  auto again = make_null_generator(std::chrono::milliseconds(1))->generate(r, sink2, cancel);
  ASSERT_TRUE(fast.is_ok());
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ((*fast)[0].image.pixels, (*again)[0].image.pixels);
}

// ---------------------------------------------------------------------------------------------
// lineage modes

TEST(NullGeneratorLineageTest, Txt2ImgLineageIsTheVersionedKey) {
  GeneratedImage img = one(base_request());
  EXPECT_TRUE(is_null_lineage(img.lineage)) << img.lineage;
}

TEST(NullGeneratorLineageTest, VariationDiffersFromTheParentAndIsDeterministic) {
  GenerateRequest pr = base_request();
  GeneratedImage parent = one(pr);
  GenerateRequest cr = child_request(Mode::kVariation, parent_from(parent, pr), 0.3);
  GeneratedImage child = one(cr);
  EXPECT_TRUE(is_null_lineage(child.lineage)) << child.lineage;
  EXPECT_NE(child.lineage, parent.lineage);
  EXPECT_NE(child.image.pixels, parent.image.pixels);
  GeneratedImage again = one(cr);
  EXPECT_EQ(again.lineage, child.lineage);
  EXPECT_EQ(again.image.pixels, child.image.pixels);
}

TEST(NullGeneratorLineageTest, StrengthChangesAVariation) {
  GenerateRequest pr = base_request();
  GeneratedImage parent = one(pr);
  GeneratedImage weak = one(child_request(Mode::kVariation, parent_from(parent, pr), 0.1));
  GeneratedImage strong = one(child_request(Mode::kVariation, parent_from(parent, pr), 0.9));
  EXPECT_NE(weak.lineage, strong.lineage);
}

TEST(NullGeneratorLineageTest, ChildrenDeriveFromTheParentsLineage) {
  // The same child request under two different parents gives two different children.
  GenerateRequest pa = base_request();
  GenerateRequest pb = base_request();
  pb.seed += 1;
  GeneratedImage parent_a = one(pa);
  GeneratedImage parent_b = one(pb);
  ASSERT_NE(parent_a.lineage, parent_b.lineage);
  for (Mode m : {Mode::kVariation, Mode::kRemix, Mode::kUpscale}) {
    GeneratedImage ca = one(child_request(m, parent_from(parent_a, pa)));
    GeneratedImage cb = one(child_request(m, parent_from(parent_b, pb)));
    EXPECT_NE(ca.lineage, cb.lineage) << mode_name(m);
  }
}

TEST(NullGeneratorLineageTest, RemixUsesTheNewPrompt) {
  GenerateRequest pr = base_request();
  GeneratedImage parent = one(pr);
  GenerateRequest r1 = child_request(Mode::kRemix, parent_from(parent, pr));
  GenerateRequest r2 = r1;
  r2.prompt = "a lighthouse in fog";
  EXPECT_NE(one(r1).lineage, one(r2).lineage);
  EXPECT_NE(one(r1).lineage, parent.lineage);
}

TEST(NullGeneratorLineageTest, UpscaleKeepsTheParentsKeyAtTheNewSize) {
  GenerateRequest pr = base_request();
  GeneratedImage parent = one(pr);
  GenerateRequest cr = child_request(Mode::kUpscale, parent_from(parent, pr));
  cr.width = pr.width * 2;
  cr.height = pr.height * 2;
  cr.count = 2;
  std::vector<GeneratedImage> out = must_run(cr);
  ASSERT_EQ(out.size(), 2u);
  for (const GeneratedImage& img : out) {
    EXPECT_EQ(img.lineage, parent.lineage);
    EXPECT_EQ(img.image.width, pr.width * 2);
    EXPECT_EQ(img.image.height, pr.height * 2);
  }
  // An upscale back at the parent's own size reproduces the parent exactly.
  GenerateRequest same = child_request(Mode::kUpscale, parent_from(parent, pr));
  EXPECT_EQ(one(same).image.pixels, parent.image.pixels);
}

TEST(NullGeneratorLineageTest, MalformedParentLineageIsInvalidArgument) {
  GeneratedImage good = one(base_request());
  ASSERT_TRUE(is_null_lineage(good.lineage));
  std::string hex = good.lineage.substr(6);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper == hex) upper[0] = 'G';  // make sure it is not valid lowercase hex
  for (const std::string& bad :
       std::vector<std::string>{std::string(""), std::string("null1;"),
                                "null1;" + hex.substr(1),               // too short
                                "null1;" + hex + "0",                   // too long
                                "null2;" + hex,                         // another version
                                "cppn1;" + hex,                         // another model
                                "null1;" + upper,                       // not lowercase hex
                                std::string("null1;0123456789abcdeg"),  // not hex
                                "null1:" + hex}) {
    for (Mode m : {Mode::kVariation, Mode::kRemix, Mode::kUpscale}) {
      ParentImage p;
      p.width = 48;
      p.height = 32;
      p.lineage = bad;
      RecordingSink sink;
      CancelToken cancel;
      auto out = run(child_request(m, p), sink, cancel);
      ASSERT_FALSE(out.is_ok()) << "'" << bad << "' " << mode_name(m);
      EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().to_string();
      EXPECT_EQ(out.status().field(), "parent_image_id");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// pixel modes: inpaint and children of uploads

Image textured(int w, int h) {
  Image img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 37 % 251);
  return img;
}

double mean_abs_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / a.pixels.size();
}

GenerateRequest inpaint_request(double strength) {
  GenerateRequest r = base_request();
  r.mode = Mode::kInpaint;
  r.strength = strength;
  r.inpaint = InpaintInput{
      textured(r.width, r.height),
      image::Mask{r.width, r.height, std::vector<uint8_t>(size_t(r.width) * r.height, 255)}};
  // Any parent, of any model: an inpaint does not follow lineage.
  r.parent = ParentImage{.width = r.width, .height = r.height, .lineage = "cppn1;whatever"};
  return r;
}

TEST(NullGeneratorPixelTest, InpaintBlendsTheGradientIntoTheInputByStrength) {
  const Image input = inpaint_request(0).inpaint->image;
  GeneratedImage none = one(inpaint_request(0));
  EXPECT_EQ(none.image.pixels, input.pixels);
  EXPECT_TRUE(is_null_lineage(none.lineage)) << none.lineage;
  double previous = 0;
  for (double s : {0.25, 0.5, 1.0}) {
    const double d = mean_abs_diff(one(inpaint_request(s)).image, input);
    EXPECT_GT(d, previous) << s;
    previous = d;
  }
  EXPECT_EQ(one(inpaint_request(0.5)).image.pixels, one(inpaint_request(0.5)).image.pixels);
}

TEST(NullGeneratorPixelTest, InpaintWithoutItsInputIsRefused) {
  GenerateRequest r = inpaint_request(0.5);
  r.inpaint.reset();
  RecordingSink sink;
  CancelToken cancel;
  auto out = run(r, sink, cancel);
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().field(), "inpaint");
  r = inpaint_request(0.5);
  r.inpaint->image = textured(r.width + 8, r.height);
  EXPECT_EQ(run(r, sink, cancel).status().field(), "inpaint");
}

class NullGeneratorUploadTest : public ::testing::Test {
 protected:
  ParentImage upload(const Image& img) {
    auto png = image::encode_png(img);
    EXPECT_TRUE(png.is_ok());
    const std::string path = (dir_ / "upload.png").string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(png->data()), std::streamsize(png->size()));
    return ParentImage{
        .width = img.width, .height = img.height, .png_path = path, .uploaded = true};
  }
  testing::TempDir dir_{"atelier-null-upload"};
};

TEST_F(NullGeneratorUploadTest, VariationAndRemixHonourStrength) {
  const Image parent = textured(48, 32);
  const ParentImage p = upload(parent);
  for (Mode m : {Mode::kVariation, Mode::kRemix}) {
    GeneratedImage same = one(child_request(m, p, 0.0));
    EXPECT_EQ(same.image.pixels, parent.pixels) << mode_name(m);
    EXPECT_TRUE(is_null_lineage(same.lineage)) << same.lineage;
    double previous = 0;
    for (double s : {0.2, 0.6, 1.0}) {
      const double d = mean_abs_diff(one(child_request(m, p, s)).image, parent);
      EXPECT_GT(d, previous) << mode_name(m) << " " << s;
      previous = d;
    }
  }
}

TEST_F(NullGeneratorUploadTest, AnUploadOfAnotherSizeIsResizedAndUpscaleOnlyTints) {
  const Image parent = textured(24, 16);
  const ParentImage p = upload(parent);
  GenerateRequest r = child_request(Mode::kVariation, p, 0.0);  // 48 x 32
  EXPECT_EQ(one(r).image.pixels, canvas::resize(parent, 48, 32).pixels);

  GenerateRequest up = child_request(Mode::kUpscale, p, 0.5);
  up.width = 48;
  up.height = 32;
  GenerateRequest var = child_request(Mode::kVariation, p, 0.5);
  const Image resized = canvas::resize(parent, 48, 32);
  const GeneratedImage upscaled = one(up);
  EXPECT_EQ(upscaled.image.width, 48);
  EXPECT_GT(mean_abs_diff(upscaled.image, resized), 0);
  EXPECT_LT(mean_abs_diff(upscaled.image, resized), mean_abs_diff(one(var).image, resized) / 2);
}

TEST_F(NullGeneratorUploadTest, AnUnreadableUploadIsUnprocessable) {
  ParentImage p = upload(textured(48, 32));
  p.png_path += ".gone";
  RecordingSink sink;
  CancelToken cancel;
  auto out = run(child_request(Mode::kVariation, p), sink, cancel);
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnprocessable);
  EXPECT_TRUE(sink.calls.empty());
}

}  // namespace
}  // namespace atelier::inference
