// Inpaint and outpaint submissions (edit_request.h through parse_job_request and
// resolve_job_params), uploads as parents, and the sizes fitted into a model's ranges.
#include "server/api/edit_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "common/image.h"
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

constexpr SysTime kNow{std::chrono::milliseconds(1'764'139'999'000)};
constexpr int64_t kRandomSeed = 4242;

// make_registry() plus "edit" (the null model listing inpaint and outpaint too), "nine" (a
// 9-channel inpainting model listing every mode, as if by mistake) and "sd" (sd-like
// ranges: 64..1024 on a grid of 8, native 512, variation/remix/upscale x2).
inference::ModelRegistry make_edit_registry() {
  inference::ModelRegistry registry = make_registry();
  inference::ModelEntry edit = inference::null_model_entry();
  edit.info.id = "edit";
  edit.info.modes = {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix,
                     Mode::kUpscale, Mode::kInpaint,   Mode::kOutpaint};
  edit.info.strength = {0, 1, 0.6};
  EXPECT_TRUE(registry.add(std::move(edit)).is_ok());
  inference::ModelEntry nine = inference::null_model_entry();
  nine.info.id = "nine";
  nine.info.inpainting_model = true;
  EXPECT_TRUE(registry.add(std::move(nine)).is_ok());
  inference::ModelEntry sd = inference::null_model_entry();
  sd.info.id = "sd";
  sd.info.width = {64, 1024, 512, 8};
  sd.info.height = {64, 1024, 512, 8};
  sd.info.upscale_factors = {2};
  EXPECT_TRUE(registry.add(std::move(sd)).is_ok());
  return registry;
}

// ---------------------------------------------------------------------------------------------
// Parsing: the fields, their modes, and the canonical hash.

class EditParseTest : public ::testing::Test {
 protected:
  static json body_with(const json& extra) {
    json body = {{"model", "edit"}, {"prompt", "a cat"}};
    for (auto it = extra.begin(); it != extra.end(); ++it) {
      if (it.value().is_null()) {
        body.erase(it.key());
      } else {
        body[it.key()] = it.value();
      }
    }
    return body;
  }
  Result<JobRequest> parse(const json& extra) {
    return parse_job_request(make_request(body_with(extra).dump()), registry_);
  }
  JobRequest must_parse(const json& extra) {
    auto r = parse(extra);
    EXPECT_TRUE(r.is_ok()) << body_with(extra).dump() << ": " << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : JobRequest{};
  }
  void expect_refused(const json& extra, std::string_view field) {
    auto r = parse(extra);
    ASSERT_FALSE(r.is_ok()) << "accepted " << body_with(extra).dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
    EXPECT_EQ(r.status().field(), field)
        << body_with(extra).dump() << ": " << r.status().to_string();
  }

  inference::ModelRegistry registry_ = make_edit_registry();
};

const json kInpaint = {{"mode", "inpaint"}, {"parent_image_id", 3}, {"mask_image_id", 4}};
const json kOutpaint = {{"mode", "outpaint"}, {"parent_image_id", 3}, {"extend", {{"left", 16}}}};

json with(json base, const json& extra) {
  for (auto it = extra.begin(); it != extra.end(); ++it) base[it.key()] = it.value();
  return base;
}

TEST_F(EditParseTest, InpaintFieldsAreRead) {
  JobRequest r = must_parse(with(kInpaint, {{"mask_blur", 9}, {"inpaint_area", "masked"}}));
  EXPECT_EQ(r.mode, Mode::kInpaint);
  EXPECT_EQ(r.parent_image_id, std::optional<int64_t>(3));
  EXPECT_EQ(r.edit.mask_image_id, std::optional<int64_t>(4));
  EXPECT_EQ(r.edit.mask_blur, std::optional<int64_t>(9));
  EXPECT_EQ(r.edit.inpaint_area, std::optional(inference::InpaintArea::kMasked));
  EXPECT_EQ(r.edit.extend, std::nullopt);
  JobRequest plain = must_parse(kInpaint);
  EXPECT_EQ(plain.edit.mask_blur, std::nullopt);
  EXPECT_EQ(plain.edit.inpaint_area, std::nullopt);
}

