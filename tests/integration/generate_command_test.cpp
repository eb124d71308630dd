// `atelier generate` as a process: the sd-tiny fixture's DDIM run at guidance 7.5 from its stored
// initial latents; --out-tensor must equal diffusers' image within 1e-3 and --out be its PNG.
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

}  // namespace
}  // namespace atelier
