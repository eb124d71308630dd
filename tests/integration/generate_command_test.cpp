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

}  // namespace
}  // namespace atelier
