// Issue 17's job fields: `loras` (and the prompt's <lora:...> tags), SDXL size conditioning and
// unavailable models, parsed, checked against the registry (each error naming its field),
// resolved with their defaults and hashes, and part of the Idempotency-Key hash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "server/api/job_request.h"
#include "server/auth/account_db.h"
#include "server/projects/project_db.h"
#include "tests/support/store_fixture.h"
#include "tests/unit/api/job_request_test_util.h"

namespace atelier::api {
namespace {

using inference::LoraRef;
using jobrequesttest::kXlHash;
using jobrequesttest::lora_hash;
using jobrequesttest::make_lora_registry;
using jobrequesttest::make_request;
using nlohmann::json;
using Loras = std::vector<LoraRef>;

class JobRequestLoraTest : public testing::StoreFixture {
 protected:
  JobRequestLoraTest() : StoreFixture("atelier-job-request-lora-test") {}

  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto project = in_write([](store::Db& db) -> Result<int64_t> {
      auto user = auth::account_db::insert_user(db, "ann", "h", false, from_unix_s(1));
      if (!user.is_ok()) return user.status();
      auto p = projects::project_db::insert_project(db, "p", "", user->id, from_unix_s(1));
      if (!p.is_ok()) return p.status();
      return p->id;
    });
    ASSERT_TRUE(project.is_ok()) << project.status().to_string();
    project_ = *project;
  }

