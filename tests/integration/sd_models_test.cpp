// The models people have, through the server: a models directory holding the sdxl-tiny folder,
// the sd15-tiny-ldm single-file checkpoint (with a sidecar naming the fixture's configs), a
// truncated checkpoint and an SD3-style one; a LoRA directory holding the sdxl-tiny kohya LoRA
// and an SD 1.x LoRA written here (partly matching). Everything from ../shared is linked, never
// copied. Shown: the listing (families, native sizes, hashes, availability with reasons, the
// LoRAs that fit), SDXL and single-file jobs with LoRAs and size conditioning end to end with
// previews, the job's warnings, the PNG's A1111 parameters, and the LoRA errors by field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/image.h"
#include "common/safetensors.h"
#include "server/inference/file_hash.h"
#include "server/rooms/preview.h"
#include "tests/integration/job_test_helpers.h"
#include "tests/support/ws_client.h"

namespace atelier::apitest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
const fs::path kXl = "../shared/fixtures/sdxl-tiny";
const fs::path kSd15 = "../shared/fixtures/sd15-tiny-ldm";
const fs::path kXlLora = "../shared/fixtures/sdxl-tiny-lora/lora/sdxl-tiny-lora-kohya.safetensors";

safetensors::TensorData f32(const std::string& name, std::vector<int64_t> shape, float scale) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<float>((i * 37 % 11) - 5);
  return {name, safetensors::DType::kF32, shape,
          std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4)};
}

// An SD 1.x kohya LoRA for sd15-tiny-ldm: a 1x1-conv proj_in, a text-encoder q_proj, and one
// module that pairs with nothing (2 keys the job reports).
void write_sd1_lora(const fs::path& path) {
  const std::string u = "lora_unet_down_blocks_0_attentions_0_proj_in";
  const std::string t = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
  const std::string x = "lora_unet_no_such_block_proj";
  auto file = safetensors::serialize(
      {f32(u + ".lora_down.weight", {4, 32, 1, 1}, 0.05f),
       f32(u + ".lora_up.weight", {32, 4, 1, 1}, 0.05f), f32(u + ".alpha", {}, 1.0f),
       f32(t + ".lora_down.weight", {4, 32}, 0.05f), f32(t + ".lora_up.weight", {32, 4}, 0.05f),
       f32(x + ".lora_down.weight", {4, 8}, 0.05f), f32(x + ".lora_up.weight", {8, 4}, 0.05f)});
  ASSERT_TRUE(file.is_ok());
  std::ofstream(path, std::ios::binary) << *file;
}

image::TextChunks png_text(uint16_t port, const std::string& token, const nlohmann::json& image) {
  auto file = call(port, "GET", image["url"], "", bearer(token));
  auto text = image::read_png_text(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(file.body.data()), file.body.size()));
  EXPECT_TRUE(text.is_ok());
  return text.is_ok() ? *text : image::TextChunks{};
}

std::string chunk(const image::TextChunks& chunks, const std::string& key) {
  for (const auto& [k, v] : chunks) {
    if (k == key) return v;
  }
  return "";
}

class SdModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& p : {kXl, kSd15, kXlLora}) {
      if (!fs::exists(p)) GTEST_SKIP() << p << " is absent";
    }
    config_ = test_config(dir_);
    config_.models_dir = dir_ / "models";
    config_.preview_interval_ms = 0;
    const fs::path m = config_.models_dir;
    fs::create_directories(m / "loras");
    fs::create_directory_symlink(fs::absolute(kXl), m / "xl");
    fs::create_symlink(fs::absolute(kSd15 / "single_file/sd15-tiny-ldm.safetensors"),
                       m / "sd15.safetensors");
    std::ofstream(m / "sd15.json") << nlohmann::json{{"config_dir", fs::absolute(kSd15)}};
    {
      std::ifstream in(kSd15 / "single_file/sd15-tiny-ldm.safetensors", std::ios::binary);
      std::string head(4096, '\0');
      in.read(head.data(), static_cast<std::streamsize>(head.size()));
      std::ofstream(m / "truncated.safetensors", std::ios::binary) << head;
    }
    auto sd3 = safetensors::serialize(
        {f32("model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight", {6, 2}, 1)});
    ASSERT_TRUE(sd3.is_ok());
    std::ofstream(m / "sd3.safetensors", std::ios::binary) << *sd3;
    fs::create_symlink(fs::absolute(kXlLora), m / "loras" / "xlstyle.safetensors");
    write_sd1_lora(m / "loras" / "sd1style.safetensors");
  }

  testing::TempDir dir_;
  ServerConfig config_;
};

