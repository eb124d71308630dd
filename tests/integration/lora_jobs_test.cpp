// Issue 17 through the server, without torch: a fake SDXL model (the null generator behind a
// registry entry with family "sdxl", size conditioning and 5 LoRAs) and fake LoRAs. Checks the
// model list, every LoRA and size-conditioning error over REST (400 naming the field), and a
// job whose LoRAs, size conditioning, hashes and warnings are stored, returned, handed to the
// generator and written into the PNG.
#include <gtest/gtest.h>

#include <mutex>

#include "common/image.h"
#include "server/inference/null_generator.h"
#include "tests/integration/job_test_helpers.h"

namespace atelier::apitest {
namespace {

using nlohmann::json;

const std::string kXlHash = "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b";
const std::string kInkHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kGrainHash = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

// What the fake generator was asked, shared with the test.
struct Seen {
  std::mutex mu;
  std::vector<inference::GenerateRequest> requests;
};

class CapturingGenerator : public inference::Generator {
 public:
  explicit CapturingGenerator(std::shared_ptr<Seen> seen)
      : seen_(std::move(seen)), inner_(inference::make_null_generator()) {}
  const inference::ModelInfo& info() const override { return inner_->info(); }
  Result<std::vector<inference::GeneratedImage>> generate(
      const inference::GenerateRequest& request, inference::ProgressSink& progress,
      const inference::CancelToken& cancel) override {
    {
      std::lock_guard lock(seen_->mu);
      seen_->requests.push_back(request);
    }
    auto out = inner_->generate(request, progress, cancel);
    if (out.is_ok() && !request.loras.empty()) {
      for (auto& image : *out) {
        image.warnings = {"LoRA " + request.loras.front().name + ": 3 of 40 keys matched no layer"};
      }
    }
    return out;
  }

 private:
  std::shared_ptr<Seen> seen_;
  std::unique_ptr<inference::Generator> inner_;
};

inference::ModelEntry fake_model(const std::string& id, const std::string& family,
                                 std::shared_ptr<Seen> seen) {
  inference::ModelEntry e = inference::null_model_entry();
  e.info.id = id;
  e.info.kind = "sd";
  e.info.family = family;
  e.info.max_loras = 5;
  e.create = [seen](const std::string&) -> Result<std::unique_ptr<inference::Generator>> {
    return std::unique_ptr<inference::Generator>(std::make_unique<CapturingGenerator>(seen));
  };
  return e;
}

class LoraJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig c = test_config(dir_);
    c.enable_null_model = true;
    auto seen = seen_;
    app::AppHooks hooks;
    hooks.register_models = [seen](inference::ModelRegistry& models) -> Status {
      inference::ModelEntry xl = fake_model("xl", "sdxl", seen);
      xl.info.hash = kXlHash;
      xl.info.size_conditioning = true;
      xl.info.width = {256, 2048, 1024, 8};
      xl.info.height = {256, 2048, 1024, 8};
      ATELIER_RETURN_IF_ERROR(models.add(std::move(xl)));
      ATELIER_RETURN_IF_ERROR(models.add(fake_model("v15", "sd1", seen)));
      inference::ModelEntry gone = fake_model("gone", "sdxl", seen);
      gone.info.available = false;
      gone.info.unavailable_reason = "truncated: 12 of 6938 MB";
      ATELIER_RETURN_IF_ERROR(models.add(std::move(gone)));
      ATELIER_RETURN_IF_ERROR(models.add_lora({"ink", "sdxl", kInkHash, true, ""}));
      ATELIER_RETURN_IF_ERROR(models.add_lora({"grain", "sdxl", kGrainHash, true, ""}));
      for (const char* n : {"l3", "l4", "l5", "l6"}) {
        ATELIER_RETURN_IF_ERROR(models.add_lora({n, "sdxl", std::string(64, 'c'), true, ""}));
      }
      ATELIER_RETURN_IF_ERROR(models.add_lora({"old", "sd1", std::string(64, 'd'), true, ""}));
      return models.add_lora({"broken", "sdxl", "", false, "no lora_up weights"});
    };
    server_ = std::make_unique<TestServer>(c, std::move(hooks));
    port_ = server_->port();
    owner_ = register_account(port_, "owner");
    project_ = create_project(port_, owner_.token);
  }

