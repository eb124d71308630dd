// The API shapes of jobs and images: every key with its JSON type, null for what is not set.
#include "server/api/job_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace atelier::api {
using namespace atelier::jobs;
namespace {

using nlohmann::json;

TEST(FormatTimeMsTest, Epoch) {
  EXPECT_EQ(format_time_ms(from_unix_ms(0)), "1970-01-01T00:00:00.000Z");
}

TEST(FormatTimeMsTest, KnownInstants) {
  // 1764139999 s = 20418 days + 24799 s; day 20418 is 2025-11-26, 24799 s is 06:53:19.
  EXPECT_EQ(format_time_ms(from_unix_ms(1'764'139'999'123)), "2025-11-26T06:53:19.123Z");
  EXPECT_EQ(format_time_ms(from_unix_ms(1'764'139'999'000)), "2025-11-26T06:53:19.000Z");
  EXPECT_EQ(format_time_ms(from_unix_ms(1'764'139'999'007)),
            "2025-11-26T06:53:19.007Z");  // zero-padded
  EXPECT_EQ(format_time_ms(from_unix_ms(951'782'400'999)), "2000-02-29T00:00:00.999Z");  // leap day
  EXPECT_EQ(format_time_ms(from_unix_ms(1)), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(format_time_ms(from_unix_ms(86'400'000)), "1970-01-02T00:00:00.000Z");
}

TEST(FormatTimeMsTest, BeforeTheEpochBorrowsASecond) {
  EXPECT_EQ(format_time_ms(from_unix_ms(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_time_ms(from_unix_ms(-1000)), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(format_time_ms(from_unix_ms(-1001)), "1969-12-31T23:59:58.999Z");
}

ImageRecord sample_image() {
  ImageRecord r;
  r.id = 17;
  r.project_id = 3;
  r.job_id = 9;
  r.idx = 1;
  r.created_by = 5;
  r.sha256 = std::string(64, 'c');
  r.bytes = 4096;
  r.width = 512;
  r.height = 768;
  r.seed = 43;
  r.parent_image_id = 11;
  r.lineage = "null1;0011223344556677";
  r.created_at = from_unix_ms(1'764'139'999'123);
  return r;
}

Job sample_job() {
  Job j;
  j.id = 9;
  j.project_id = 3;
  j.submitted_by = 5;
  j.state = JobState::kRunning;
  JobParams& p = j.params;
  p.model = "cppn";
  p.prompt = "a cat";
  p.negative_prompt = "blurry";
  p.width = 512;
  p.height = 768;
  p.steps = 20;
  p.guidance = 7.5;
  p.seed = 42;
  p.count = 2;
  p.sampler = "smooth";
  p.mode = inference::Mode::kVariation;
  p.strength = 0.25;
  p.parent_image_id = 11;
  p.priority = -3;
  j.attempt = 2;
  j.max_attempts = 3;
  j.worker = "gpu-0";
  j.lease_until = from_unix_ms(5000);
  j.progress_step = 7;
  j.cancel_requested = true;
  j.error = "";
  j.created_at = from_unix_ms(0);
  j.queued_at = from_unix_ms(1000);
  j.started_at = from_unix_ms(2000);
  j.finished_at = std::nullopt;
  j.updated_at = from_unix_ms(3000);
  return j;
}

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.insert(it.key());
  return out;
}

TEST(ImageJsonTest, EveryFieldWithItsType) {
  json j = image_json(sample_image());
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(keys_of(j),
            (std::set<std::string>{"id", "project_id", "job_id", "index", "created_by", "width",
                                   "height", "seed", "parent_image_id", "sha256", "bytes", "url",
                                   "thumb_url", "created_at", "source", "original_name"}));
  EXPECT_EQ(j["source"], json("generated"));
  EXPECT_TRUE(j["original_name"].is_null());
  EXPECT_EQ(j["id"], json(17));
  EXPECT_TRUE(j["id"].is_number_integer());
  EXPECT_EQ(j["project_id"], json(3));
  EXPECT_EQ(j["job_id"], json(9));
  EXPECT_EQ(j["index"], json(1));
  EXPECT_EQ(j["created_by"], json(5));
  EXPECT_EQ(j["width"], json(512));
  EXPECT_EQ(j["height"], json(768));
  EXPECT_EQ(j["seed"], json(43));
  EXPECT_EQ(j["parent_image_id"], json(11));
  EXPECT_EQ(j["sha256"], json(std::string(64, 'c')));
  EXPECT_EQ(j["bytes"], json(4096));
  EXPECT_EQ(j["created_at"], json("2025-11-26T06:53:19.123Z"));
  // The lineage is the generator's private state: never part of the API.
  EXPECT_FALSE(j.contains("lineage"));
}

TEST(ImageJsonTest, UrlsNameTheImageId) {
  json j = image_json(sample_image());
  EXPECT_EQ(j["url"], json("/api/v1/images/17/file"));
  EXPECT_EQ(j["thumb_url"], json("/api/v1/images/17/thumb"));
  ImageRecord other = sample_image();
  other.id = 123456789012;
  json k = image_json(other);
  EXPECT_EQ(k["url"], json("/api/v1/images/123456789012/file"));
  EXPECT_EQ(k["thumb_url"], json("/api/v1/images/123456789012/thumb"));
}

TEST(ImageJsonTest, AnUploadHasNoJobAndKeepsItsName) {
  ImageRecord r = sample_image();
  r.job_id = std::nullopt;
  r.source = jobs::ImageSource::kUpload;
  r.original_name = "cat photo.jpg";
  r.parent_image_id = std::nullopt;
  json j = image_json(r);
  EXPECT_TRUE(j["job_id"].is_null());
  EXPECT_EQ(j["source"], json("upload"));
  EXPECT_EQ(j["original_name"], json("cat photo.jpg"));
}

TEST(JobJsonTest, EditFieldsOfAnOutpaint) {
  jobs::Job job = sample_job();
  job.params.mode = inference::Mode::kOutpaint;
  job.params.edit = inference::EditSpec{8, inference::InpaintArea::kWhole, {1, 2, 3, 4}};
  json j = job_json(job);
  EXPECT_EQ(j["mode"], json("outpaint"));
  EXPECT_EQ(j["mask_blur"], json(8));
  EXPECT_EQ(j["inpaint_area"], json("whole"));
  EXPECT_EQ(j["extend"], (json{{"left", 1}, {"right", 2}, {"top", 3}, {"bottom", 4}}));
  EXPECT_TRUE(j["mask_image_id"].is_null());
  job.params.mode = inference::Mode::kInpaint;
  job.params.mask_image_id = 77;
  job.params.edit->area = inference::InpaintArea::kMasked;
  json k = job_json(job);
  EXPECT_EQ(k["mask_image_id"], json(77));
  EXPECT_EQ(k["inpaint_area"], json("masked"));
  EXPECT_TRUE(k["extend"].is_null());  // an inpaint extends nothing
}

TEST(ImageJsonTest, UnsetOptionalsAreNull) {
  ImageRecord r = sample_image();
  r.created_by = std::nullopt;
  r.parent_image_id = std::nullopt;
  json j = image_json(r);
  ASSERT_TRUE(j.contains("created_by"));
  EXPECT_TRUE(j["created_by"].is_null());
  ASSERT_TRUE(j.contains("parent_image_id"));
  EXPECT_TRUE(j["parent_image_id"].is_null());
}

TEST(JobJsonTest, EveryFieldWithItsType) {
  json j = job_json(sample_job());
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(keys_of(j), (std::set<std::string>{"id",
                                               "project_id",
                                               "state",
                                               "model",
                                               "prompt",
                                               "negative_prompt",
                                               "width",
                                               "height",
                                               "steps",
                                               "guidance",
                                               "seed",
                                               "count",
                                               "sampler",
                                               "mode",
                                               "strength",
                                               "parent_image_id",
                                               "priority",
                                               "progress",
                                               "attempt",
                                               "max_attempts",
                                               "position",
                                               "cancel_requested",
                                               "images",
                                               "error",
                                               "submitted_by",
                                               "created_at",
                                               "queued_at",
                                               "started_at",
                                               "finished_at",
                                               "updated_at",
                                               "warnings",
                                               "loras",
                                               "model_hash",
                                               "original_size",
                                               "target_size",
                                               "crop_top_left",
                                               "mask_image_id",
                                               "mask_blur",
                                               "inpaint_area",
                                               "extend"}));
  // Not an edit: the edit fields are null.
  EXPECT_TRUE(j["mask_image_id"].is_null());
  EXPECT_TRUE(j["mask_blur"].is_null());
  EXPECT_TRUE(j["inpaint_area"].is_null());
  EXPECT_TRUE(j["extend"].is_null());
  EXPECT_EQ(j["id"], json(9));
  EXPECT_EQ(j["project_id"], json(3));
  EXPECT_EQ(j["state"], json("running"));
  EXPECT_EQ(j["model"], json("cppn"));
  EXPECT_EQ(j["prompt"], json("a cat"));
  EXPECT_EQ(j["negative_prompt"], json("blurry"));
  EXPECT_EQ(j["width"], json(512));
  EXPECT_EQ(j["height"], json(768));
  EXPECT_EQ(j["steps"], json(20));
  EXPECT_TRUE(j["guidance"].is_number_float());
  EXPECT_DOUBLE_EQ(j["guidance"].get<double>(), 7.5);
  EXPECT_EQ(j["seed"], json(42));
  EXPECT_TRUE(j["seed"].is_number_integer());
  EXPECT_EQ(j["count"], json(2));
  EXPECT_EQ(j["sampler"], json("smooth"));
  EXPECT_EQ(j["mode"], json("variation"));
  EXPECT_TRUE(j["strength"].is_number_float());
  EXPECT_DOUBLE_EQ(j["strength"].get<double>(), 0.25);
  EXPECT_EQ(j["parent_image_id"], json(11));
  EXPECT_EQ(j["priority"], json(-3));
  EXPECT_EQ(j["progress"], (json{{"step", 7}, {"steps", 20}}));
  EXPECT_EQ(j["attempt"], json(2));
  EXPECT_EQ(j["max_attempts"], json(3));
  EXPECT_TRUE(j["cancel_requested"].is_boolean());
  EXPECT_EQ(j["cancel_requested"], json(true));
  EXPECT_TRUE(j["images"].is_array());
  EXPECT_TRUE(j["images"].empty());
  EXPECT_EQ(j["submitted_by"], json(5));
  EXPECT_EQ(j["created_at"], json("1970-01-01T00:00:00.000Z"));
  EXPECT_EQ(j["queued_at"], json("1970-01-01T00:00:01.000Z"));
  EXPECT_EQ(j["started_at"], json("1970-01-01T00:00:02.000Z"));
  EXPECT_EQ(j["updated_at"], json("1970-01-01T00:00:03.000Z"));
  // Worker names and leases are internal.
  EXPECT_FALSE(j.contains("worker"));
  EXPECT_FALSE(j.contains("lease_until"));
}

TEST(JobJsonTest, UnsetOptionalsAreNull) {
  Job job = sample_job();
  job.state = JobState::kQueued;
  job.params.parent_image_id = std::nullopt;
  job.params.mode = inference::Mode::kTxt2Img;
  job.submitted_by = std::nullopt;
  job.started_at = std::nullopt;
  job.finished_at = std::nullopt;
  job.error.clear();
  json j = job_json(job);
  for (const char* key :
       {"parent_image_id", "submitted_by", "started_at", "finished_at", "error", "position"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_TRUE(j[key].is_null()) << key << ": " << j[key].dump();
  }
  EXPECT_EQ(j["mode"], json("txt2img"));
  EXPECT_EQ(j["state"], json("queued"));
}

TEST(JobJsonTest, SetOptionalsCarryTheirValues) {
  Job job = sample_job();
  job.state = JobState::kFailed;
  job.error = "out of memory";
  job.finished_at = from_unix_ms(1'764'139'999'123);
  json j = job_json(job);
  EXPECT_EQ(j["error"], json("out of memory"));
  EXPECT_EQ(j["finished_at"], json("2025-11-26T06:53:19.123Z"));
  EXPECT_EQ(j["state"], json("failed"));
}

TEST(JobJsonTest, PositionOnlyWhenSet) {
  Job job = sample_job();
  job.state = JobState::kQueued;
  EXPECT_TRUE(job_json(job)["position"].is_null());
  job.position = 4;
  json j = job_json(job);
  EXPECT_TRUE(j["position"].is_number_integer());
  EXPECT_EQ(j["position"], json(4));
}

TEST(JobJsonTest, ImagesAreEmbeddedInOrderAsImageObjects) {
  Job job = sample_job();
  job.state = JobState::kDone;
  ImageRecord a = sample_image();
  ImageRecord b = sample_image();
  b.id = 18;
  b.idx = 2;
  b.seed = 44;
  job.images = {a, b};
  json j = job_json(job);
  ASSERT_TRUE(j["images"].is_array());
  ASSERT_EQ(j["images"].size(), 2u);
  EXPECT_EQ(j["images"][0], image_json(a));
  EXPECT_EQ(j["images"][1], image_json(b));
  EXPECT_EQ(j["images"][1]["url"], json("/api/v1/images/18/file"));
  EXPECT_EQ(j["state"], json("done"));
}

TEST(JobJsonTest, EveryStateAndModeByName) {
  Job job = sample_job();
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed,
                     JobState::kCancelled}) {
    job.state = s;
    EXPECT_EQ(job_json(job)["state"], json(std::string(state_name(s))));
  }
  job.params.mode = inference::Mode::kUpscale;
  EXPECT_EQ(job_json(job)["mode"], json("upscale"));
  job.params.mode = inference::Mode::kRemix;
  EXPECT_EQ(job_json(job)["mode"], json("remix"));
}

TEST(JobJsonTest, SerializesToText) {
  // The object goes into REST answers and the event log as text; it must dump and parse back.
  Job job = sample_job();
  job.params.prompt = "quote \" and newline \n and ünïcödé";
  json j = job_json(job);
  json back = json::parse(j.dump());
  EXPECT_EQ(back, j);
  EXPECT_EQ(back["prompt"], json(job.params.prompt));
}

TEST(JobJsonTest, WithoutLorasHashesOrSizeConditioning) {
  json j = job_json(sample_job());
  EXPECT_EQ(j["loras"], json::array());
  EXPECT_TRUE(j["model_hash"].is_null());
  EXPECT_TRUE(j["original_size"].is_null());
  EXPECT_TRUE(j["target_size"].is_null());
  EXPECT_TRUE(j["crop_top_left"].is_null());
  EXPECT_EQ(j["warnings"], json::array());
}

TEST(JobJsonTest, LorasHashesSizeConditioningAndWarnings) {
  Job job = sample_job();
  job.params.loras = {{"ink", 0.75}, {"grain", -1}};
  job.params.lora_hashes = {{"ink", std::string(64, 'b')}};  // grain: unknown hash
  job.params.model_hash = std::string(64, 'a');
  job.params.size_conditioning = inference::SizeConditioning{2048, 1536, 1024, 768, 8, 16};
  job.warnings = {"LoRA ink: 3 of 40 keys matched no layer"};
  json j = job_json(job);
  EXPECT_EQ(j["loras"], (json{{{"name", "ink"}, {"weight", 0.75}, {"hash", std::string(64, 'b')}},
                              {{"name", "grain"}, {"weight", -1.0}, {"hash", nullptr}}}));
  EXPECT_EQ(j["model_hash"], json(std::string(64, 'a')));
  EXPECT_EQ(j["original_size"], (json{2048, 1536}));
  EXPECT_EQ(j["target_size"], (json{1024, 768}));
  EXPECT_EQ(j["crop_top_left"], (json{8, 16}));
  EXPECT_EQ(j["warnings"], (json{"LoRA ink: 3 of 40 keys matched no layer"}));
}

}  // namespace
}  // namespace atelier::api