TEST_F(SdModelsTest, ListsFamiliesHashesAvailabilityAndTheLorasThatFit) {
  TestServer server(config_);
  const uint16_t port = server.port();
  Account owner = register_account(port, "owner");
  auto body =
      expect_status(call(port, "GET", "/api/v1/models", "", bearer(owner.token)), 200, "models")
          .json;
  std::map<std::string, nlohmann::json> models;
  for (const auto& m : body["models"]) models[m["id"]] = m;
  ASSERT_EQ(models.count("xl"), 1u) << body.dump();
  ASSERT_EQ(models.count("sd15"), 1u) << body.dump();
  const auto& xl = models["xl"];
  EXPECT_EQ(xl["family"], "sdxl");
  EXPECT_EQ(xl["available"], true);
  EXPECT_EQ(xl["size_conditioning"], true);
  EXPECT_EQ(xl["params"]["width"]["default"], 256) << "sample_size 32 x the VAE's factor 8";
  EXPECT_EQ(xl["hash"], *inference::sha256_file(kXl / "unet/diffusion_pytorch_model.safetensors"));
  EXPECT_EQ(xl["loras"], nlohmann::json::array({"xlstyle"}));
  const auto& sd15 = models["sd15"];
  EXPECT_EQ(sd15["family"], "sd1");
  EXPECT_EQ(sd15["size_conditioning"], false);
  EXPECT_EQ(sd15["params"]["width"]["default"], 128);
  EXPECT_EQ(sd15["hash"], "5eb3d9588f1a99058775158bb6f2cda9c02ee9729cd23bb6d74e254ea2609c27")
      << "the file's sha256 as the fixture's README gives it";
  EXPECT_EQ(sd15["loras"], nlohmann::json::array({"sd1style"}));
  ASSERT_EQ(models.count("truncated"), 1u) << "a truncated file is listed, not skipped";
  EXPECT_EQ(models["truncated"]["available"], false);
  EXPECT_FALSE(models["truncated"]["unavailable_reason"].get<std::string>().empty());
  ASSERT_EQ(models.count("sd3"), 1u);
  EXPECT_EQ(models["sd3"]["available"], false);
  EXPECT_NE(models["sd3"]["unavailable_reason"].get<std::string>().find("SD3"), std::string::npos)
      << models["sd3"].dump();
  std::map<std::string, nlohmann::json> loras;
  for (const auto& l : body["loras"]) loras[l["name"]] = l;
  EXPECT_EQ(loras["xlstyle"]["family"], "sdxl");
  EXPECT_EQ(loras["xlstyle"]["hash"],
            "05daeca9645e9592a29a531971c16555f4cc0f4adf66da1421f133b942369d47");
  EXPECT_EQ(loras["sd1style"]["family"], "sd1");
  EXPECT_EQ(loras["sd1style"]["available"], true);
}

