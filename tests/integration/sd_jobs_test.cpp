// Stable Diffusion through the server: a models directory holding the sd-tiny fixture (by a
// symbolic link, never a copy) and a broken folder; the model is listed with ranges from its
// configs, and txt2img, variation and upscale jobs run end to end to PNG files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/image.h"
#include "tests/integration/job_test_helpers.h"

namespace atelier::apitest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
const fs::path kTiny = "../shared/fixtures/sd-tiny";

image::Image fetch_png(uint16_t port, const std::string& token, const nlohmann::json& image) {
  auto file = call(port, "GET", image["url"], "", bearer(token));
  auto decoded = image::decode_png(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(file.body.data()), file.body.size()));
  EXPECT_TRUE(decoded.is_ok());
  return decoded.is_ok() ? *decoded : image::Image{};
}

TEST(SdJobsTest, TheTinyPipelineIsListedAndRunsTxt2ImgVariationAndUpscale) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  testing::TempDir dir;
  ServerConfig c = test_config(dir);
  c.models_dir = dir / "models";
  fs::create_directories(c.models_dir / "broken");
  fs::create_directory_symlink(fs::absolute(kTiny), c.models_dir / "tiny");
  std::ofstream(c.models_dir / "broken" / "model_index.json")
      << R"({"_class_name":"StableDiffusionPipeline"})";
  TestServer server(c);
  const uint16_t port = server.port();
  Account owner = register_account(port, "owner");
  const int64_t project = create_project(port, owner.token);

  auto models =
      expect_status(call(port, "GET", "/api/v1/models", "", bearer(owner.token)), 200, "models")
          .json["models"];
  nlohmann::json tiny;
  for (const auto& m : models) {
    EXPECT_NE(m["id"], "broken") << "a folder without its parts is skipped";
    if (m["id"] == "tiny") tiny = m;
  }
  ASSERT_FALSE(tiny.is_null()) << models.dump();
  EXPECT_EQ(tiny["kind"], "sd");
  EXPECT_EQ(tiny["params"]["width"]["default"], 64) << "sample_size 32 x the VAE's factor 2";
  EXPECT_EQ(tiny["params"]["width"]["multiple_of"], 4);
  EXPECT_EQ(tiny["params"]["samplers"][0], "ddim") << "the folder's scheduler is DDIM";
  EXPECT_EQ(tiny["params"]["samplers"].size(), 4u);

  const int64_t id = submit_ok(port, owner.token, project,
                               {{"model", "tiny"},
                                {"prompt", "a red fox in the snow"},
                                {"width", 64},
                                {"height", 64},
                                {"steps", 4},
                                {"guidance", 7.5},
                                {"sampler", "euler"},
                                {"seed", 3}});
  nlohmann::json job = wait_terminal(port, owner.token, id, 120s);
  ASSERT_EQ(job["state"], "done") << job.dump();
  EXPECT_EQ(job["progress"]["step"], 4);
  image::Image first = fetch_png(port, owner.token, job["images"][0]);
  ASSERT_EQ(first.width, 64);
  ASSERT_EQ(first.height, 64);
  int lo = 255, hi = 0;
  for (uint8_t v : first.pixels) {
    lo = std::min<int>(lo, v);
    hi = std::max<int>(hi, v);
  }
  EXPECT_GT(hi - lo, 20) << "an image, not a flat fill";

  const int64_t parent = job["images"][0]["id"];
  const int64_t variation = submit_ok(port, owner.token, project,
                                      {{"model", "tiny"},
                                       {"prompt", "a red fox in the snow"},
                                       {"mode", "variation"},
                                       {"parent_image_id", parent},
                                       {"steps", 4},
                                       {"strength", 0.5},
                                       {"sampler", "ddim"}});
  nlohmann::json v = wait_terminal(port, owner.token, variation, 120s);
  ASSERT_EQ(v["state"], "done") << v.dump();
  image::Image child = fetch_png(port, owner.token, v["images"][0]);
  EXPECT_EQ(child.width, 64);
  EXPECT_NE(child.pixels, first.pixels);

  const int64_t upscale = submit_ok(port, owner.token, project,
                                    {{"model", "tiny"},
                                     {"prompt", "a red fox in the snow"},
                                     {"mode", "upscale"},
                                     {"parent_image_id", parent},
                                     {"steps", 4}});
  nlohmann::json u = wait_terminal(port, owner.token, upscale, 120s);
  ASSERT_EQ(u["state"], "done") << u.dump();
  EXPECT_EQ(u["width"], 128);
  EXPECT_EQ(fetch_png(port, owner.token, u["images"][0]).width, 128);

  // Sizes the model cannot take are refused by field before anything runs.
  EXPECT_EQ(submit(port, owner.token, project,
                   {{"model", "tiny"}, {"prompt", "x"}, {"width", 66}, {"height", 64}})
                .error_field(),
            "width");
}

}  // namespace
}  // namespace atelier::apitest
