// A parsed job submission resolved against the model's defaults and the parent image.
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

// ---------------------------------------------------------------------------------------------
// resolve_job_params

constexpr SysTime kNow{std::chrono::milliseconds(1'764'139'999'000)};
constexpr int64_t kRandomSeed = 31337;

class ResolveJobParamsTest : public testing::StoreFixture {
 protected:
  ResolveJobParamsTest() : StoreFixture("atelier-job-request-test") {}

  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto ids = in_write([this](Db& db) -> Result<std::pair<int64_t, int64_t>> {
      auto user = auth::account_db::insert_user(db, "ann", "h", false, from_unix_s(1));
      if (!user.is_ok()) return user.status();
      auto p1 = projects::project_db::insert_project(db, "p1", "", user->id, from_unix_s(1));
      if (!p1.is_ok()) return p1.status();
      auto p2 = projects::project_db::insert_project(db, "p2", "", user->id, from_unix_s(1));
      if (!p2.is_ok()) return p2.status();
      user_ = user->id;
      return std::make_pair(p1->id, p2->id);
    });
    ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
    project_ = ids->first;
    other_project_ = ids->second;
  }

  // A done job of `model` in `project` with one image of width x height; returns the image id.
  int64_t add_image(int width, int height, int64_t project = 0, const std::string& model = "null") {
    auto id = in_write([&](Db& db) -> Result<int64_t> {
      jobs::job_db::NewJob nj;
      nj.project_id = project ? project : project_;
      nj.submitted_by = user_;
      nj.params.model = model;
      nj.params.prompt = "parent";
      nj.params.width = width;
      nj.params.height = height;
      nj.params.steps = 1;
      nj.params.sampler = "none";
      auto job_id = jobs::job_db::insert_job(db, nj, kNow);
      if (!job_id.is_ok()) return job_id.status();
      auto claimed =
          jobs::job_db::claim(db, *job_id, "w", kNow + std::chrono::milliseconds(1000), kNow);
      if (!claimed.is_ok()) return claimed.status();
      if (!*claimed) return Status::internal("not claimed");
      jobs::NewImage img;
      img.sha256 = std::string(64, 'a');
      img.width = width;
      img.height = height;
      img.lineage = "null1;0123456789abcdef";
      auto image_id = jobs::job_db::insert_image(db, **claimed, img, kNow);
      if (!image_id.is_ok()) return image_id.status();
      auto done = jobs::job_db::finish(db, *job_id, 1, jobs::JobState::kDone, "", kNow);
      if (!done.is_ok()) return done.status();
      return *image_id;
    });
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return id.is_ok() ? *id : 0;
  }

  JobRequest request(const json& extra, const std::string& model = "null") {
    json body = {{"model", model}, {"prompt", "a cat"}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    auto r = parse_job_request(make_request(body.dump()), registry_);
    EXPECT_TRUE(r.is_ok()) << body.dump() << ": " << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : JobRequest{};
  }

  Result<jobs::JobParams> resolve(const JobRequest& r, int64_t project = 0) {
    const inference::ModelEntry* entry = registry_.find(r.model);
    EXPECT_NE(entry, nullptr);
    if (!entry) return Status::internal("no model");
    return in_read([&](Db& db) {
      return resolve_job_params(db, r, entry->info, project ? project : project_, kRandomSeed);
    });
  }

  jobs::JobParams must_resolve(const JobRequest& r) {
    auto p = resolve(r);
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    return p.is_ok() ? std::move(p).value() : jobs::JobParams{};
  }

  void expect_resolve_refused(const JobRequest& r, std::string_view field) {
    auto p = resolve(r);
    ASSERT_FALSE(p.is_ok()) << "resolved although it should not";
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << p.status().to_string();
    EXPECT_EQ(p.status().field(), field) << p.status().to_string();
  }

  inference::ModelRegistry registry_ = make_registry();
  int64_t user_ = 0;
  int64_t project_ = 0;
  int64_t other_project_ = 0;
};

