// Inpaint and outpaint through edit.h's run_edit for every Stable Diffusion family the fixtures
// hold besides sd-tiny (whose parity with diffusers sd_inpaint_test.cpp checks): an SDXL folder,
// an SDXL single file and an SD 1.5 single file. There is no diffusers reference for these, so
// what is checked is the contract every family must keep: the output has the job's size, equals
// the parent wherever the blurred mask is 0, and is the model's work where the mask is white.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/image.h"
#include "server/inference/edit.h"
#include "server/inference/sd/sd_generator.h"
#include "tests/support/temp_dir.h"

namespace atelier::inference {
namespace {

namespace fs = std::filesystem;

const fs::path kSdxl = "../shared/fixtures/sdxl-tiny";
const fs::path kSdxlFile = "../shared/fixtures/sdxl-tiny/single_file/sdxl-tiny.safetensors";
const fs::path kSd15File = "../shared/fixtures/sd15-tiny-ldm/single_file/sd15-tiny-ldm.safetensors";

class Quiet : public ProgressSink {
 public:
  void on_step(int, int, const Image*) override {}
};

void write_png(const fs::path& path, const image::Image& img) {
  auto png = image::encode_png(img);
  ASSERT_TRUE(png.is_ok());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(png->data(), 1, png->size(), f);
  std::fclose(f);
}

// A parent with structure (so "unchanged" means something) and a mask whose white square sits
// in the middle, away from the edges.
image::Image parent_image(int w, int h) {
  image::Image img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w * h * 3))};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[static_cast<size_t>((y * w + x) * 3)];
      p[0] = static_cast<uint8_t>(x * 255 / w);
      p[1] = static_cast<uint8_t>(y * 255 / h);
      p[2] = ((x / 8 + y / 8) % 2) ? 200 : 40;
    }
  }
  return img;
}

struct Case {
  std::string name;
  fs::path model;
  fs::path config_dir;  // single files: the fixture's diffusers configs (a sidecar names them)
};

void check_family(const Case& c, Mode mode) {
  if (!fs::exists(c.model)) GTEST_SKIP() << "skipped: " << c.model.string() << " is absent";
  testing::TempDir dir;
  fs::path model = c.model;
  if (!c.config_dir.empty()) {
    // ../shared is read-only: the file is linked into a temp folder beside its sidecar.
    model = dir / "model.safetensors";
    fs::create_symlink(fs::absolute(c.model), model);
    std::ofstream(dir / "model.json") << nlohmann::json{{"config_dir", fs::absolute(c.config_dir)}};
  }
  auto info = sd_model_info(model.string());
  ASSERT_TRUE(info.is_ok()) << c.name << ": " << info.status().message();
  ASSERT_TRUE(info->available) << c.name << ": " << info->unavailable_reason;
  auto made = sd_generator_factory(*info, model.string(), {})("cpu");
  ASSERT_TRUE(made.is_ok()) << c.name << ": " << made.status().message();
  Generator& gen = **made;

  // The parent's size is the model's native size (what a family's UNet takes at its best).
  const int w = static_cast<int>(info->width.default_value);
  const int h = static_cast<int>(info->height.default_value);
  const image::Image parent = parent_image(w, h);
  write_png(dir / "parent.png", parent);
  GenerateRequest job;
  job.model = info->id;
  job.prompt = "a lighthouse";
  job.steps = 4;
  job.guidance = 5;
  job.seed = 11;
  job.count = 1;
  job.sampler = info->samplers.front();
  job.mode = mode;
  job.strength = 1.0;
  job.parent = ParentImage{w, h, 0, "", "", "", (dir / "parent.png").string(), true};
  EditSpec spec;
  spec.mask_blur = 2;
  image::Mask mask{w, h, std::vector<uint8_t>(static_cast<size_t>(w * h), 0)};
  if (mode == Mode::kInpaint) {
    for (int y = h / 4; y < 3 * h / 4; ++y) {
      for (int x = w / 4; x < 3 * w / 4; ++x) mask.values[static_cast<size_t>(y * w + x)] = 255;
    }
    image::Image mask_img{w, h, 3, {}};
    for (uint8_t v : mask.values) mask_img.pixels.insert(mask_img.pixels.end(), {v, v, v});
    write_png(dir / "mask.png", mask_img);
    job.mask_png_path = (dir / "mask.png").string();
    job.width = w;
    job.height = h;
  } else {
    spec.extend = {16, 16, 0, 0};
    job.width = w + 32;
    job.height = h;
  }
  job.edit = spec;
  Quiet progress;
  CancelToken cancel;
  auto out = run_edit(gen, job, progress, cancel);
  ASSERT_TRUE(out.is_ok()) << c.name << ": " << out.status().message();
  ASSERT_EQ(out->size(), 1u);
  const Image& got = (*out)[0].image;
  ASSERT_EQ(got.width, job.width) << c.name;
  ASSERT_EQ(got.height, job.height) << c.name;
  ASSERT_EQ(got.channels, 3);

  // Far from the mask (more than the blur's reach, 2.5 x mask_blur rounded up, plus a margin)
  // the parent is kept within one level; deep inside, the model painted something else.
  const int reach = 8;
  int kept = 0, changed = 0, inside = 0;
  const int ox = mode == Mode::kOutpaint ? 16 : 0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const bool far = mode == Mode::kOutpaint ? (x >= reach && x < w - reach)
                                               : (x < w / 4 - reach || x >= 3 * w / 4 + reach ||
                                                  y < h / 4 - reach || y >= 3 * h / 4 + reach);
      const bool deep = mode == Mode::kInpaint && x >= w / 4 + reach && x < 3 * w / 4 - reach &&
                        y >= h / 4 + reach && y < 3 * h / 4 - reach;
      int diff = 0;
      for (int ch = 0; ch < 3; ++ch) {
        const int a = parent.pixels[static_cast<size_t>((y * w + x) * 3 + ch)];
        const int b = got.pixels[static_cast<size_t>((y * got.width + x + ox) * 3 + ch)];
        diff = std::max(diff, std::abs(a - b));
      }
      if (far) {
        EXPECT_LE(diff, 1) << c.name << " at " << x << "," << y;
        ++kept;
      }
      if (deep) {
        ++inside;
        if (diff > 1) ++changed;
      }
    }
  }
  EXPECT_GT(kept, 0);
  if (mode == Mode::kInpaint) {
    EXPECT_GT(changed, inside / 2) << c.name;
  }
}

const Case kCases[] = {
    {"sdxl-tiny folder", kSdxl, {}},
    {"sdxl-tiny single file", kSdxlFile, kSdxl},
    {"sd15-tiny-ldm single file", kSd15File, "../shared/fixtures/sd15-tiny-ldm"}};

TEST(SdEditFamiliesTest, InpaintKeepsTheParentOutsideTheMaskForEveryFamily) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    check_family(c, Mode::kInpaint);
  }
}

TEST(SdEditFamiliesTest, OutpaintKeepsTheParentAndGrowsTheCanvasForEveryFamily) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    check_family(c, Mode::kOutpaint);
  }
}

}  // namespace
}  // namespace atelier::inference