  Reply post(const json& body) { return submit(port_, owner_.token, project_, body); }

  // 400 naming `field`.
  void expect_400(const json& body, const std::string& field) {
    Reply r = post(body);
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.body;
    EXPECT_EQ(r.error_field(), field) << body.dump() << " -> " << r.body;
  }

  testing::TempDir dir_;
  std::shared_ptr<Seen> seen_ = std::make_shared<Seen>();
  std::unique_ptr<TestServer> server_;
  uint16_t port_ = 0;
  Account owner_;
  int64_t project_ = 0;
};

json find_by(const json& list, const std::string& key, const std::string& value) {
  for (const auto& item : list) {
    if (item[key] == value) return item;
  }
  return nullptr;
}

TEST_F(LoraJobsTest, ModelsListFamilyHashAvailabilityAndTheLorasThatFit) {
  Reply r = call(port_, "GET", "/api/v1/models", "", bearer(owner_.token));
  ASSERT_EQ(r.status, 200) << r.body;
  json xl = find_by(r.json["models"], "id", "xl");
  ASSERT_TRUE(xl.is_object()) << r.body;
  EXPECT_EQ(xl["family"], "sdxl");
  EXPECT_EQ(xl["hash"], kXlHash);
  EXPECT_EQ(xl["available"], true);
  EXPECT_TRUE(xl["unavailable_reason"].is_null());
  EXPECT_EQ(xl["native_width"], 1024);
  EXPECT_EQ(xl["native_height"], 1024);
  EXPECT_EQ(xl["native_width"], xl["params"]["width"]["default"]);
  EXPECT_EQ(xl["size_conditioning"], true);
  EXPECT_EQ(xl["max_loras"], 5);
  EXPECT_EQ(xl["loras"], (json{"ink", "grain", "l3", "l4", "l5", "l6"}));
  json v15 = find_by(r.json["models"], "id", "v15");
  EXPECT_EQ(v15["loras"], (json{"old"}));
  EXPECT_EQ(v15["size_conditioning"], false);
  json gone = find_by(r.json["models"], "id", "gone");
  EXPECT_EQ(gone["available"], false);
  EXPECT_EQ(gone["unavailable_reason"], "truncated: 12 of 6938 MB");
  json null_model = find_by(r.json["models"], "id", "null");
  EXPECT_TRUE(null_model["family"].is_null());
  EXPECT_TRUE(null_model["hash"].is_null());
  EXPECT_EQ(null_model["max_loras"], 0);
  EXPECT_EQ(null_model["loras"], json::array());

  ASSERT_EQ(r.json["loras"].size(), 8u);
  EXPECT_EQ(find_by(r.json["loras"], "name", "ink"), (json{{"name", "ink"},
                                                           {"family", "sdxl"},
                                                           {"hash", kInkHash},
                                                           {"available", true},
                                                           {"reason", nullptr}}));
  EXPECT_EQ(find_by(r.json["loras"], "name", "broken"), (json{{"name", "broken"},
                                                              {"family", "sdxl"},
                                                              {"hash", nullptr},
                                                              {"available", false},
                                                              {"reason", "no lora_up weights"}}));
}