  static json body_with(const json& extra, const std::string& model = "xl") {
    json body = {{"model", model}, {"prompt", "a cat"}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    return body;
  }

  Result<JobRequest> parse(const json& body) {
    return parse_job_request(make_request(body.dump()), registry_);
  }

  JobRequest must_parse(const json& extra, const std::string& model = "xl") {
    auto r = parse(body_with(extra, model));
    EXPECT_TRUE(r.is_ok()) << body_with(extra, model).dump() << ": " << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : JobRequest{};
  }

  // Refused with 400 naming `field`; returns the message.
  std::string refused(const json& extra, std::string_view field, const std::string& model = "xl") {
    auto r = parse(body_with(extra, model));
    EXPECT_FALSE(r.is_ok()) << "accepted " << body_with(extra, model).dump();
    if (r.is_ok()) return {};
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
    EXPECT_EQ(r.status().field(), field)
        << body_with(extra, model).dump() << ": " << r.status().to_string();
    return r.status().message();
  }

  jobs::JobParams resolve(const JobRequest& r) {
    const inference::ModelEntry* entry = registry_.find(r.model);
    EXPECT_NE(entry, nullptr);
    auto p = in_read(
        [&](store::Db& db) { return resolve_job_params(db, r, entry->info, project_, 1234); });
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    return p.is_ok() ? std::move(p).value() : jobs::JobParams{};
  }

  inference::ModelRegistry registry_ = make_lora_registry();
  int64_t project_ = 0;
};

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// loras

TEST_F(JobRequestLoraTest, LorasAreReadWithTheirWeights) {
  JobRequest r = must_parse({{"loras", {{{"name", "ink"}, {"weight", 0.7}}, {{"name", "grain"}}}}});
  ASSERT_TRUE(r.loras);
  EXPECT_EQ(*r.loras, (Loras{{"ink", 0.7}, {"grain", 1.0}}));
  EXPECT_EQ(r.resolved_loras, (Loras{{"ink", 0.7}, {"grain", 1.0}}));
  EXPECT_EQ(r.lora_hashes.at("ink"), lora_hash('b'));
  EXPECT_EQ(r.lora_hashes.at("grain"), lora_hash('c'));
  jobs::JobParams p = resolve(r);
  EXPECT_EQ(p.loras, (Loras{{"ink", 0.7}, {"grain", 1.0}}));
  EXPECT_EQ(p.lora_hashes, r.lora_hashes);
  EXPECT_EQ(p.model_hash, kXlHash);
  EXPECT_EQ(p.prompt, "a cat");
}

TEST_F(JobRequestLoraTest, NoLorasIsAnEmptyList) {
  JobRequest r = must_parse(json::object());
  EXPECT_FALSE(r.loras);
  EXPECT_TRUE(resolve(r).loras.empty());
  EXPECT_TRUE(must_parse({{"loras", json::array()}}).resolved_loras.empty());
  EXPECT_TRUE(must_parse({{"loras", nullptr}}).resolved_loras.empty());
}

TEST_F(JobRequestLoraTest, ALoraOfAnotherFamilyNamesItsField) {
  std::string msg = refused({{"loras", {{{"name", "ink"}}, {{"name", "old"}}}}}, "loras[1].name");
  EXPECT_TRUE(contains(msg, "'old' is for sd1 models")) << msg;
  EXPECT_TRUE(contains(msg, "'xl' is sdxl")) << msg;
  msg = refused({{"loras", {{{"name", "ink"}}}}}, "loras[0].name", "v15");
  EXPECT_TRUE(contains(msg, "is for sdxl models")) << msg;
}

TEST_F(JobRequestLoraTest, AnUnknownLoraIsRefusedWithoutEchoingItsName) {
  std::string msg = refused({{"loras", {{{"name", "hunter2-secret"}}}}}, "loras[0].name");
  EXPECT_FALSE(contains(msg, "hunter2")) << msg;
  EXPECT_TRUE(contains(msg, "ink, grain, l3, l4, l5, l6")) << "lists what fits: " << msg;
}

TEST_F(JobRequestLoraTest, AnUnavailableLoraGivesItsReason) {
  std::string msg = refused({{"loras", {{{"name", "broken"}}}}}, "loras[0].name");
  EXPECT_TRUE(contains(msg, "no lora_up weights")) << msg;
}

TEST_F(JobRequestLoraTest, AtMostFiveLoras) {
  json six = json::array();
  for (const char* n : {"ink", "grain", "l3", "l4", "l5", "l6"}) six.push_back({{"name", n}});
  refused({{"loras", six}}, "loras");
  six.erase(5);
  EXPECT_EQ(must_parse({{"loras", six}}).resolved_loras.size(), 5u);
  // Five in the field and one more in the prompt: the prompt pushed it over.
  std::string msg = refused({{"loras", six}, {"prompt", "a cat <lora:l6:1>"}}, "prompt");
  EXPECT_TRUE(contains(msg, "at most 5")) << msg;
}

TEST_F(JobRequestLoraTest, AModelWithALowerLimitIsHonoured) {
  inference::ModelEntry two = inference::null_model_entry();
  two.info.id = "two";
  two.info.family = "sdxl";
  two.info.max_loras = 2;
  ASSERT_TRUE(registry_.add(std::move(two)).is_ok());
  refused({{"loras", {{{"name", "ink"}}, {{"name", "grain"}}, {{"name", "l3"}}}}}, "loras", "two");
  must_parse({{"loras", {{{"name", "ink"}}, {{"name", "grain"}}}}}, "two");
}

TEST_F(JobRequestLoraTest, WeightBoundsAndShape) {
  must_parse({{"loras", {{{"name", "ink"}, {"weight", -4}}, {{"name", "grain"}, {"weight", 4}}}}});
  refused({{"loras", {{{"name", "ink"}, {"weight", 4.01}}}}}, "loras[0].weight");
  refused({{"loras", {{{"name", "ink"}}, {{"name", "grain"}, {"weight", -5}}}}}, "loras[1].weight");
  refused({{"loras", {{{"name", "ink"}, {"weight", "1"}}}}}, "loras[0].weight");
  refused({{"loras", {{{"weight", 1}}}}}, "loras[0].name");
  refused({{"loras", {{{"name", ""}}}}}, "loras[0].name");
  refused({{"loras", {{{"name", 5}}}}}, "loras[0].name");
  refused({{"loras", {{{"name", "ink"}, {"strength", 1}}}}}, "loras[0].strength");
  refused({{"loras", {"ink"}}}, "loras[0]");
  refused({{"loras", "ink"}}, "loras");
  refused({{"loras", {{"name", "ink"}}}}, "loras");  // an object, not an array of them
}

TEST_F(JobRequestLoraTest, TheSameLoraTwiceInTheFieldIsRefused) {
  refused({{"loras", {{{"name", "ink"}}, {{"name", "ink"}, {"weight", 0.5}}}}}, "loras[1].name");
}

TEST_F(JobRequestLoraTest, ModelsWithoutLorasRefuseThem) {
  std::string msg = refused({{"loras", {{{"name", "ink"}}}}}, "loras", "null");
  EXPECT_TRUE(contains(msg, "takes no LoRAs")) << msg;
  refused({{"prompt", "a cat <lora:ink:1>"}}, "prompt", "null");
  // An empty list asks for nothing.
  must_parse({{"loras", json::array()}}, "null");
}

// ---------------------------------------------------------------------------------------------
// <lora:...> in the prompt

TEST_F(JobRequestLoraTest, PromptTagsAreResolvedAndThePromptKeepsThem) {
  JobRequest r = must_parse({{"prompt", "a cat <lora:ink:0.6>, <lora:grain>"}});
  EXPECT_FALSE(r.loras);
  EXPECT_EQ(r.resolved_loras, (Loras{{"ink", 0.6}, {"grain", 1.0}}));
  jobs::JobParams p = resolve(r);
  EXPECT_EQ(p.prompt, "a cat <lora:ink:0.6>, <lora:grain>") << "stored as written (A1111)";
  EXPECT_EQ(p.loras, (Loras{{"ink", 0.6}, {"grain", 1.0}}));
}

TEST_F(JobRequestLoraTest, TheFieldWinsOverATagOfTheSameName) {
  JobRequest r = must_parse({{"prompt", "<lora:grain:0.2> a cat <lora:ink:2> <lora:grain:3>"},
                             {"loras", {{{"name", "ink"}, {"weight", -0.5}}}}});
  // The field first, then the tags it does not name; the first of two tags wins.
  EXPECT_EQ(r.resolved_loras, (Loras{{"ink", -0.5}, {"grain", 0.2}}));
}

TEST_F(JobRequestLoraTest, BadPromptTagsNameThePrompt) {
  refused({{"prompt", "a <lora:old:1>"}}, "prompt");                      // another family
  refused({{"prompt", "a <lora:nope:1>"}}, "prompt");                     // unknown
  refused({{"prompt", "a <lora:broken>"}}, "prompt");                     // unavailable
  std::string msg = refused({{"prompt", "a <lora:ink:4.5>"}}, "prompt");  // out of bounds
  EXPECT_TRUE(contains(msg, "between -4 and 4")) << msg;
  // A malformed tag is only text.
  EXPECT_TRUE(must_parse({{"prompt", "a <lora:ink:strong>"}}).resolved_loras.empty());
}

TEST_F(JobRequestLoraTest, AnOverriddenBadTagIsNotChecked) {
  // The field names "ink": the tag's out-of-bounds weight never applies.
  JobRequest r = must_parse({{"prompt", "a <lora:ink:9>"}, {"loras", {{{"name", "ink"}}}}});
  EXPECT_EQ(r.resolved_loras, (Loras{{"ink", 1.0}}));
}

// ---------------------------------------------------------------------------------------------
// size conditioning

TEST_F(JobRequestLoraTest, SizeConditioningDefaultsToTheOutputSize) {
  jobs::JobParams p = resolve(must_parse({{"width", 832}, {"height", 1216}}));
  ASSERT_TRUE(p.size_conditioning);
  EXPECT_EQ(*p.size_conditioning, (inference::SizeConditioning{832, 1216, 832, 1216, 0, 0}));
  // The model's native size when no size is given.
  jobs::JobParams native = resolve(must_parse(json::object()));
  EXPECT_EQ(*native.size_conditioning, (inference::SizeConditioning{1024, 1024, 1024, 1024, 0, 0}));
}

TEST_F(JobRequestLoraTest, SizeConditioningGivenValuesWin) {
  JobRequest r = must_parse({{"original_size", {4096, 2048}},
                             {"target_size", {1024, 512}},
                             {"crop_top_left", {16, 32}},
                             {"width", 1024},
                             {"height", 512}});
  EXPECT_EQ(r.original_size, (std::array<int64_t, 2>{4096, 2048}));
  jobs::JobParams p = resolve(r);
  EXPECT_EQ(*p.size_conditioning, (inference::SizeConditioning{4096, 2048, 1024, 512, 16, 32}));
  // Only one given: the others default.
  jobs::JobParams q = resolve(must_parse({{"crop_top_left", {0, 64}}}));
  EXPECT_EQ(*q.size_conditioning, (inference::SizeConditioning{1024, 1024, 1024, 1024, 0, 64}));
}

TEST_F(JobRequestLoraTest, SizeConditioningBounds) {
  must_parse({{"original_size", {8, 8192}}, {"crop_top_left", {0, 8192}}});
  refused({{"original_size", {7, 512}}}, "original_size");
  refused({{"target_size", {512, 8193}}}, "target_size");
  refused({{"crop_top_left", {-1, 0}}}, "crop_top_left");
  refused({{"crop_top_left", {0, 8193}}}, "crop_top_left");
  refused({{"original_size", {512}}}, "original_size");
  refused({{"original_size", {512, 512, 3}}}, "original_size");
  refused({{"original_size", {512.5, 512}}}, "original_size");
  refused({{"original_size", "512x512"}}, "original_size");
  refused({{"original_size", {{"width", 512}, {"height", 512}}}}, "original_size");
}

TEST_F(JobRequestLoraTest, SizeConditioningOnlyWhereTheModelTakesIt) {
  std::string msg = refused({{"original_size", {512, 512}}}, "original_size", "v15");
  EXPECT_TRUE(contains(msg, "'v15' does not take it")) << msg;
  refused({{"target_size", {512, 512}}}, "target_size", "null");
  refused({{"crop_top_left", {0, 0}}}, "crop_top_left", "null");
  // Nothing is made up for such models.
  EXPECT_FALSE(resolve(must_parse(json::object(), "v15")).size_conditioning);
  EXPECT_FALSE(resolve(must_parse(json::object(), "null")).size_conditioning);
}

// ---------------------------------------------------------------------------------------------
// unavailable models, hashes

TEST_F(JobRequestLoraTest, AnUnavailableModelIsRefusedWithItsReason) {
  std::string msg = refused(json::object(), "model", "gone");
  EXPECT_TRUE(contains(msg, "'gone' is unavailable: the file is truncated")) << msg;
}

TEST_F(JobRequestLoraTest, ModelsWithoutAHashStoreNone) {
  EXPECT_EQ(resolve(must_parse(json::object(), "null")).model_hash, "");
}

TEST_F(JobRequestLoraTest, TheIdempotencyHashCoversTheNewFields) {
  const json base = {{"loras", {{{"name", "ink"}, {"weight", 0.5}}}},
                     {"original_size", {2048, 2048}},
                     {"target_size", {1024, 1024}},
                     {"crop_top_left", {0, 0}}};
  const std::string base_hash = must_parse(base).canonical_hash;
  EXPECT_EQ(must_parse(base).canonical_hash, base_hash);
  const json changes[] = {
      {{"loras", {{{"name", "ink"}, {"weight", 0.6}}}}},
      {{"loras", {{{"name", "grain"}, {"weight", 0.5}}}}},
      {{"loras", {{{"name", "ink"}, {"weight", 0.5}}, {{"name", "grain"}}}}},
      {{"loras", json::array()}},
      {{"loras", nullptr}},
      {{"original_size", {2048, 1024}}},
      {{"original_size", nullptr}},
      {{"target_size", {1024, 512}}},
      {{"target_size", nullptr}},
      {{"crop_top_left", {0, 8}}},
      {{"crop_top_left", nullptr}},
  };
  std::set<std::string> seen = {base_hash};
  for (const json& change : changes) {
    json body = base;
    for (auto it = change.begin(); it != change.end(); ++it) body[it.key()] = it.value();
    JobRequest r = must_parse(body);
    EXPECT_TRUE(seen.insert(r.canonical_hash).second) << "same hash for " << change.dump();
  }
  // Requests without the new fields hash as before they existed: a retry across an upgrade
  // still matches. {"model":"xl","prompt":"a cat"} with every old field null.
  EXPECT_EQ(must_parse(json::object()).canonical_hash,
            must_parse({{"loras", nullptr}, {"original_size", nullptr}}).canonical_hash);
}

}  // namespace
}  // namespace atelier::api