TEST_F(ResolveJobParamsTest, DefaultsComeFromTheModel) {
  const auto& m = inference::null_model_info();
  jobs::JobParams p = must_resolve(request(json::object()));
  EXPECT_EQ(p.model, "null");
  EXPECT_EQ(p.prompt, "a cat");
  EXPECT_EQ(p.negative_prompt, "");
  EXPECT_EQ(p.width, m.width.default_value);
  EXPECT_EQ(p.height, m.height.default_value);
  EXPECT_EQ(p.steps, m.steps.default_value);
  EXPECT_DOUBLE_EQ(p.guidance, m.guidance.default_value);
  EXPECT_EQ(p.count, m.count.default_value);
  EXPECT_EQ(p.sampler, m.samplers.front());
  EXPECT_DOUBLE_EQ(p.strength, m.strength.default_value);
  EXPECT_EQ(p.mode, Mode::kTxt2Img);
  EXPECT_EQ(p.parent_image_id, std::nullopt);
  EXPECT_EQ(p.priority, 0);
  EXPECT_EQ(p.seed, kRandomSeed);
}

TEST_F(ResolveJobParamsTest, DefaultsOfAnotherModel) {
  jobs::JobParams p = must_resolve(request(json::object(), "plain"));
  EXPECT_EQ(p.model, "plain");
  EXPECT_EQ(p.sampler, "euler");
}

TEST_F(ResolveJobParamsTest, GivenValuesWin) {
  jobs::JobParams p = must_resolve(request({{"negative_prompt", "blurry"},
                                            {"width", 128},
                                            {"height", 256},
                                            {"steps", 12},
                                            {"guidance", 4.5},
                                            {"seed", 77},
                                            {"count", 3},
                                            {"sampler", "none"},
                                            {"strength", 0.25},
                                            {"priority", -4}}));
  EXPECT_EQ(p.negative_prompt, "blurry");
  EXPECT_EQ(p.width, 128);
  EXPECT_EQ(p.height, 256);
  EXPECT_EQ(p.steps, 12);
  EXPECT_DOUBLE_EQ(p.guidance, 4.5);
  EXPECT_EQ(p.seed, 77);
  EXPECT_EQ(p.count, 3);
  EXPECT_EQ(p.sampler, "none");
  EXPECT_DOUBLE_EQ(p.strength, 0.25);
  EXPECT_EQ(p.priority, -4);
}

TEST_F(ResolveJobParamsTest, RandomSeedWhenAbsentOrMinusOne) {
  EXPECT_EQ(must_resolve(request(json::object())).seed, kRandomSeed);
  EXPECT_EQ(must_resolve(request({{"seed", -1}})).seed, kRandomSeed);
  EXPECT_EQ(must_resolve(request({{"seed", 0}})).seed, 0);  // 0 is a seed like any other
  EXPECT_EQ(must_resolve(request({{"seed", 12345}})).seed, 12345);
}

TEST_F(ResolveJobParamsTest, TxtToImgWithOneSideTakesTheOtherFromTheModel) {
  jobs::JobParams p = must_resolve(request({{"width", 256}}));
  EXPECT_EQ(p.width, 256);
  EXPECT_EQ(p.height, inference::null_model_info().height.default_value);
}

TEST_F(ResolveJobParamsTest, ParentMustBeAnImageInThisProject) {
  int64_t elsewhere = add_image(64, 64, other_project_);
  for (const char* mode : {"variation", "remix", "upscale"}) {
    SCOPED_TRACE(mode);
    expect_resolve_refused(request({{"mode", mode}, {"parent_image_id", elsewhere}}),
                           "parent_image_id");
    expect_resolve_refused(request({{"mode", mode}, {"parent_image_id", 9999}}), "parent_image_id");
  }
  // The same image resolves from its own project.
  auto ok =
      resolve(request({{"mode", "variation"}, {"parent_image_id", elsewhere}}), other_project_);
  EXPECT_TRUE(ok.is_ok()) << ok.status().to_string();
}

