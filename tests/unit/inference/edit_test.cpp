// The pixel work of inpaint and outpaint (edit.h, edit_canvas.h): how an image reads as a mask,
// the mask blur, resizing, the working size and region a model is given, the outpaint canvas
// and the compositing. run_edit end to end is in edit_run_test.cpp.
#include "server/inference/edit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "server/inference/edit_canvas.h"

namespace atelier::inference {
namespace {

Image rgb(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (size_t i = 0; i < size_t(w) * h; ++i) {
    img.pixels[i * 3] = r;
    img.pixels[i * 3 + 1] = g;
    img.pixels[i * 3 + 2] = b;
  }
  return img;
}

// A textured RGB picture: every pixel differs from its neighbours.
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

// A w x h mask that is 255 inside `r` and 0 elsewhere.
image::Mask box_mask(int w, int h, canvas::Region r) {
  image::Mask m{w, h, std::vector<uint8_t>(size_t(w) * h)};
  for (int y = r.y; y < r.y + r.height; ++y) {
    for (int x = r.x; x < r.x + r.width; ++x) m.values[size_t(y) * w + x] = 255;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Reading an image as a mask

TEST(EditMaskTest, OpaqueImagesReadAsLuminance) {
  Image img{3, 1, 4, {255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255}};
  auto m = mask_from_image(img);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->width, 3);
  EXPECT_EQ(m->height, 1);
  // White regenerates, black keeps; pure red is its 601 luminance (0.299 * 255 = 76).
  EXPECT_EQ(m->values, (std::vector<uint8_t>{255, 0, 76}));
  auto gray = mask_from_image(rgb(2, 2, 128, 128, 128));
  ASSERT_TRUE(gray.is_ok());
  EXPECT_EQ(gray->values, (std::vector<uint8_t>(4, 128)));
}

TEST(EditMaskTest, TransparencyWinsOverColourWhenAnyPixelIsTransparent) {
  // A white, fully transparent pixel regenerates; a black opaque one keeps; half is half.
  Image img{3, 1, 4, {255, 255, 255, 0, 0, 0, 0, 255, 255, 255, 255, 127}};
  auto m = mask_from_image(img);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->values, (std::vector<uint8_t>{255, 0, 128}));
  // The same colours all opaque read as luminance instead.
  img.pixels[3] = img.pixels[11] = 255;
  EXPECT_EQ(mask_from_image(img)->values, (std::vector<uint8_t>{255, 0, 255}));
}

TEST(EditMaskTest, EmptyMeansNothingReaches128) {
  image::Mask m{4, 1, {0, 127, 100, 1}};
  EXPECT_TRUE(mask_is_empty(m));
  m.values[2] = 128;
  EXPECT_FALSE(mask_is_empty(m));
  EXPECT_TRUE(mask_is_empty(*mask_from_image(rgb(5, 5, 0, 0, 0))));
  EXPECT_FALSE(mask_is_empty(*mask_from_image(rgb(5, 5, 255, 255, 255))));
}

TEST(EditMaskTest, InvalidImageNamesTheMask) {
  Image broken{4, 4, 3, std::vector<uint8_t>(5)};
  auto m = mask_from_image(broken);
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status().field(), "mask_image_id");
}

TEST(EditMaskTest, BinarizeAt128) {
  image::Mask m{4, 1, {0, 127, 128, 255}};
  EXPECT_EQ(canvas::binarize(m).values, (std::vector<uint8_t>{0, 0, 255, 255}));
}

// ---------------------------------------------------------------------------------------------
// Mask blur

TEST(EditBlurTest, RadiusIsA1111s) {
  EXPECT_EQ(canvas::blur_radius(0), 0);
  EXPECT_EQ(canvas::blur_radius(1), 3);
  EXPECT_EQ(canvas::blur_radius(4), 10);
  EXPECT_EQ(canvas::blur_radius(64), 160);
}

TEST(EditBlurTest, ZeroKeepsTheHardMask) {
  const image::Mask m = box_mask(40, 30, {10, 5, 12, 9});
  EXPECT_EQ(canvas::blur_mask(m, 0).values, m.values);
}

TEST(EditBlurTest, NothingMovesBeyondTheRadiusAndTheInsideStaysFull) {
  const int w = 120, h = 100, blur = 4, r = canvas::blur_radius(blur);
  const canvas::Region box{40, 30, 30, 35};
  const image::Mask b = canvas::blur_mask(box_mask(w, h, box), blur);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const int dx = std::max({box.x - x, x - (box.x + box.width - 1), 0});
      const int dy = std::max({box.y - y, y - (box.y + box.height - 1), 0});
      const uint8_t v = b.values[size_t(y) * w + x];
      if (dx > r || dy > r) {
        EXPECT_EQ(v, 0) << x << "," << y;
      }
      const bool deep = x - box.x >= r && box.x + box.width - 1 - x >= r && y - box.y >= r &&
                        box.y + box.height - 1 - y >= r;
      if (deep) {
        EXPECT_EQ(v, 255) << x << "," << y;
      }
    }
  }
  // The edge is soft: about half at the boundary, rising inward.
  const size_t row = size_t(box.y + box.height / 2) * w;
  EXPECT_GT(b.values[row + box.x - 2], 0);
  EXPECT_LT(b.values[row + box.x - 2], b.values[row + box.x]);
  EXPECT_LT(b.values[row + box.x], b.values[row + box.x + 2]);
  EXPECT_NEAR(b.values[row + box.x], 140, 20);
}

