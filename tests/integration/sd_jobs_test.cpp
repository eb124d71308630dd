// Stable Diffusion through the server: a models directory holding the sd-tiny fixture (by a
// symbolic link, never a copy) and a broken folder; the model is listed with ranges from its
// configs (the broken one unavailable, with its reason), and txt2img, variation and upscale
// jobs run end to end to PNG files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/image.h"
#include "server/rooms/preview.h"
#include "tests/integration/job_test_helpers.h"
#include "tests/support/ws_client.h"

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
  nlohmann::json tiny, broken;
  for (const auto& m : models) {
    if (m["id"] == "broken") broken = m;
    if (m["id"] == "tiny") tiny = m;
  }
  ASSERT_FALSE(broken.is_null()) << "a folder without its parts is listed, unavailable";
  EXPECT_EQ(broken["available"], false);
  EXPECT_NE(broken["unavailable_reason"].get<std::string>().find("missing"), std::string::npos)
      << broken.dump();
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

// Everyone in the room watches an sd job: each step's progress and a preview made from the
// latents (no VAE call), at latent size, reach a member who did not submit it.
TEST(SdJobsTest, StepProgressAndLatentPreviewsReachTheWholeRoom) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  testing::TempDir dir;
  ServerConfig c = test_config(dir);
  c.models_dir = dir / "models";
  c.preview_interval_ms = 0;
  fs::create_directories(c.models_dir);
  fs::create_directory_symlink(fs::absolute(kTiny), c.models_dir / "tiny");
  TestServer server(c);
  const uint16_t port = server.port();
  ProjectCast cast = make_project_cast(port);

  auto ws = testing::WsClient::connect(port, "/api/v1/ws", {{bearer(cast.viewer.token)}, true});
  ASSERT_TRUE(ws);
  ws->send_json({{"type", "hello"}, {"proto", 1}});
  ASSERT_TRUE(ws->wait_type("welcome"));
  ws->send_json({{"type", "subscribe"}, {"project", cast.project}, {"after_seq", 0}});
  ASSERT_TRUE(ws->wait_type("subscribed"));

  const int64_t id = submit_ok(port, cast.editor.token, cast.project,
                               {{"model", "tiny"},
                                {"prompt", "a red fox in the snow"},
                                {"width", 64},
                                {"height", 64},
                                {"steps", 6},
                                {"sampler", "euler_a"},
                                {"seed", 5}});
  ASSERT_EQ(wait_terminal(port, cast.editor.token, id, 120s)["state"], "done");
  ASSERT_TRUE(ws->wait_for(
      [&](const testing::WsMessage& m) {
        return !m.binary && m.json.value("type", "") == "event" &&
               m.json["event"].value("type", "") == "job.done";
      },
      30s));

  std::set<int64_t> steps;
  int previews = 0;
  for (const auto& m : ws->messages()) {
    if (m.binary) {
      auto h = rooms::parse_preview_header(m.data);
      ASSERT_TRUE(h.is_ok()) << h.status().to_string();
      EXPECT_EQ(h->job, id);
      EXPECT_EQ(h->steps, 6u);
      EXPECT_EQ(h->width, 32) << "the latents' size: 64 px over the VAE's factor 2";
      EXPECT_EQ(h->height, 32);
      ASSERT_GT(m.data.size(), rooms::kPreviewHeaderBytes + 2);
      EXPECT_EQ(static_cast<uint8_t>(m.data[rooms::kPreviewHeaderBytes]), 0xFF) << "a JPEG";
      EXPECT_EQ(static_cast<uint8_t>(m.data[rooms::kPreviewHeaderBytes + 1]), 0xD8);
      ++previews;
    } else if (m.json.value("type", "") == "progress" && m.json["job"] == id) {
      EXPECT_EQ(m.json["steps"], 6);
      steps.insert(m.json["step"].get<int64_t>());
    }
  }
  EXPECT_EQ(steps, (std::set<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_GE(previews, 1);
}

}  // namespace
}  // namespace atelier::apitest