TEST_F(EditParseTest, OutpaintFieldsAreRead) {
  JobRequest r = must_parse(with(
      kOutpaint,
      {{"extend", {{"left", 1}, {"right", 2}, {"top", 3}, {"bottom", 2048}}}, {"mask_blur", 0}}));
  EXPECT_EQ(r.mode, Mode::kOutpaint);
  ASSERT_TRUE(r.edit.extend);
  EXPECT_EQ(*r.edit.extend, (inference::Extend{1, 2, 3, 2048}));
  EXPECT_EQ(r.edit.mask_blur, std::optional<int64_t>(0));
  // Sides left out are 0.
  EXPECT_EQ(*must_parse(with(kOutpaint, {{"extend", {{"top", 8}}}})).edit.extend,
            (inference::Extend{0, 0, 8, 0}));
}

TEST_F(EditParseTest, InpaintNeedsParentAndMask) {
  expect_refused(with(kInpaint, {{"mask_image_id", nullptr}}), "mask_image_id");
  expect_refused(with(kInpaint, {{"parent_image_id", nullptr}}), "parent_image_id");
  expect_refused(with(kInpaint, {{"mask_image_id", 0}}), "mask_image_id");
  expect_refused(with(kInpaint, {{"mask_image_id", "4"}}), "mask_image_id");
}

TEST_F(EditParseTest, OutpaintNeedsParentAndAnExtension) {
  expect_refused(with(kOutpaint, {{"extend", nullptr}}), "extend");
  expect_refused(with(kOutpaint, {{"parent_image_id", nullptr}}), "parent_image_id");
  expect_refused(with(kOutpaint, {{"extend", json::object()}}), "extend");
  expect_refused(with(kOutpaint, {{"extend", {{"left", 0}, {"right", 0}}}}), "extend");
}

TEST_F(EditParseTest, ExtendOutOfRangeOrMalformedNamesExtend) {
  for (const json& extend :
       {json{{"left", 2049}}, json{{"right", -1}}, json{{"top", 1.5}}, json{{"bottom", "8"}},
        json{{"middle", 8}}, json(8), json::array({8, 8, 8, 8})}) {
    SCOPED_TRACE(extend.dump());
    expect_refused(with(kOutpaint, {{"extend", extend}}), "extend");
  }
  // The message says which member.
  auto r = parse(with(kOutpaint, {{"extend", {{"left", 5000}}}}));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("extend.left"), std::string::npos) << r.status().message();
}

TEST_F(EditParseTest, MaskBlurAndAreaBounds) {
  expect_refused(with(kInpaint, {{"mask_blur", -1}}), "mask_blur");
  expect_refused(with(kInpaint, {{"mask_blur", 65}}), "mask_blur");
  expect_refused(with(kInpaint, {{"mask_blur", 2.5}}), "mask_blur");
  must_parse(with(kInpaint, {{"mask_blur", 64}}));
  expect_refused(with(kInpaint, {{"inpaint_area", "only_masked"}}), "inpaint_area");
  must_parse(with(kInpaint, {{"inpaint_area", "whole"}}));
}

TEST_F(EditParseTest, SizeIsRefusedInEditModes) {
  for (const json& base : {kInpaint, kOutpaint}) {
    SCOPED_TRACE(base.dump());
    expect_refused(with(base, {{"width", 64}}), "width");
    expect_refused(with(base, {{"height", 64}}), "height");
    expect_refused(with(base, {{"width", 64}, {"height", 64}}), "width");
    // Not a model-range message: the size follows the parent.
    auto r = parse(with(base, {{"width", 100}}));
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("follows the parent"), std::string::npos)
        << r.status().message();
  }
}

TEST_F(EditParseTest, EditFieldsAreRefusedInOtherModes) {
  for (const char* mode : {"txt2img", "variation", "remix", "upscale"}) {
    SCOPED_TRACE(mode);
    json base = {{"mode", mode}};
    if (std::string_view(mode) != "txt2img") base["parent_image_id"] = 3;
    must_parse(base);
    expect_refused(with(base, {{"mask_image_id", 4}}), "mask_image_id");
    expect_refused(with(base, {{"mask_blur", 4}}), "mask_blur");
    expect_refused(with(base, {{"inpaint_area", "whole"}}), "inpaint_area");
    expect_refused(with(base, {{"extend", {{"left", 8}}}}), "extend");
  }
  // And each mode's own fields in the other edit mode.
  expect_refused(with(kInpaint, {{"extend", {{"left", 8}}}}), "extend");
  expect_refused(with(kOutpaint, {{"mask_image_id", 4}}), "mask_image_id");
  expect_refused(with(kOutpaint, {{"inpaint_area", "masked"}}), "inpaint_area");
  must_parse(with(kOutpaint, {{"mask_blur", 12}}));
}