TEST_F(LoraJobsTest, LoraAndSizeErrorsNameTheirField) {
  const json base = {{"model", "xl"}, {"prompt", "a cat"}};
  auto with = [&](const json& extra) {
    json b = base;
    b.update(extra);
    return b;
  };
  expect_400(with({{"loras", {{{"name", "old"}}}}}), "loras[0].name");  // another family
  expect_400(with({{"loras", {{{"name", "ink"}}, {{"name", "nope"}}}}}), "loras[1].name");
  expect_400(with({{"loras", {{{"name", "broken"}}}}}), "loras[0].name");
  expect_400(with({{"loras", {{{"name", "ink"}, {"weight", 4.5}}}}}), "loras[0].weight");
  json six = json::array();
  for (const char* n : {"ink", "grain", "l3", "l4", "l5", "l6"}) six.push_back({{"name", n}});
  expect_400(with({{"loras", six}}), "loras");
  expect_400(with({{"prompt", "a cat <lora:old:1>"}}), "prompt");
  expect_400({{"model", "v15"}, {"prompt", "x"}, {"original_size", {512, 512}}}, "original_size");
  expect_400({{"model", "null"}, {"prompt", "x"}, {"crop_top_left", {0, 0}}}, "crop_top_left");
  expect_400(with({{"target_size", {4, 4}}}), "target_size");
  expect_400({{"model", "null"}, {"prompt", "x"}, {"loras", {{{"name", "ink"}}}}}, "loras");
  Reply gone = post({{"model", "gone"}, {"prompt", "x"}});
  EXPECT_EQ(gone.status, 400) << gone.body;
  EXPECT_EQ(gone.error_field(), "model");
  EXPECT_NE(gone.body.find("truncated: 12 of 6938 MB"), std::string::npos) << gone.body;
  EXPECT_TRUE(seen_->requests.empty());
}

TEST_F(LoraJobsTest, AJobCarriesItsLorasSizesHashesAndWarningsEverywhere) {
  Reply r = post({{"model", "xl"},
                  {"prompt", "a cat, <lora:grain:0.25>"},
                  {"width", 832},
                  {"height", 1216},
                  {"steps", 2},
                  {"seed", 7},
                  {"loras", {{{"name", "ink"}, {"weight", 0.8}}}},
                  {"original_size", {4096, 4096}}});
  ASSERT_EQ(r.status, 202) << r.body;
  // The answer shows everything resolved: the merged LoRAs with hashes, the defaults.
  const json loras = {{{"name", "ink"}, {"weight", 0.8}, {"hash", kInkHash}},
                      {{"name", "grain"}, {"weight", 0.25}, {"hash", kGrainHash}}};
  EXPECT_EQ(r.json["loras"], loras);
  EXPECT_EQ(r.json["model_hash"], kXlHash);
  EXPECT_EQ(r.json["original_size"], (json{4096, 4096}));
  EXPECT_EQ(r.json["target_size"], (json{832, 1216}));
  EXPECT_EQ(r.json["crop_top_left"], (json{0, 0}));
  EXPECT_EQ(r.json["prompt"], "a cat, <lora:grain:0.25>");
  EXPECT_EQ(r.json["warnings"], json::array());

  json job = wait_terminal(port_, owner_.token, r.json["id"]);
  ASSERT_EQ(job["state"], "done") << job.dump();
  EXPECT_EQ(job["loras"], loras);
  EXPECT_EQ(job["original_size"], (json{4096, 4096}));
  EXPECT_EQ(job["warnings"], (json{"LoRA ink: 3 of 40 keys matched no layer"}));

  // The generator saw the prompt without its tag, both LoRAs and the size conditioning.
  {
    std::lock_guard lock(seen_->mu);
    ASSERT_EQ(seen_->requests.size(), 1u);
    const inference::GenerateRequest& g = seen_->requests.front();
    EXPECT_EQ(g.prompt, "a cat, ");
    EXPECT_EQ(g.loras, (std::vector<inference::LoraRef>{{"ink", 0.8}, {"grain", 0.25}}));
    ASSERT_TRUE(g.size_conditioning);
    EXPECT_EQ(*g.size_conditioning, (inference::SizeConditioning{4096, 4096, 832, 1216, 0, 0}));
  }

  // The PNG and the image's detail carry A1111's hashes; the prompt keeps its tag.
  const std::string parameters =
      "a cat, <lora:grain:0.25>\nSteps: 2, Sampler: none, CFG scale: 7, Seed: 7, "
      "Size: 832x1216, Model hash: 31e35c80fc, Model: xl, "
      "Lora hashes: \"ink: 0123456789ab, grain: fedcba987654\"";
  const json& image = job["images"][0];
  Reply file = call(port_, "GET", image["url"], "", bearer(owner_.token));
  ASSERT_EQ(file.status, 200);
  auto text = image::read_png_text(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(file.body.data()), file.body.size()));
  ASSERT_TRUE(text.is_ok());
  ASSERT_EQ(text->size(), 1u);
  EXPECT_EQ((*text)[0].second, parameters);
  Reply detail = call(port_, "GET", "/api/v1/images/" + std::to_string(image["id"].get<int64_t>()),
                      "", bearer(owner_.token));
  ASSERT_EQ(detail.status, 200) << detail.body;
  EXPECT_EQ(detail.json["parameters"], parameters);
  EXPECT_EQ(detail.json["model_hash"], kXlHash);
  EXPECT_EQ(detail.json["loras"], loras);
  EXPECT_EQ(detail.json["target_size"], (json{832, 1216}));

  // The durable events (what rooms and SSE replay) carry the same job.
  Reply events =
      call(port_, "GET", project_path(project_, "/events?after=0"), "", bearer(owner_.token));
  ASSERT_EQ(events.status, 200) << events.body;
  json done = nullptr;
  for (const auto& e : events.json["events"]) {
    if (e["type"] == "job.done") done = e["data"]["job"];
  }
  ASSERT_TRUE(done.is_object()) << events.body;
  EXPECT_EQ(done["loras"], loras);
  EXPECT_EQ(done["warnings"], job["warnings"]);
}

