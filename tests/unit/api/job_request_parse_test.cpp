// The job submission body: parsed and checked against the model (each failure names its field)
// and hashed canonically for Idempotency-Key retries.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "server/api/job_request.h"
#include "server/auth/account_db.h"
#include "server/inference/null_generator.h"
#include "server/jobs/job_db.h"
#include "server/projects/project_db.h"
#include "tests/support/store_fixture.h"
#include "tests/unit/api/job_request_test_util.h"

namespace atelier::api {
namespace {

using inference::Mode;
using jobrequesttest::make_registry;
using jobrequesttest::make_request;
using nlohmann::json;
using store::Db;

class JobRequestParseTest : public ::testing::Test {
 protected:
  Result<JobRequest> parse(const std::string& body) {
    return parse_job_request(make_request(body), registry_);
  }
  Result<JobRequest> parse(const json& body) { return parse(body.dump()); }

  // The minimal valid body with `extra` merged in (a null in `extra` removes the key).
  static json body_with(const json& extra) {
    json body = {{"model", "null"}, {"prompt", "a cat"}};
    for (auto it = extra.begin(); it != extra.end(); ++it) {
      if (it.value().is_null()) {
        body.erase(it.key());
      } else {
        body[it.key()] = it.value();
      }
    }
    return body;
  }

  JobRequest must_parse(const json& extra) {
    auto r = parse(body_with(extra));
    EXPECT_TRUE(r.is_ok()) << body_with(extra).dump() << ": " << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : JobRequest{};
  }

  // Expects `extra` merged into the minimal body to fail with a 400 naming `field`.
  void expect_refused(const json& extra, std::string_view field) {
    auto r = parse(body_with(extra));
    ASSERT_FALSE(r.is_ok()) << "accepted " << body_with(extra).dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
    EXPECT_EQ(r.status().field(), field)
        << body_with(extra).dump() << ": " << r.status().to_string();
  }

