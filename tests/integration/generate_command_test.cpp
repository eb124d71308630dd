// `atelier generate` as a process: the sd-tiny fixture's DDIM run at guidance 7.5 from its stored
// initial latents; --out-tensor must equal diffusers' image within 1e-3 and --out be its PNG.
// The same for SDXL, single files and a LoRA, and for inpainting (4- and 9-channel UNets) with
// the inpainting fixtures' expected files passed as --init-latents as they are.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/image.h"
#include "common/safetensors.h"
#include "tests/support/temp_dir.h"

namespace atelier {
namespace {

namespace fs = std::filesystem;
const fs::path kTiny = "../shared/fixtures/sd-tiny";

TEST(GenerateCommandTest, ReproducesTheReferencePipelineRun) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  testing::TempDir dir;
  auto ref = safetensors::File::open((kTiny / "expected/txt2img_ddim_cfg7p5.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  const auto* lat = ref->find("init_latents");
  ASSERT_NE(lat, nullptr);
  auto raw = ref->bytes(*lat);
  auto file = safetensors::serialize(
      {{"latents", safetensors::DType::kF32, lat->shape, std::string(raw.begin(), raw.end())}});
  std::ofstream(dir / "latents.safetensors", std::ios::binary) << *file;

  const std::string cmd =
      std::string(ATELIER_BINARY_DIR) + "/server/app/atelier generate --model " + kTiny.string() +
      " --prompt 'a red fox in the snow' --width 64 --height 64 --steps 4 "
      "--guidance 7.5 --sampler ddim --init-latents " +
      (dir / "latents.safetensors").string() + " --out " + (dir / "out.png").string() +
      " --out-tensor " + (dir / "out.safetensors").string() + " 2>" + (dir / "log.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto out = safetensors::File::open((dir / "out.safetensors").string());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const auto* img = out->find("image");
  ASSERT_NE(img, nullptr);
  EXPECT_EQ(img->shape, (std::vector<int64_t>{1, 3, 64, 64}));
  auto got = *out->to_float(*img);                  // NCHW
  auto want = *ref->to_float(*ref->find("image"));  // NHWC
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x)
        worst = std::max<double>(worst, std::abs(got[static_cast<size_t>((c * 64 + y) * 64 + x)] -
                                                 want[static_cast<size_t>((y * 64 + x) * 3 + c)]));
  EXPECT_LT(worst, 1e-3);
  std::ifstream png_in(dir / "out.png", std::ios::binary);
  std::string png((std::istreambuf_iterator<char>(png_in)), {});
  auto decoded = image::decode_png(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(png.data()), png.size()));
  ASSERT_TRUE(decoded.is_ok());
  EXPECT_EQ(decoded->width, 64);
  std::ifstream log_in(dir / "log.txt");
  std::string log((std::istreambuf_iterator<char>(log_in)), {});
  EXPECT_NE(log.find("4/4 steps"), std::string::npos) << "a progress bar: " << log;
  // A folder that is not a model is refused with a reason and a non-zero status.
  EXPECT_NE(std::system((std::string(ATELIER_BINARY_DIR) + "/server/app/atelier generate --model " +
                         dir.path().string() + " --prompt x 2>/dev/null")
                            .c_str()),
            0);
}

// The image of `atelier generate <args> --init-latents <the reference's>` against the reference
// run's NCHW `image` (the sdxl-tiny and sd15-tiny-ldm layout): the largest difference.
double generate_and_compare(const testing::TempDir& dir, const std::string& args,
                            const fs::path& reference) {
  auto ref = safetensors::File::open(reference.string());
  EXPECT_TRUE(ref.is_ok()) << reference;
  if (!ref.is_ok()) return 1e9;
  const auto* lat = ref->find("init_latents");
  auto raw = ref->bytes(*lat);
  auto file = safetensors::serialize(
      {{"latents", safetensors::DType::kF32, lat->shape, std::string(raw.begin(), raw.end())}});
  std::ofstream(dir / "latents.safetensors", std::ios::binary) << *file;
  const std::string cmd = std::string(ATELIER_BINARY_DIR) + "/server/app/atelier generate " + args +
                          " --init-latents " + (dir / "latents.safetensors").string() + " --out " +
                          (dir / "out.png").string() + " --out-tensor " +
                          (dir / "out.safetensors").string() + " 2>" + (dir / "log.txt").string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto out = safetensors::File::open((dir / "out.safetensors").string());
  if (!out.is_ok()) return 1e9;
  const auto* img = out->find("image");
  const auto* want_t = ref->find("image");
  EXPECT_EQ(img->shape, want_t->shape);
  if (img->shape != want_t->shape) return 1e9;
  auto got = *out->to_float(*img);
  auto want = *ref->to_float(*want_t);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max<double>(worst, std::abs(got[i] - want[i]));
  }
  return worst;
}

const fs::path kXl = "../shared/fixtures/sdxl-tiny";
const fs::path kSd15 = "../shared/fixtures/sd15-tiny-ldm";
const fs::path kXlLora = "../shared/fixtures/sdxl-tiny-lora";

TEST(GenerateCommandTest, ReproducesSdxlWithSizeConditioningAndNoNegative) {
  if (!fs::exists(kXl)) GTEST_SKIP() << "../shared/fixtures/sdxl-tiny is absent";
  testing::TempDir dir;
  EXPECT_LT(generate_and_compare(dir,
                                 "--model " + kXl.string() +
                                     " --prompt 'a red fox in the snow' --width 192 --height 128 "
                                     "--steps 5 --guidance 5 --sampler euler "
                                     "--original-size 384x256 --crop-top-left 16,32 "
                                     "--target-size 192x128",
                                 kXl / "expected/txt2img_euler_g5_noneg.safetensors"),
            1e-3);
  // A malformed size is refused before anything loads.
  EXPECT_NE(std::system((std::string(ATELIER_BINARY_DIR) + "/server/app/atelier generate --model " +
                         kXl.string() + " --prompt x --original-size 384 2>/dev/null")
                            .c_str()),
            0);
}

TEST(GenerateCommandTest, ReproducesSingleFilesWithTheirConfigsAndALora) {
  if (!fs::exists(kSd15) || !fs::exists(kXlLora)) {
    GTEST_SKIP() << "../shared/fixtures/sd15-tiny-ldm or sdxl-tiny-lora is absent";
  }
  testing::TempDir dir;
  EXPECT_LT(
      generate_and_compare(dir,
                           "--model " + (kSd15 / "single_file/sd15-tiny-ldm.safetensors").string() +
                               " --config " + kSd15.string() +
                               " --prompt 'a red fox in the snow' --negative 'blurry, low quality' "
                               "--width 128 --height 128 --steps 5 --guidance 7.5 --sampler euler",
                           kSd15 / "expected/txt2img_euler_g7p5_neg.safetensors"),
      1e-3);
  EXPECT_LT(generate_and_compare(
                dir,
                "--model " + (kXl / "single_file/sdxl-tiny.safetensors").string() + " --config " +
                    kXl.string() + " --lora " +
                    (kXlLora / "lora/sdxl-tiny-lora-kohya.safetensors").string() +
                    ":0.8 --prompt 'a red fox in the snow' --negative 'blurry, low quality' "
                    "--width 192 --height 128 --steps 5 --guidance 5 --sampler euler "
                    "--original-size 1024x1024 --target-size 1024x1024",
                kXlLora / "expected/txt2img_euler_g5_neg_lora_fused0p8.safetensors"),
            1e-3);
}

const fs::path kInpaint4 = "../shared/fixtures/sd-tiny-inpaint";
const fs::path kInpaint9 = "../shared/fixtures/sd-tiny-inpaint9";

// The fixture's inpaint_ddim run from the command line, its expected file passed as it is: the
// written `image` (NCHW) against diffusers' (NHWC) within 1e-3, the PNG within one level.
void check_inpaint(const fs::path& fixture, const fs::path& model) {
  SCOPED_TRACE(fixture.string());
  testing::TempDir dir;
  const fs::path expected = fixture / "expected";
  const std::string cmd =
      std::string(ATELIER_BINARY_DIR) + "/server/app/atelier generate --model " + model.string() +
      " --prompt 'a cat sitting on a wooden bench' --negative 'blurry, low quality' "
      "--steps 8 --guidance 7.5 --sampler ddim --strength 0.75 --init-image " +
      (expected / "init_image.png").string() + " --mask " + (expected / "mask.png").string() +
      " --init-latents " + (expected / "inpaint_ddim.safetensors").string() + " --out " +
      (dir / "out.png").string() + " --out-tensor " + (dir / "out.safetensors").string() + " 2>" +
      (dir / "log.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << testing::read_file(dir / "log.txt");
  auto out = safetensors::File::open((dir / "out.safetensors").string());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  auto ref = safetensors::File::open((expected / "inpaint_ddim.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  const auto* img = out->find("image");
  ASSERT_NE(img, nullptr);
  EXPECT_EQ(img->shape, (std::vector<int64_t>{1, 3, 64, 64}));
  auto got = *out->to_float(*img);                  // NCHW
  auto want = *ref->to_float(*ref->find("image"));  // NHWC
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x)
        worst = std::max<double>(worst, std::abs(got[static_cast<size_t>((c * 64 + y) * 64 + x)] -
                                                 want[static_cast<size_t>((y * 64 + x) * 3 + c)]));
  EXPECT_LT(worst, 1e-3);
  const auto read_png = [](const fs::path& p) {
    const std::string bytes = testing::read_file(p);
    return image::decode_png(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  };
  auto png = read_png(dir / "out.png"), want_png = read_png(expected / "inpaint_ddim.png");
  ASSERT_TRUE(png.is_ok() && want_png.is_ok());
  ASSERT_EQ(png->pixels.size(), want_png->pixels.size());
  size_t off = 0;
  for (size_t i = 0; i < png->pixels.size(); ++i) {
    const int d = std::abs(int{png->pixels[i]} - int{want_png->pixels[i]});
    EXPECT_LE(d, 1) << "value " << i;
    off += d > 0;
  }
  EXPECT_LT(off, png->pixels.size() / 100) << "one level off on a handful of values at most";
}

TEST(GenerateCommandTest, InpaintsAsDiffusersWithTheFixturesDraws) {
  if (!fs::exists(kInpaint4) || !fs::exists(kTiny)) {
    GTEST_SKIP() << "../shared/fixtures/sd-tiny-inpaint or sd-tiny is absent";
  }
  check_inpaint(kInpaint4, kTiny);
}

TEST(GenerateCommandTest, InpaintsWithANineChannelModel) {
  if (!fs::exists(kInpaint9)) GTEST_SKIP() << "../shared/fixtures/sd-tiny-inpaint9 is absent";
  check_inpaint(kInpaint9, kInpaint9);
}

// --mask-blur composites over the init image: far from the mask the output is the init image
// exactly, where diffusers' own output (the VAE's decode of the original's latents) is not.
// A mask without an init image is refused.
TEST(GenerateCommandTest, MaskBlurCompositesOverTheInitImage) {
  if (!fs::exists(kInpaint4) || !fs::exists(kTiny)) {
    GTEST_SKIP() << "../shared/fixtures/sd-tiny-inpaint or sd-tiny is absent";
  }
  testing::TempDir dir;
  const fs::path expected = kInpaint4 / "expected";
  const std::string base = std::string(ATELIER_BINARY_DIR) +
                           "/server/app/atelier generate --model " + kTiny.string() +
                           " --prompt cat --steps 4 --sampler ddim --seed 3 ";
  const std::string cmd = base + "--strength 0.75 --init-image " +
                          (expected / "init_image.png").string() + " --mask " +
                          (expected / "mask.png").string() + " --mask-blur 2 --out " +
                          (dir / "out.png").string() + " 2>" + (dir / "log.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << testing::read_file(dir / "log.txt");
  const auto read_png = [](const fs::path& p) {
    const std::string bytes = testing::read_file(p);
    return *image::decode_png(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  };
  const image::Image out = read_png(dir / "out.png"), init = read_png(expected / "init_image.png");
  // The mask covers columns 21-45 and rows 15-41; blur radius int(2.5 * 2 + 0.5) = 5.
  size_t inside_changed = 0;
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      const bool far = x < 16 || x > 50 || y < 10 || y > 46;
      for (int c = 0; c < 3; ++c) {
        const size_t i = static_cast<size_t>((y * 64 + x) * 3 + c);
        if (far) {
          EXPECT_EQ(out.pixels[i], init.pixels[i]) << x << "," << y;
        }
        if (x >= 27 && x < 40 && y >= 21 && y < 36) {
          inside_changed += out.pixels[i] != init.pixels[i];
        }
      }
    }
  }
  EXPECT_GT(inside_changed, 100u) << "the masked part is repainted";
  EXPECT_NE(std::system((base + "--mask " + (expected / "mask.png").string() + " --out " +
                         (dir / "x.png").string() + " 2>/dev/null")
                            .c_str()),
            0);
}

}  // namespace
}  // namespace atelier