TEST(EditBlurTest, MatchesAGaussianComputedDirectly) {
  const int w = 50, h = 40, blur = 3, r = canvas::blur_radius(blur);
  image::Mask m{w, h, std::vector<uint8_t>(size_t(w) * h)};
  for (size_t i = 0; i < m.values.size(); ++i) m.values[i] = (i * 37 % 11 < 4) ? 255 : (i % 3) * 60;
  const image::Mask b = canvas::blur_mask(m, blur);
  std::vector<double> k(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-i * i / (2.0 * blur * blur));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      double acc = 0;
      for (int j = -r; j <= r; ++j) {
        for (int i = -r; i <= r; ++i) {
          const int sx = std::clamp(x + i, 0, w - 1), sy = std::clamp(y + j, 0, h - 1);
          acc += k[i + r] * k[j + r] / (sum * sum) * m.values[size_t(sy) * w + sx];
        }
      }
      EXPECT_NEAR(b.values[size_t(y) * w + x], acc, 1.0) << x << "," << y;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Resizing

TEST(EditResizeTest, SameSizeIsACopyAndFlatStaysFlat) {
  const Image p = pattern(30, 20);
  EXPECT_EQ(canvas::resize(p, 30, 20).pixels, p.pixels);
  const Image flat = rgb(17, 9, 10, 200, 99);
  for (auto [w, h] : {std::pair{5, 3}, std::pair{40, 31}, std::pair{17, 50}, std::pair{1, 1}}) {
    const Image r = canvas::resize(flat, w, h);
    ASSERT_EQ(r.width, w);
    ASSERT_EQ(r.height, h);
    EXPECT_EQ(r.pixels, rgb(w, h, 10, 200, 99).pixels) << w << "x" << h;
  }
}

TEST(EditResizeTest, DownscaleAveragesAreasAndUpscaleInterpolates) {
  // 4x2 -> 2x1: each output pixel the mean of a 2x2 block.
  image::Mask m{4, 2, {0, 100, 200, 255, 100, 0, 255, 255}};
  EXPECT_EQ(canvas::resize(m, 2, 1).values, (std::vector<uint8_t>{50, 241}));
  // 2x1 -> 4x1: pixel centres at 0.25 / 0.75 of the way; ends clamp.
  image::Mask two{2, 1, {0, 200}};
  EXPECT_EQ(canvas::resize(two, 4, 1).values, (std::vector<uint8_t>{0, 50, 150, 200}));
  // Fractional ratio: 3 -> 2 weighs the middle pixel half into each.
  image::Mask three{3, 1, {0, 90, 180}};
  EXPECT_EQ(canvas::resize(three, 2, 1).values, (std::vector<uint8_t>{30, 150}));
}

// ---------------------------------------------------------------------------------------------
// Working size and region

const IntParam kSide{.min = 64, .max = 1024, .default_value = 512, .multiple_of = 8};

TEST(EditWorkingSizeTest, AValidCanvasIsUsedAsItIs) {
  EXPECT_EQ(canvas::fit_working_size(512, 768, kSide, kSide), (std::pair{512, 768}));
  EXPECT_EQ(canvas::fit_working_size(64, 1024, kSide, kSide), (std::pair{64, 1024}));
}

TEST(EditWorkingSizeTest, OffGridOrOversizeCanvasesAreFittedKeepingTheAspect) {
  EXPECT_EQ(canvas::fit_working_size(1000, 750, kSide, kSide), (std::pair{1000, 752}));
  EXPECT_EQ(canvas::fit_working_size(3000, 1500, kSide, kSide), (std::pair{1024, 512}));
  EXPECT_EQ(canvas::fit_working_size(1500, 4000, kSide, kSide), (std::pair{384, 1024}));
  EXPECT_EQ(canvas::fit_working_size(30, 60, kSide, kSide), (std::pair{64, 128}));
  // An aspect the ranges cannot hold is clamped rather than overflowing.
  EXPECT_EQ(canvas::fit_working_size(8000, 100, kSide, kSide), (std::pair{1024, 64}));
  const auto [w, h] = canvas::fit_working_size(2047, 1151, kSide, kSide);
  EXPECT_EQ(w % 8, 0);
  EXPECT_EQ(h % 8, 0);
  EXPECT_EQ(w, 1024);
  EXPECT_NEAR(double(w) / h, 2047.0 / 1151, 0.02);
}

TEST(EditMaskedRegionTest, TheBoxIsPaddedAndWidenedToTheTargetAspect) {
  const canvas::Region box{400, 400, 20, 20};
  EXPECT_EQ(canvas::masked_region(box, 1000, 1000, 512, 512), (canvas::Region{368, 368, 84, 84}));
  // 3:2 target: 84 x 84 becomes 126 x 84 about the centre.
  EXPECT_EQ(canvas::masked_region(box, 1000, 1000, 768, 512), (canvas::Region{347, 368, 126, 84}));
  // Tall target: the height grows instead; a wide box is never shrunk.
  EXPECT_EQ(canvas::masked_region({100, 500, 200, 10}, 1000, 1000, 512, 768),
            (canvas::Region{68, 307, 264, 396}));
}

TEST(EditMaskedRegionTest, ABoxAtTheEdgeIsShiftedInsideNotShrunk) {
  EXPECT_EQ(canvas::masked_region({0, 0, 10, 10}, 500, 400, 512, 512),
            (canvas::Region{0, 0, 74, 74}));
  EXPECT_EQ(canvas::masked_region({490, 390, 10, 10}, 500, 400, 512, 512),
            (canvas::Region{426, 326, 74, 74}));
}

TEST(EditMaskedRegionTest, ACanvasSmallerThanTheRegionIsUsedWhole) {
  EXPECT_EQ(canvas::masked_region({10, 10, 20, 20}, 50, 40, 512, 512),
            (canvas::Region{0, 0, 50, 40}));
  // One axis too short: that axis is the canvas, the other keeps its shifted box.
  EXPECT_EQ(canvas::masked_region({300, 10, 20, 20}, 1000, 60, 512, 512),
            (canvas::Region{268, 0, 84, 60}));
}

TEST(EditMaskedRegionTest, BoundingBoxOfTheNonZeroValues) {
  EXPECT_EQ(canvas::bounding_box(box_mask(50, 40, {7, 9, 11, 3})), (canvas::Region{7, 9, 11, 3}));
  EXPECT_EQ(canvas::bounding_box(image::Mask{5, 5, std::vector<uint8_t>(25)}), canvas::Region{});
}

// ---------------------------------------------------------------------------------------------
// Outpaint canvas

TEST(EditOutpaintTest, TheParentIsPlacedExactlyAndTheMaskIsTheNewArea) {
  const Image parent = pattern(40, 30);
  const Extend e{.left = 13, .right = 7, .top = 5, .bottom = 21};
  const canvas::OutpaintCanvas c = canvas::outpaint_canvas(parent, e, 99);
  ASSERT_EQ(c.image.width, 60);
  ASSERT_EQ(c.image.height, 56);
  ASSERT_EQ(c.image.channels, 3);
  ASSERT_EQ(c.mask.width, 60);
  ASSERT_EQ(c.mask.height, 56);
  for (int y = 0; y < 56; ++y) {
    for (int x = 0; x < 60; ++x) {
      const bool inside = x >= 13 && x < 53 && y >= 5 && y < 35;
      EXPECT_EQ(c.mask.values[size_t(y) * 60 + x], inside ? 0 : 255) << x << "," << y;
      if (!inside) continue;
      for (int ch = 0; ch < 3; ++ch) {
        ASSERT_EQ(c.image.pixels[(size_t(y) * 60 + x) * 3 + ch],
                  parent.pixels[(size_t(y - 5) * 40 + (x - 13)) * 3 + ch]);
      }
    }
  }
}

TEST(EditOutpaintTest, TheFillContinuesTheEdgeAndSoftensWithDistance) {
  // Black and white rows: the clamped edge would be hard stripes all the way out.
  Image parent = pattern(40, 30);
  for (size_t i = 0; i < parent.pixels.size(); ++i) parent.pixels[i] = (i / (40 * 3)) % 2 ? 255 : 0;
  const canvas::OutpaintCanvas c = canvas::outpaint_canvas(parent, {.left = 64, .right = 64}, 5);
  const int w = c.image.width;
  auto px = [&](int x, int y, int ch) { return int(c.image.pixels[(size_t(y) * w + x) * 3 + ch]); };
  double far_steps = 0, edge_steps = 0;
  for (int y = 0; y < 30; ++y) {
    for (int ch = 0; ch < 3; ++ch) {
      // Next to the parent: its edge colour within a level, on both sides.
      EXPECT_NEAR(px(63, y, ch), parent.pixels[size_t(y) * 40 * 3 + ch], 1);
      EXPECT_NEAR(px(104, y, ch), parent.pixels[(size_t(y) * 40 + 39) * 3 + ch], 1);
      if (y + 1 < 30) {
        edge_steps += std::abs(px(63, y + 1, ch) - px(63, y, ch));
        far_steps += std::abs(px(2, y + 1, ch) - px(2, y, ch));
      }
    }
  }
  // Far out, the stripes have become a soft field (what is left is the small noise).
  EXPECT_GT(edge_steps, 29 * 3 * 254);
  EXPECT_LT(far_steps, 29 * 3 * 8);
  // Deterministic for a seed, textured differently by another.
  EXPECT_EQ(canvas::outpaint_canvas(parent, {.left = 64, .right = 64}, 5).image.pixels,
            c.image.pixels);
  EXPECT_NE(canvas::outpaint_canvas(parent, {.left = 64, .right = 64}, 6).image.pixels,
            c.image.pixels);
}

// ---------------------------------------------------------------------------------------------
// Compositing and blends

TEST(EditCompositeTest, AlphaZeroKeepsTheCanvasAndFullTakesThePatch) {
  Image canvas_img = pattern(20, 10);
  const Image before = canvas_img;
  const Image patch = rgb(8, 4, 1, 2, 3);
  image::Mask alpha{20, 10, std::vector<uint8_t>(200)};
  alpha.values[size_t(5) * 20 + 6] = 255;  // inside the region
  alpha.values[size_t(5) * 20 + 7] = 128;  // inside, half
  alpha.values[size_t(0) * 20 + 0] = 255;  // outside the region: ignored
  canvas::composite(canvas_img, patch, {4, 3, 8, 4}, alpha);
  for (int i = 0; i < 200; ++i) {
    if (i == 5 * 20 + 6 || i == 5 * 20 + 7) continue;
    for (int ch = 0; ch < 3; ++ch)
      ASSERT_EQ(canvas_img.pixels[i * 3 + ch], before.pixels[i * 3 + ch]);
  }
  EXPECT_EQ(canvas_img.pixels[(5 * 20 + 6) * 3], 1);
  const int b = before.pixels[(5 * 20 + 7) * 3];
  EXPECT_NEAR(canvas_img.pixels[(5 * 20 + 7) * 3], (b * 127 + 1 * 128) / 255.0, 0.51);
}

TEST(EditCompositeTest, BlendAndFlatten) {
  const Image a = rgb(3, 3, 0, 100, 200), b = rgb(3, 3, 200, 100, 0);
  EXPECT_EQ(canvas::blend(a, b, 0).pixels, a.pixels);
  EXPECT_EQ(canvas::blend(a, b, 1).pixels, b.pixels);
  EXPECT_EQ(canvas::blend(a, b, 0.25).pixels, rgb(3, 3, 50, 100, 150).pixels);
  Image rgba{2, 1, 4, {0, 0, 0, 0, 10, 20, 30, 255}};
  EXPECT_EQ(canvas::flatten_over_white(rgba).pixels,
            (std::vector<uint8_t>{255, 255, 255, 10, 20, 30}));
}

}  // namespace
}  // namespace atelier::inference