TEST_F(LoraJobsTest, SizeConditioningDefaultsAndOtherModelsGetNone) {
  Reply xl = post({{"model", "xl"}, {"prompt", "a cat"}, {"steps", 1}});
  ASSERT_EQ(xl.status, 202) << xl.body;
  EXPECT_EQ(xl.json["original_size"], (json{1024, 1024}));
  EXPECT_EQ(xl.json["target_size"], (json{1024, 1024}));
  EXPECT_EQ(xl.json["crop_top_left"], (json{0, 0}));
  EXPECT_EQ(xl.json["loras"], json::array());
  Reply null_job = post({{"model", "null"}, {"prompt", "a cat"}, {"steps", 1}});
  ASSERT_EQ(null_job.status, 202) << null_job.body;
  EXPECT_TRUE(null_job.json["original_size"].is_null());
  EXPECT_TRUE(null_job.json["model_hash"].is_null());
  json done = wait_terminal(port_, owner_.token, xl.json["id"]);
  ASSERT_EQ(done["state"], "done");
  std::lock_guard lock(seen_->mu);
  ASSERT_EQ(seen_->requests.size(), 1u);
  EXPECT_EQ(*seen_->requests.front().size_conditioning,
            (inference::SizeConditioning{1024, 1024, 1024, 1024, 0, 0}));
  EXPECT_TRUE(seen_->requests.front().loras.empty());
}

TEST_F(LoraJobsTest, TheIdempotencyKeyCoversLoras) {
  const json body = {{"model", "xl"}, {"prompt", "a cat"}, {"loras", {{{"name", "ink"}}}}};
  const std::string key = "Idempotency-Key: lora-1";
  Reply first = submit(port_, owner_.token, project_, body, key);
  ASSERT_EQ(first.status, 202) << first.body;
  Reply again = submit(port_, owner_.token, project_, body, key);
  EXPECT_EQ(again.status, 202);
  EXPECT_EQ(again.json["id"], first.json["id"]);
  json other = body;
  other["loras"][0]["weight"] = 0.5;
  Reply changed = submit(port_, owner_.token, project_, other, key);
  EXPECT_EQ(changed.status, 422) << changed.body;
}

}  // namespace
}  // namespace atelier::apitest