TEST_F(SdModelsTest, SdxlAndSingleFileJobsWithLorasRunEndToEndWithPreviews) {
  TestServer server(config_);
  const uint16_t port = server.port();
  ProjectCast cast = make_project_cast(port);
  auto ws = testing::WsClient::connect(port, "/api/v1/ws", {{bearer(cast.viewer.token)}, true});
  ASSERT_TRUE(ws);
  ws->send_json({{"type", "hello"}, {"proto", 1}});
  ASSERT_TRUE(ws->wait_type("welcome"));
  ws->send_json({{"type", "subscribe"}, {"project", cast.project}, {"after_seq", 0}});
  ASSERT_TRUE(ws->wait_type("subscribed"));
  const std::string& token = cast.editor.token;

  const nlohmann::json xl_request = {{"model", "xl"},
                                     {"prompt", "a red fox in the snow"},
                                     {"negative_prompt", "blurry"},
                                     {"width", 64},
                                     {"height", 64},
                                     {"steps", 3},
                                     {"seed", 7},
                                     {"original_size", {512, 384}},
                                     {"target_size", {64, 64}},
                                     {"crop_top_left", {8, 16}}};
  nlohmann::json with_lora = xl_request;
  with_lora["loras"] = {{{"name", "xlstyle"}, {"weight", 0.8}}};
  const int64_t plain_id = submit_ok(port, token, cast.project, xl_request);
  const int64_t lora_id = submit_ok(port, token, cast.project, with_lora);
  nlohmann::json plain = wait_terminal(port, token, plain_id, 120s);
  nlohmann::json lora = wait_terminal(port, token, lora_id, 120s);
  ASSERT_EQ(plain["state"], "done") << plain.dump();
  ASSERT_EQ(lora["state"], "done") << lora.dump();
  EXPECT_EQ(lora["loras"][0]["name"], "xlstyle");
  EXPECT_EQ(lora["original_size"], nlohmann::json::array({512, 384}));
  EXPECT_EQ(lora["crop_top_left"], nlohmann::json::array({8, 16}));
  const auto plain_png = call(port, "GET", plain["images"][0]["url"], "", bearer(token)).body;
  const auto lora_png = call(port, "GET", lora["images"][0]["url"], "", bearer(token)).body;
  EXPECT_NE(plain_png, lora_png) << "the LoRA changes the image";
  const std::string params = chunk(png_text(port, token, lora["images"][0]), "parameters");
  EXPECT_NE(params.find("Model hash: " +
                        (*inference::sha256_file(kXl / "unet/diffusion_pytorch_model.safetensors"))
                            .substr(0, 10)),
            std::string::npos)
      << params;
  EXPECT_NE(params.find("Lora hashes: \"xlstyle: 05daeca9645e\""), std::string::npos) << params;

  // The same model again without a LoRA: the cached weights are back to the base model.
  const int64_t again_id = submit_ok(port, token, cast.project, xl_request);
  nlohmann::json again = wait_terminal(port, token, again_id, 120s);
  ASSERT_EQ(again["state"], "done") << again.dump();
  EXPECT_EQ(call(port, "GET", again["images"][0]["url"], "", bearer(token)).body, plain_png)
      << "switching the LoRA off restores the base weights exactly";

  // A single file, the LoRA written in the prompt as A1111 does; its stray module is reported.
  const int64_t sd_id = submit_ok(port, token, cast.project,
                                  {{"model", "sd15"},
                                   {"prompt", "a red fox <lora:sd1style:0.7> in the snow"},
                                   {"width", 128},
                                   {"height", 128},
                                   {"steps", 3},
                                   {"seed", 3}});
  nlohmann::json sd = wait_terminal(port, token, sd_id, 120s);
  ASSERT_EQ(sd["state"], "done") << sd.dump();
  ASSERT_EQ(sd["warnings"].size(), 1u) << sd.dump();
  EXPECT_NE(sd["warnings"][0].get<std::string>().find("2 of 7 keys matched no layer"),
            std::string::npos)
      << sd.dump();

  ASSERT_TRUE(ws->wait_for(
      [&](const testing::WsMessage& m) {
        if (m.binary || m.json.value("type", "") != "event") return false;
        const auto& ev = m.json["event"];
        return ev.value("type", "") == "job.done" && ev.contains("data") &&
               ev["data"].contains("job") && ev["data"]["job"].value("id", int64_t{0}) == sd_id;
      },
      30s));
  std::set<int64_t> previewed;
  for (const auto& m : ws->messages()) {
    if (!m.binary) continue;
    auto h = rooms::parse_preview_header(m.data);
    ASSERT_TRUE(h.is_ok()) << h.status().to_string();
    previewed.insert(h->job);
  }
  EXPECT_GE(previewed.size(), 2u) << "previews of the SDXL and single-file jobs reach a viewer";
}

TEST_F(SdModelsTest, LorasAndSizesAreRefusedByFieldWithTheReason) {
  TestServer server(config_);
  const uint16_t port = server.port();
  Account owner = register_account(port, "owner");
  const int64_t project = create_project(port, owner.token);
  auto refused = [&](const nlohmann::json& body) {
    return submit(port, owner.token, project, body);
  };
  Reply wrong_family =
      refused({{"model", "xl"}, {"prompt", "x"}, {"loras", {{{"name", "sd1style"}}}}});
  EXPECT_EQ(wrong_family.status, 400);
  EXPECT_EQ(wrong_family.error_field(), "loras[0].name") << wrong_family.body;
  Reply unknown = refused({{"model", "xl"}, {"prompt", "<lora:nope:1> x"}});
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  Reply sizes = refused({{"model", "sd15"}, {"prompt", "x"}, {"original_size", {512, 512}}});
  EXPECT_EQ(sizes.status, 400);
  EXPECT_EQ(sizes.error_field(), "original_size") << sizes.body;
  Reply broken = refused({{"model", "truncated"}, {"prompt", "x"}});
  EXPECT_GE(broken.status, 400) << broken.body;
  EXPECT_LT(broken.status, 500) << broken.body;
}

}  // namespace
}  // namespace atelier::apitest