TEST_F(EditParseTest, TheModelMustListTheMode) {
  expect_refused(with(kInpaint, {{"model", "plain"}}), "mode");
  expect_refused(with(kOutpaint, {{"model", "plain"}}), "mode");
  must_parse(with(kInpaint, {{"model", "nine"}}));
  must_parse(with(kOutpaint, {{"model", "nine"}}));
}

TEST_F(EditParseTest, AnInpaintingModelTakesNoImg2ImgMode) {
  must_parse({{"model", "nine"}});  // txt2img: the generator inpaints a blank canvas
  for (const char* mode : {"variation", "remix", "upscale"}) {
    SCOPED_TRACE(mode);
    expect_refused({{"model", "nine"}, {"mode", mode}, {"parent_image_id", 3}}, "mode");
  }
}

TEST_F(EditParseTest, CanonicalHashCoversTheEditFields) {
  const json base = with(kInpaint, {{"mask_blur", 4}, {"inpaint_area", "whole"}});
  const std::string base_hash = must_parse(base).canonical_hash;
  EXPECT_EQ(must_parse(base).canonical_hash, base_hash);
  std::set<std::string> seen = {base_hash};
  for (const json& change :
       {json{{"mask_image_id", 5}}, json{{"mask_blur", 5}}, json{{"mask_blur", nullptr}},
        json{{"inpaint_area", "masked"}}, json{{"inpaint_area", nullptr}}}) {
    json body = base;
    for (auto it = change.begin(); it != change.end(); ++it) body[it.key()] = it.value();
    const std::string h = must_parse(body).canonical_hash;
    EXPECT_TRUE(seen.insert(h).second) << "same hash for " << change.dump();
  }
  const json out = with(kOutpaint, {{"extend", {{"left", 16}, {"top", 8}}}});
  const std::string out_hash = must_parse(out).canonical_hash;
  EXPECT_TRUE(seen.insert(out_hash).second);
  for (const json& extend :
       {json{{"left", 16}, {"top", 9}}, json{{"left", 16}, {"bottom", 8}},
        json{{"right", 16}, {"top", 8}}, json{{"left", 16}, {"top", 8}, {"right", 1}}}) {
    EXPECT_TRUE(seen.insert(must_parse(with(out, {{"extend", extend}})).canonical_hash).second)
        << extend.dump();
  }
}

// ---------------------------------------------------------------------------------------------
// Resolving against the database: parents, masks, sizes.