TEST_F(ResolveJobParamsTest, ParentMadeByAnotherModelNamesTheModel) {
  int64_t parent = add_image(64, 64, 0, "cppn");
  expect_resolve_refused(request({{"mode", "variation"}, {"parent_image_id", parent}}), "model");
}

TEST_F(ResolveJobParamsTest, VariationWithoutSizeTakesTheParentsSize) {
  int64_t parent = add_image(96, 128);
  for (const char* mode : {"variation", "remix"}) {
    SCOPED_TRACE(mode);
    jobs::JobParams p = must_resolve(request({{"mode", mode}, {"parent_image_id", parent}}));
    EXPECT_EQ(p.width, 96);
    EXPECT_EQ(p.height, 128);
    EXPECT_EQ(p.mode, *inference::parse_mode(mode));
    EXPECT_EQ(p.parent_image_id, std::optional<int64_t>(parent));
  }
  jobs::JobParams sized = must_resolve(
      request({{"mode", "variation"}, {"parent_image_id", parent}, {"width", 64}, {"height", 72}}));
  EXPECT_EQ(sized.width, 64);
  EXPECT_EQ(sized.height, 72);
}

TEST_F(ResolveJobParamsTest, UpscaleWithoutSizeIsTwiceTheParent) {
  int64_t parent = add_image(96, 128);
  jobs::JobParams p = must_resolve(request({{"mode", "upscale"}, {"parent_image_id", parent}}));
  EXPECT_EQ(p.width, 192);
  EXPECT_EQ(p.height, 256);
  EXPECT_EQ(p.mode, Mode::kUpscale);
}

TEST_F(ResolveJobParamsTest, UpscaleWithAnOfferedFactor) {
  int64_t parent = add_image(96, 128);
  jobs::JobParams p = must_resolve(
      request({{"mode", "upscale"}, {"parent_image_id", parent}, {"width", 384}, {"height", 512}}));
  EXPECT_EQ(p.width, 384);
  EXPECT_EQ(p.height, 512);
}

TEST_F(ResolveJobParamsTest, UpscaleWithAnotherFactorNamesWidth) {
  int64_t parent = add_image(96, 128);
  // 3x: on the grid and within the model's range, but not an offered factor.
  expect_resolve_refused(
      request({{"mode", "upscale"}, {"parent_image_id", parent}, {"width", 288}, {"height", 384}}),
      "width");
  // Mixed factors (2x wide, 4x high).
  expect_resolve_refused(
      request({{"mode", "upscale"}, {"parent_image_id", parent}, {"width", 192}, {"height", 512}}),
      "width");
  // The parent's own size.
  expect_resolve_refused(
      request({{"mode", "upscale"}, {"parent_image_id", parent}, {"width", 96}, {"height", 128}}),
      "width");
}

TEST_F(ResolveJobParamsTest, UpscaleBeyondTheModelsMaximumNamesWidth) {
  int64_t parent = add_image(1536, 1024);  // 2x = 3072 wide, above 2048
  expect_resolve_refused(request({{"mode", "upscale"}, {"parent_image_id", parent}}), "width");
}

TEST_F(ResolveJobParamsTest, ParentSizeOffTheGridIsFitted) {
  // A parent's size the model does not take (an upload's, an outpaint's) is brought onto its
  // grid (edit_request_test has the fitting's cases).
  int64_t parent = add_image(100, 64);
  jobs::JobParams p = must_resolve(request({{"mode", "variation"}, {"parent_image_id", parent}}));
  EXPECT_EQ(p.width, 104);
  EXPECT_EQ(p.height, 64);
}

TEST_F(ResolveJobParamsTest, UpscaleWithAModelThatCannotUpscaleNamesMode) {
  // A model that lists the mode but offers no factor.
  inference::ModelInfo m = inference::null_model_info();
  m.upscale_factors.clear();
  int64_t parent = add_image(64, 64);
  JobRequest r = request({{"mode", "upscale"}, {"parent_image_id", parent}});
  auto p = in_read([&](Db& db) { return resolve_job_params(db, r, m, project_, kRandomSeed); });
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().field(), "mode") << p.status().to_string();
}

}  // namespace
}  // namespace atelier::api