  inference::ModelRegistry registry_ = make_registry();
};

// ---------------------------------------------------------------------------------------------
// parse_job_request

TEST_F(JobRequestParseTest, MinimalBodyLeavesEverythingElseUnset) {
  JobRequest r = must_parse(json::object());
  EXPECT_EQ(r.model, "null");
  EXPECT_EQ(r.prompt, "a cat");
  EXPECT_EQ(r.negative_prompt, std::nullopt);
  EXPECT_EQ(r.width, std::nullopt);
  EXPECT_EQ(r.height, std::nullopt);
  EXPECT_EQ(r.steps, std::nullopt);
  EXPECT_EQ(r.guidance, std::nullopt);
  EXPECT_EQ(r.seed, std::nullopt);
  EXPECT_EQ(r.count, std::nullopt);
  EXPECT_EQ(r.sampler, std::nullopt);
  EXPECT_EQ(r.mode, Mode::kTxt2Img);
  EXPECT_EQ(r.parent_image_id, std::nullopt);
  EXPECT_EQ(r.strength, std::nullopt);
  EXPECT_EQ(r.priority, std::nullopt);
  EXPECT_EQ(r.canonical_hash.size(), 64u);
  EXPECT_EQ(r.canonical_hash.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(JobRequestParseTest, EveryFieldIsRead) {
  JobRequest r = must_parse({{"negative_prompt", "blurry\nugly"},
                             {"width", 128},
                             {"height", 256},
                             {"steps", 12},
                             {"guidance", 4.5},
                             {"seed", 77},
                             {"count", 3},
                             {"sampler", "none"},
                             {"mode", "variation"},
                             {"parent_image_id", 5},
                             {"strength", 0.75},
                             {"priority", -4}});
  EXPECT_EQ(r.negative_prompt, std::optional<std::string>("blurry\nugly"));
  EXPECT_EQ(r.width, std::optional<int64_t>(128));
  EXPECT_EQ(r.height, std::optional<int64_t>(256));
  EXPECT_EQ(r.steps, std::optional<int64_t>(12));
  EXPECT_EQ(r.guidance, std::optional<double>(4.5));
  EXPECT_EQ(r.seed, std::optional<int64_t>(77));
  EXPECT_EQ(r.count, std::optional<int64_t>(3));
  EXPECT_EQ(r.sampler, std::optional<std::string>("none"));
  EXPECT_EQ(r.mode, Mode::kVariation);
  EXPECT_EQ(r.parent_image_id, std::optional<int64_t>(5));
  EXPECT_EQ(r.strength, std::optional<double>(0.75));
  EXPECT_EQ(r.priority, std::optional<int64_t>(-4));
}

TEST_F(JobRequestParseTest, ModelAndPromptAreRequired) {
  expect_refused({{"model", nullptr}}, "model");
  expect_refused({{"prompt", nullptr}}, "prompt");
  expect_refused({{"prompt", ""}}, "prompt");
  expect_refused({{"prompt", 5}}, "prompt");
  expect_refused({{"model", 1}}, "model");
  expect_refused({{"prompt", std::string(2001, 'x')}}, "prompt");
  must_parse({{"prompt", std::string(2000, 'x')}});
  auto empty = parse(std::string("{}"));
  ASSERT_FALSE(empty.is_ok());
  EXPECT_EQ(empty.status().field(), "model");
}

TEST_F(JobRequestParseTest, UnknownModelNamesTheModelField) {
  auto r = parse(body_with({{"model", "sdxl"}}));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), "model");
  // The message lists what this server offers.
  EXPECT_NE(r.status().message().find("null"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("plain"), std::string::npos) << r.status().message();
  expect_refused({{"model", "Null"}}, "model");
}

TEST_F(JobRequestParseTest, SizeMustBeInRangeAndOnTheGrid) {
  const auto& m = inference::null_model_info();
  for (const char* field : {"width", "height"}) {
    SCOPED_TRACE(field);
    must_parse({{field, m.width.min}});
    must_parse({{field, m.width.max}});
    must_parse({{field, 96}});
    expect_refused({{field, 100}}, field);              // not a multiple of 8
    expect_refused({{field, m.width.min - 8}}, field);  // 0
    expect_refused({{field, m.width.max + 8}}, field);  // above the model's max
    expect_refused({{field, 1 << 20}}, field);          // above any model
    expect_refused({{field, -8}}, field);
    expect_refused({{field, 64.5}}, field);
    expect_refused({{field, "64"}}, field);
  }
  auto r = parse(body_with({{"width", 100}}));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("multiple of 8"), std::string::npos) << r.status().message();
}

TEST_F(JobRequestParseTest, StepsCountGuidanceStrengthRanges) {
  must_parse({{"steps", 1}});
  must_parse({{"steps", 100}});
  expect_refused({{"steps", 0}}, "steps");
  expect_refused({{"steps", 101}}, "steps");

  must_parse({{"count", 1}});
  must_parse({{"count", 4}});
  expect_refused({{"count", 0}}, "count");
  expect_refused({{"count", 5}}, "count");

  must_parse({{"guidance", 0}});
  must_parse({{"guidance", 30}});
  must_parse({{"guidance", 7.5}});
  expect_refused({{"guidance", -0.5}}, "guidance");
  expect_refused({{"guidance", 30.01}}, "guidance");
  expect_refused({{"guidance", "7"}}, "guidance");

  must_parse({{"strength", 0}});
  must_parse({{"strength", 1}});
  expect_refused({{"strength", 1.5}}, "strength");
  expect_refused({{"strength", -0.1}}, "strength");
}

TEST_F(JobRequestParseTest, SamplerMustBeOneTheModelOffers) {
  must_parse({{"sampler", "none"}});
  expect_refused({{"sampler", "euler"}}, "sampler");
  expect_refused({{"sampler", ""}}, "sampler");
  auto r = parse(body_with({{"sampler", "euler"}}));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("none"), std::string::npos) << r.status().message();
  // Another model's samplers.
  must_parse({{"model", "plain"}, {"sampler", "ddim"}});
  expect_refused({{"model", "plain"}, {"sampler", "none"}}, "sampler");
}

TEST_F(JobRequestParseTest, SeedRange) {
  EXPECT_EQ(must_parse({{"seed", -1}}).seed, std::optional<int64_t>(-1));  // -1: random
  EXPECT_EQ(must_parse({{"seed", 0}}).seed, std::optional<int64_t>(0));
  constexpr int64_t kMax = (int64_t{1} << 53) - 1;
  EXPECT_EQ(must_parse({{"seed", kMax}}).seed, std::optional<int64_t>(kMax));
  expect_refused({{"seed", -2}}, "seed");
  expect_refused({{"seed", kMax + 1}}, "seed");
  expect_refused({{"seed", 1.5}}, "seed");
}

TEST_F(JobRequestParseTest, PriorityRange) {
  EXPECT_EQ(must_parse({{"priority", -10}}).priority, std::optional<int64_t>(-10));
  EXPECT_EQ(must_parse({{"priority", 10}}).priority, std::optional<int64_t>(10));
  EXPECT_EQ(must_parse({{"priority", 0}}).priority, std::optional<int64_t>(0));
  expect_refused({{"priority", -11}}, "priority");
  expect_refused({{"priority", 11}}, "priority");
}

TEST_F(JobRequestParseTest, LineageModesNeedAParent) {
  for (const char* mode : {"variation", "remix", "upscale"}) {
    SCOPED_TRACE(mode);
    expect_refused({{"mode", mode}}, "parent_image_id");
    JobRequest r = must_parse({{"mode", mode}, {"parent_image_id", 3}});
    EXPECT_EQ(r.mode, *inference::parse_mode(mode));
    expect_refused({{"mode", mode}, {"parent_image_id", 0}}, "parent_image_id");
  }
}

TEST_F(JobRequestParseTest, Txt2ImgTakesNoParent) {
  expect_refused({{"parent_image_id", 3}}, "parent_image_id");
  expect_refused({{"mode", "txt2img"}, {"parent_image_id", 3}}, "parent_image_id");
  EXPECT_EQ(must_parse({{"mode", "txt2img"}}).mode, Mode::kTxt2Img);
}

TEST_F(JobRequestParseTest, UnknownModeAndUnsupportedMode) {
  expect_refused({{"mode", "img2img"}}, "mode");
  expect_refused({{"mode", "Variation"}}, "mode");
  expect_refused({{"model", "plain"}, {"mode", "variation"}, {"parent_image_id", 3}}, "mode");
  must_parse({{"model", "plain"}, {"mode", "txt2img"}});
}

TEST_F(JobRequestParseTest, LineageModesNeedBothSidesOrNeither) {
  expect_refused({{"mode", "variation"}, {"parent_image_id", 3}, {"width", 64}}, "height");
  expect_refused({{"mode", "upscale"}, {"parent_image_id", 3}, {"height", 64}}, "width");
  must_parse({{"mode", "variation"}, {"parent_image_id", 3}, {"width", 64}, {"height", 64}});
  // txt2img takes the missing side from the model's default.
  must_parse({{"width", 128}});
}

TEST_F(JobRequestParseTest, UnknownFieldsAreRefused) {
  expect_refused({{"state", "done"}}, "state");
  expect_refused({{"project_id", 1}}, "project_id");
  expect_refused({{"cfg_scale", 7}}, "cfg_scale");
}

TEST_F(JobRequestParseTest, MalformedBodiesAreRefused) {
  auto not_json = parse(std::string("{\"model\":"));
  ASSERT_FALSE(not_json.is_ok());
  EXPECT_EQ(not_json.status().field(), "body");
  auto not_object = parse(std::string("[1,2]"));
  ASSERT_FALSE(not_object.is_ok());
  EXPECT_EQ(not_object.status().field(), "body");
  auto empty = parse(std::string(""));
  ASSERT_FALSE(empty.is_ok());
  EXPECT_EQ(empty.status().field(), "body");
}

TEST_F(JobRequestParseTest, CanonicalHashIgnoresWhitespaceAndKeyOrder) {
  auto a = parse(std::string(
      R"({"model":"null","prompt":"a cat","width":64,"height":128,"seed":5,"guidance":7.5})"));
  auto b = parse(std::string(R"(
    {
      "guidance" : 7.5,
      "seed":5,   "height": 128,
      "prompt": "a cat",
      "width":64, "model": "null"
    })"));
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(a->canonical_hash, b->canonical_hash);
  // An explicit null is the same as an absent field.
  auto c = parse(std::string(
      R"({"model":"null","prompt":"a cat","width":64,"height":128,"seed":5,"guidance":7.5,)"
      R"("negative_prompt":null,"priority":null})"));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(a->canonical_hash, c->canonical_hash);
}

TEST_F(JobRequestParseTest, CanonicalHashChangesWithEveryValue) {
  const json base = {{"negative_prompt", "blurry"},
                     {"width", 128},
                     {"height", 256},
                     {"steps", 12},
                     {"guidance", 4.5},
                     {"seed", 77},
                     {"count", 3},
                     {"sampler", "none"},
                     {"mode", "variation"},
                     {"parent_image_id", 5},
                     {"strength", 0.75},
                     {"priority", -4}};
  const std::string base_hash = must_parse(base).canonical_hash;
  EXPECT_EQ(must_parse(base).canonical_hash, base_hash);  // stable

  const json changes[] = {
      {{"model", "plain"}, {"sampler", "euler"}, {"mode", nullptr}, {"parent_image_id", nullptr}},
      {{"prompt", "a dog"}},
      {{"prompt", "a cat "}},
      {{"negative_prompt", "sharp"}},
      {{"negative_prompt", nullptr}},
      {{"width", 136}},
      {{"height", 264}},
      {{"steps", 13}},
      {{"guidance", 4.25}},
      {{"seed", 78}},
      {{"seed", nullptr}},
      {{"count", 2}},
      {{"mode", "remix"}},
      {{"parent_image_id", 6}},
      {{"strength", 0.5}},
      {{"strength", nullptr}},
      {{"priority", 4}},
      {{"priority", nullptr}},
  };
  std::set<std::string> seen = {base_hash};
  for (const json& change : changes) {
    json body = base;
    for (auto it = change.begin(); it != change.end(); ++it) body[it.key()] = it.value();
    JobRequest r = must_parse(body);
    EXPECT_NE(r.canonical_hash, base_hash) << change.dump();
    EXPECT_TRUE(seen.insert(r.canonical_hash).second) << "collision for " << change.dump();
  }
}

TEST_F(JobRequestParseTest, CanonicalHashTellsAbsentFromDefault) {
  // A retry must repeat the request as sent: a value equal to the default is still a change.
  std::string absent = must_parse(json::object()).canonical_hash;
  EXPECT_NE(
      must_parse({{"steps", inference::null_model_info().steps.default_value}}).canonical_hash,
      absent);
  EXPECT_NE(must_parse({{"seed", -1}}).canonical_hash, absent);
  EXPECT_NE(must_parse({{"sampler", "none"}}).canonical_hash, absent);
}

}  // namespace
}  // namespace atelier::api