class EditResolveTest : public testing::StoreFixture {
 protected:
  EditResolveTest() : StoreFixture("atelier-edit-request-test") {}

  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto ok = in_write([this](Db& db) -> Status {
      ATELIER_ASSIGN_OR_RETURN(
          auto user, auth::account_db::insert_user(db, "ann", "h", false, from_unix_s(1)));
      ATELIER_ASSIGN_OR_RETURN(
          auto p1, projects::project_db::insert_project(db, "p1", "", user.id, from_unix_s(1)));
      ATELIER_ASSIGN_OR_RETURN(
          auto p2, projects::project_db::insert_project(db, "p2", "", user.id, from_unix_s(1)));
      user_ = user.id;
      project_ = p1.id;
      other_project_ = p2.id;
      return Status::ok();
    });
    ASSERT_TRUE(ok.is_ok()) << ok.to_string();
  }

  // A done job of `model` with one image of width x height; returns the image id.
  int64_t add_generated(int width, int height, const std::string& model = "null",
                        int64_t project = 0) {
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
      ATELIER_ASSIGN_OR_RETURN(int64_t job_id, jobs::job_db::insert_job(db, nj, kNow));
      ATELIER_ASSIGN_OR_RETURN(
          auto claimed,
          jobs::job_db::claim(db, job_id, "w", kNow + std::chrono::milliseconds(1000), kNow));
      if (!claimed) return Status::internal("not claimed");
      jobs::NewImage img;
      img.sha256 = std::string(64, 'a');
      img.width = width;
      img.height = height;
      img.lineage = "null1;0123456789abcdef";
      ATELIER_ASSIGN_OR_RETURN(int64_t image_id,
                               jobs::job_db::insert_image(db, *claimed, img, kNow));
      ATELIER_RETURN_IF_ERROR(
          jobs::job_db::finish(db, job_id, 1, jobs::JobState::kDone, "", kNow).status());
      return image_id;
    });
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return id.is_ok() ? *id : 0;
  }

  int64_t add_upload(int width, int height, int64_t project = 0) {
    auto row = in_write([&](Db& db) {
      jobs::job_db::NewUpload u;
      u.project_id = project ? project : project_;
      u.uploaded_by = user_;
      u.sha256 = std::string(64, 'b');
      u.bytes = 100;
      u.width = width;
      u.height = height;
      u.original_name = "photo.png";
      return jobs::job_db::insert_upload(db, u, kNow);
    });
    EXPECT_TRUE(row.is_ok()) << row.status().to_string();
    return row.is_ok() ? row->id : 0;
  }

  JobRequest request(const json& extra, const std::string& model = "edit") {
    json body = {{"model", model}, {"prompt", "a cat"}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    auto r = parse_job_request(make_request(body.dump()), registry_);
    EXPECT_TRUE(r.is_ok()) << body.dump() << ": " << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : JobRequest{};
  }

  Result<jobs::JobParams> resolve(const JobRequest& r, int64_t project = 0) {
    const inference::ModelEntry* entry = registry_.find(r.model);
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

  void expect_refused(const JobRequest& r, std::string_view field) {
    auto p = resolve(r);
    ASSERT_FALSE(p.is_ok()) << "resolved although it should not";
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << p.status().to_string();
    EXPECT_EQ(p.status().field(), field) << p.status().to_string();
  }

  inference::ModelRegistry registry_ = make_edit_registry();
  int64_t user_ = 0;
  int64_t project_ = 0;
  int64_t other_project_ = 0;
};

TEST_F(EditResolveTest, InpaintTakesTheParentsSizeAndTheDefaults) {
  // Sizes no model range would take: the output follows the parent.
  const int64_t parent = add_upload(3001, 17);
  const int64_t mask = add_upload(3001, 17);
  jobs::JobParams p = must_resolve(
      request({{"mode", "inpaint"}, {"parent_image_id", parent}, {"mask_image_id", mask}}));
  EXPECT_EQ(p.mode, Mode::kInpaint);
  EXPECT_EQ(p.width, 3001);
  EXPECT_EQ(p.height, 17);
  EXPECT_EQ(p.parent_image_id, std::optional<int64_t>(parent));
  EXPECT_EQ(p.mask_image_id, std::optional<int64_t>(mask));
  ASSERT_TRUE(p.edit);
  EXPECT_EQ(p.edit->mask_blur, 4);
  EXPECT_EQ(p.edit->area, inference::InpaintArea::kWhole);
  EXPECT_EQ(p.edit->extend, inference::Extend{});
  EXPECT_DOUBLE_EQ(p.strength, 0.6) << "the model's default strength";

  jobs::JobParams q = must_resolve(request({{"mode", "inpaint"},
                                            {"parent_image_id", parent},
                                            {"mask_image_id", mask},
                                            {"mask_blur", 0},
                                            {"inpaint_area", "masked"},
                                            {"strength", 0.3}}));
  EXPECT_EQ(q.edit->mask_blur, 0);
  EXPECT_EQ(q.edit->area, inference::InpaintArea::kMasked);
  EXPECT_DOUBLE_EQ(q.strength, 0.3);
}

TEST_F(EditResolveTest, OutpaintAddsTheExtensionAndRegeneratesFully) {
  const int64_t parent = add_generated(64, 48);
  jobs::JobParams p =
      must_resolve(request({{"mode", "outpaint"},
                            {"parent_image_id", parent},
                            {"extend", {{"left", 10}, {"right", 20}, {"top", 3}, {"bottom", 0}}}}));
  EXPECT_EQ(p.mode, Mode::kOutpaint);
  EXPECT_EQ(p.width, 94);
  EXPECT_EQ(p.height, 51);
  ASSERT_TRUE(p.edit);
  EXPECT_EQ(p.edit->extend, (inference::Extend{10, 20, 3, 0}));
  EXPECT_EQ(p.edit->mask_blur, 4);
  EXPECT_EQ(p.mask_image_id, std::nullopt);
  EXPECT_DOUBLE_EQ(p.strength, 1.0) << "the model's strength maximum";
  EXPECT_DOUBLE_EQ(must_resolve(request({{"mode", "outpaint"},
                                         {"parent_image_id", parent},
                                         {"extend", {{"left", 8}}},
                                         {"strength", 0.25}}))
                       .strength,
                   0.25);
}

TEST_F(EditResolveTest, OutpaintBeyondTheLargestSideNamesExtend) {
  const int64_t parent = add_upload(7000, 100);
  expect_refused(
      request({{"mode", "outpaint"}, {"parent_image_id", parent}, {"extend", {{"right", 1193}}}}),
      "extend");
  jobs::JobParams p = must_resolve(
      request({{"mode", "outpaint"}, {"parent_image_id", parent}, {"extend", {{"right", 1192}}}}));
  EXPECT_EQ(p.width, 8192);
}

TEST_F(EditResolveTest, TheMaskMustBeAnImageOfThisProjectWithTheParentsSize) {
  const int64_t parent = add_generated(64, 64);
  const int64_t elsewhere = add_upload(64, 64, other_project_);
  const int64_t smaller = add_upload(64, 56);
  const int64_t same_size = add_upload(64, 64);
  auto inpaint = [&](int64_t mask) {
    return request({{"mode", "inpaint"}, {"parent_image_id", parent}, {"mask_image_id", mask}});
  };
  expect_refused(inpaint(elsewhere), "mask_image_id");
  expect_refused(inpaint(9999), "mask_image_id");
  expect_refused(inpaint(smaller), "mask_image_id");
  auto p = resolve(inpaint(smaller));
  EXPECT_NE(p.status().message().find("64x64"), std::string::npos) << p.status().message();
  must_resolve(inpaint(same_size));
}

TEST_F(EditResolveTest, EditParentsMayComeFromAnyModel) {
  // Variation keeps the same-model rule; edits work on pixels.
  const int64_t by_cppn = add_generated(64, 64, "cppn");
  const int64_t mask = add_upload(64, 64);
  expect_refused(request({{"mode", "variation"}, {"parent_image_id", by_cppn}}), "model");
  must_resolve(
      request({{"mode", "inpaint"}, {"parent_image_id", by_cppn}, {"mask_image_id", mask}}));
  must_resolve(
      request({{"mode", "outpaint"}, {"parent_image_id", by_cppn}, {"extend", {{"top", 8}}}}));
  // The parent must still be in the project.
  const int64_t elsewhere = add_generated(64, 64, "null", other_project_);
  expect_refused(
      request({{"mode", "outpaint"}, {"parent_image_id", elsewhere}, {"extend", {{"top", 8}}}}),
      "parent_image_id");
}

TEST_F(EditResolveTest, UploadsAreParentsForEveryModelThatListsTheMode) {
  const int64_t upload = add_upload(64, 64);
  for (const char* model : {"null", "edit", "sd"}) {
    for (const char* mode : {"variation", "remix"}) {
      SCOPED_TRACE(std::string(model) + " " + mode);
      jobs::JobParams p =
          must_resolve(request({{"mode", mode}, {"parent_image_id", upload}}, model));
      EXPECT_EQ(p.width, 64);
      EXPECT_EQ(p.height, 64);
    }
  }
  EXPECT_EQ(must_resolve(request({{"mode", "upscale"}, {"parent_image_id", upload}}, "sd")).width,
            128);
}

TEST_F(EditResolveTest, AnUploadThatDoesNotFitIsFittedIntoTheModelsRanges) {
  // 3000x2000 into sd's 64..1024: the aspect kept (1024 x 682.7 -> 680 on the grid of 8).
  const int64_t big = add_upload(3000, 2000);
  for (const char* mode : {"variation", "remix"}) {
    SCOPED_TRACE(mode);
    jobs::JobParams p = must_resolve(request({{"mode", mode}, {"parent_image_id", big}}, "sd"));
    EXPECT_EQ(p.width, 1024);
    EXPECT_EQ(p.height, 680);
  }
  // Off the grid only: rounded to the nearest multiple.
  const int64_t odd = add_upload(301, 203);
  jobs::JobParams p =
      must_resolve(request({{"mode", "variation"}, {"parent_image_id", odd}}, "sd"));
  EXPECT_EQ(p.width, 304);
  EXPECT_EQ(p.height, 200);
  // A size given explicitly wins.
  jobs::JobParams sized = must_resolve(request(
      {{"mode", "remix"}, {"parent_image_id", big}, {"width", 512}, {"height", 512}}, "sd"));
  EXPECT_EQ(sized.width, 512);
  // Upscale: the fitted size times the factor, which must fit.
  const int64_t small = add_upload(301, 203);
  jobs::JobParams up =
      must_resolve(request({{"mode", "upscale"}, {"parent_image_id", small}}, "sd"));
  EXPECT_EQ(up.width, 608);
  EXPECT_EQ(up.height, 400);
  expect_refused(request({{"mode", "upscale"}, {"parent_image_id", big}}, "sd"), "width");
}

TEST_F(EditResolveTest, AGeneratedParentOffTheGridIsFittedToo) {
  // An outpaint's result (any size) as the parent of a variation by the same model.
  const int64_t parent = add_generated(94, 51);
  jobs::JobParams p =
      must_resolve(request({{"mode", "variation"}, {"parent_image_id", parent}}, "null"));
  EXPECT_EQ(p.width, 96);
  EXPECT_EQ(p.height, 48);
}

// ---------------------------------------------------------------------------------------------
// fit_size and the mask's pixels

using Size = std::pair<int64_t, int64_t>;

TEST(FitSizeTest, ASizeThatFitsIsKept) {
  const inference::IntParam r{64, 1024, 512, 8};
  EXPECT_EQ(fit_size(512, 768, r, r), Size(512, 768));
  EXPECT_EQ(fit_size(64, 1024, r, r), Size(64, 1024));
}

TEST(FitSizeTest, ShrinksGrowsAndRoundsKeepingTheAspect) {
  const inference::IntParam r{64, 1024, 512, 8};
  EXPECT_EQ(fit_size(4096, 4096, r, r), Size(1024, 1024));
  EXPECT_EQ(fit_size(2000, 4000, r, r), Size(512, 1024));
  EXPECT_EQ(fit_size(20, 40, r, r), Size(64, 128));
  EXPECT_EQ(fit_size(513, 513, r, r), Size(512, 512));
  // An aspect too extreme for both ranges: the maxima win, the short side is clamped up.
  EXPECT_EQ(fit_size(8000, 10, r, r), Size(1024, 64));
  // Grids that do not start at the minimum: the lowest multiple inside the range.
  const inference::IntParam odd{30, 100, 60, 16};
  auto [w, h] = fit_size(10, 10, odd, odd);
  EXPECT_EQ(w, 32);
  EXPECT_EQ(h, 32);
  EXPECT_TRUE(size_fits(w, h, odd, odd));
}

std::vector<uint8_t> png_of(const image::Image& img) {
  auto png = image::encode_png(img);
  EXPECT_TRUE(png.is_ok()) << png.status().to_string();
  return png.is_ok() ? *png : std::vector<uint8_t>{};
}

image::Image filled(int w, int h, int channels, uint8_t value) {
  image::Image img{w, h, channels,
                   std::vector<uint8_t>(static_cast<size_t>(w * h * channels), value)};
  return img;
}

TEST(MaskPngTest, BlackIsEmptyAndWhiteIsNot) {
  EXPECT_TRUE(*mask_png_is_empty(png_of(filled(16, 16, 3, 0))));
  EXPECT_TRUE(*mask_png_is_empty(png_of(filled(16, 16, 3, 127))));
  image::Image dot = filled(16, 16, 3, 0);
  for (int c = 0; c < 3; ++c) dot.pixels[(5 * 16 + 7) * 3 + c] = 255;
  EXPECT_FALSE(*mask_png_is_empty(png_of(dot)));
}

TEST(MaskPngTest, TransparencyIsWhatToRegenerate) {
  // Opaque black everywhere but one transparent pixel: not empty (mask = 255 - alpha there).
  image::Image rgba = filled(8, 8, 4, 0);
  for (size_t i = 3; i < rgba.pixels.size(); i += 4) rgba.pixels[i] = 255;
  rgba.pixels[(2 * 8 + 2) * 4 + 3] = 0;
  EXPECT_FALSE(*mask_png_is_empty(png_of(rgba)));
}

TEST(MaskPngTest, BytesThatAreNoPngAreAnError) {
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g'};
  EXPECT_FALSE(mask_png_is_empty(junk).is_ok());
}

}  // namespace
}  // namespace atelier::api
