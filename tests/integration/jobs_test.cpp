// Jobs end to end against an in-process server: submit, poll, SSE, download, validation,
// idempotency, cancellation, fairness, lineage, limits and the event log.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/image.h"
#include "tests/integration/job_test_helpers.h"
#include "tests/support/http_client.h"

namespace atelier::apitest {
namespace {

using namespace std::chrono_literals;

nlohmann::json null_job(const std::string& prompt = "a test", nlohmann::json extra = {}) {
  nlohmann::json body = {{"model", "null"}, {"prompt", prompt}};
  if (extra.is_object()) body.update(extra);
  return body;
}

class JobsTest : public ::testing::Test {
 protected:
  void start(int64_t step_ms = 0, std::function<void(ServerConfig&)> tweak = {}) {
    ServerConfig c = test_config(dir_);
    c.enable_null_model = true;
    c.null_step_ms = step_ms;
    if (tweak) tweak(c);
    server_ = std::make_unique<TestServer>(c);
    port_ = server_->port();
    owner_ = register_account(port_, "owner");
    project_ = create_project(port_, owner_.token);
  }
  // Another account, member of the project with `role`.
  Account member(const std::string& name, const std::string& role) {
    Account a = register_account(port_, name);
    set_member(port_, owner_.token, project_, a.id, role);
    return a;
  }

  testing::TempDir dir_;
  std::unique_ptr<TestServer> server_;
  uint16_t port_ = 0;
  Account owner_;
  int64_t project_ = 0;
};

TEST_F(JobsTest, SubmitPollDownloadAndReadParameters) {
  start();
  auto r = submit(port_, owner_.token, project_,
                  null_job("a red fox", {{"negative_prompt", "blurry"},
                                         {"width", 96},
                                         {"height", 64},
                                         {"seed", 1234},
                                         {"count", 2},
                                         {"steps", 3}}));
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json["state"], "queued");
  EXPECT_TRUE(r.json["position"].is_number_integer() || r.json["state"] != "queued");
  EXPECT_EQ(r.header("location"), "/api/v1/jobs/" + std::to_string(r.json["id"].get<int>()));
  nlohmann::json job = wait_terminal(port_, owner_.token, r.json["id"]);
  ASSERT_EQ(job["state"], "done") << job.dump();
  EXPECT_EQ(job["progress"]["step"], 3);
  EXPECT_EQ(job["attempt"], 1);
  EXPECT_EQ(job["submitted_by"], owner_.id);
  ASSERT_EQ(job["images"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto& meta = job["images"][i];
    EXPECT_EQ(meta["seed"], 1234 + i);
    auto file = call(port_, "GET", meta["url"], "", bearer(owner_.token));
    ASSERT_EQ(file.status, 200);
    EXPECT_EQ(file.header("content-type"), "image/png");
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(file.body.data()),
                                   file.body.size());
    auto decoded = image::decode_png(bytes);
    ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
    EXPECT_EQ(decoded->width, 96);
    EXPECT_EQ(decoded->height, 64);
    auto text = image::read_png_text(bytes);
    ASSERT_TRUE(text.is_ok());
    ASSERT_EQ(text->size(), 1u);
    EXPECT_EQ((*text)[0].first, "parameters");
    EXPECT_EQ((*text)[0].second,
              "a red fox\nNegative prompt: blurry\nSteps: 3, Sampler: none, CFG scale: 7, Seed: " +
                  std::to_string(1234 + i) + ", Size: 96x64, Model: null");
  }
  // Thumbnails: small, WebP by default, JPEG on request, cached (same bytes twice).
  int64_t image_id = job["images"][0]["id"];
  auto thumb = call(port_, "GET", "/api/v1/images/" + std::to_string(image_id) + "/thumb?size=32",
                    "", bearer(owner_.token));
  ASSERT_EQ(thumb.status, 200) << thumb.body;
  EXPECT_EQ(thumb.header("content-type"), "image/webp");
  EXPECT_EQ(thumb.body.substr(0, 4), "RIFF");
  auto again = call(port_, "GET", "/api/v1/images/" + std::to_string(image_id) + "/thumb?size=32",
                    "", bearer(owner_.token));
  EXPECT_EQ(again.body, thumb.body);
  auto jpeg = call(port_, "GET",
                   "/api/v1/images/" + std::to_string(image_id) + "/thumb?size=32&format=jpeg", "",
                   bearer(owner_.token));
  EXPECT_EQ(jpeg.header("content-type"), "image/jpeg");
  EXPECT_EQ(call(port_, "GET", "/api/v1/images/" + std::to_string(image_id) + "/thumb?size=5000",
                 "", bearer(owner_.token))
                .error_field(),
            "size");
}

TEST_F(JobsTest, CppnModelRendersARealImage) {
  start();
  int64_t id = submit_ok(port_, owner_.token, project_,
                         {{"model", "cppn"},
                          {"prompt", "ocean"},
                          {"width", 64},
                          {"height", 64},
                          {"steps", 2},
                          {"seed", 7}});
  nlohmann::json job = wait_terminal(port_, owner_.token, id, 60s);
  ASSERT_EQ(job["state"], "done") << job.dump();
  auto file = call(port_, "GET", job["images"][0]["url"], "", bearer(owner_.token));
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(file.body.data()),
                                 file.body.size());
  auto decoded = image::decode_png(bytes);
  ASSERT_TRUE(decoded.is_ok());
  EXPECT_EQ(decoded->width, 64);
  auto text = image::read_png_text(bytes);
  ASSERT_TRUE(text.is_ok());
  EXPECT_NE((*text)[0].second.find("Seed: 7, Size: 64x64, Model: cppn"), std::string::npos);
}

TEST_F(JobsTest, ServerSentEventsFollowAJobToItsEnd) {
  start(/*step_ms=*/30);
  int64_t id = submit_ok(port_, owner_.token, project_, null_job("sse", {{"steps", 4}}));
  testing::Connection conn(port_);
  ASSERT_TRUE(
      conn.send(testing::make_request("GET", job_path(id, "/events"), "", bearer(owner_.token))));
  auto head = conn.read_response(5s, /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-type"), "text/event-stream; charset=utf-8");
  testing::StreamedBody body;
  ASSERT_TRUE(conn.read_stream_to_end(body, 20s)) << body.data;
  auto events = parse_sse(body.data);
  ASSERT_GE(events.size(), 2u) << body.data;
  EXPECT_EQ(events.back().name, "done");
  EXPECT_EQ(events.back().data["state"], "done");
  EXPECT_EQ(events.back().data["images"].size(), 1u);
  int progress = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].name, "progress");
    EXPECT_EQ(events[i].data["id"], id);
    progress += events[i].data["state"] == "running" ? 1 : 0;
  }
  EXPECT_GE(progress, 1) << body.data;

  // A finished job's stream gets its terminal event at once and ends.
  testing::Connection late(port_);
  ASSERT_TRUE(
      late.send(testing::make_request("GET", job_path(id, "/events"), "", bearer(owner_.token))));
  ASSERT_TRUE(late.read_response(5s, true));
  testing::StreamedBody late_body;
  ASSERT_TRUE(late.read_stream_to_end(late_body, 5s));
  auto late_events = parse_sse(late_body.data);
  ASSERT_EQ(late_events.size(), 1u);
  EXPECT_EQ(late_events[0].name, "done");

  // Outsiders get an ordinary 404, not a stream.
  Account stranger = register_account(port_, "stranger");
  EXPECT_EQ(call(port_, "GET", job_path(id, "/events"), "", bearer(stranger.token)).status, 404);
}

TEST_F(JobsTest, ValidationErrorsNameTheField) {
  start();
  struct Case {
    nlohmann::json body;
    std::string field;
  };
  std::vector<Case> cases = {
      {{{"prompt", "x"}}, "model"},
      {{{"model", "null"}}, "prompt"},
      {{{"model", "nope"}, {"prompt", "x"}}, "model"},
      {null_job("x", {{"width", 100}}), "width"},  // not a multiple of 8
      {null_job("x", {{"height", 4096}}), "height"},
      {null_job("x", {{"steps", 0}}), "steps"},
      {null_job("x", {{"count", 9}}), "count"},
      {null_job("x", {{"guidance", 99.5}}), "guidance"},
      {null_job("x", {{"strength", 1.5}}), "strength"},
      {null_job("x", {{"sampler", "euler"}}), "sampler"},
      {null_job("x", {{"mode", "sideways"}}), "mode"},
      {null_job("x", {{"mode", "variation"}}), "parent_image_id"},
      {null_job("x", {{"parent_image_id", 1}}), "parent_image_id"},
      {null_job("x", {{"mode", "upscale"}, {"parent_image_id", 999}}), "parent_image_id"},
      {null_job("x", {{"seed", "42"}}), "seed"},
      {null_job("x", {{"state", "done"}}), "state"},
  };
  for (const Case& c : cases) {
    auto r = submit(port_, owner_.token, project_, c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump() << " -> " << r.body;
    EXPECT_EQ(r.error_field(), c.field) << c.body.dump() << " -> " << r.body;
  }
  // Nothing was queued by any of them.
  auto list = call(port_, "GET", project_path(project_, "/jobs"), "", bearer(owner_.token));
  EXPECT_EQ(list.json["jobs"].size(), 0u);
}

TEST_F(JobsTest, IdempotencyKeyReturnsTheSameJob) {
  start();
  nlohmann::json body = null_job("once", {{"seed", 5}});
  auto first = submit(port_, owner_.token, project_, body, "Idempotency-Key: abc-123");
  ASSERT_EQ(first.status, 202);
  auto retry = submit(port_, owner_.token, project_, body, "Idempotency-Key: abc-123");
  ASSERT_EQ(retry.status, 202);
  EXPECT_EQ(retry.json["id"], first.json["id"]);
  EXPECT_EQ(retry.header("idempotent-replayed"), "true");
  auto other = submit(port_, owner_.token, project_, null_job("twice", {{"seed", 5}}),
                      "Idempotency-Key: abc-123");
  EXPECT_EQ(other.status, 422);
  EXPECT_EQ(other.error_field(), "Idempotency-Key");
  // Without a seed, a retry is still the same request (the random seed is not part of it).
  auto a = submit(port_, owner_.token, project_, null_job("random"), "Idempotency-Key: k2");
  auto b = submit(port_, owner_.token, project_, null_job("random"), "Idempotency-Key: k2");
  EXPECT_EQ(a.json["id"], b.json["id"]);
  EXPECT_EQ(submit(port_, owner_.token, project_, body, "Idempotency-Key: has space").status, 400);
  auto list = call(port_, "GET", project_path(project_, "/jobs"), "", bearer(owner_.token));
  EXPECT_EQ(list.json["jobs"].size(), 2u);
}

TEST_F(JobsTest, CancelQueuedAtOnceAndRunningAtTheNextStep) {
  start(/*step_ms=*/50);
  Account editor = member("editor", "editor");
  Account viewer = member("viewer", "viewer");
  int64_t running = submit_ok(port_, editor.token, project_, null_job("long", {{"steps", 100}}));
  wait_state(port_, editor.token, running, "running");
  int64_t queued = submit_ok(port_, editor.token, project_, null_job("waiting"));

  // Only the submitter or an owner; outsiders see nothing.
  EXPECT_EQ(call(port_, "POST", job_path(queued, "/cancel"), "", bearer(viewer.token)).status, 403);
  Account stranger = register_account(port_, "stranger");
  EXPECT_EQ(call(port_, "POST", job_path(queued, "/cancel"), "", bearer(stranger.token)).status,
            404);

  auto c = call(port_, "POST", job_path(queued, "/cancel"), "", bearer(editor.token));
  ASSERT_EQ(c.status, 202) << c.body;
  EXPECT_EQ(c.json["state"], "cancelled");

  auto r = call(port_, "POST", job_path(running, "/cancel"), "", bearer(owner_.token));
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(r.json["cancel_requested"].get<bool>());
  nlohmann::json job = wait_terminal(port_, editor.token, running, 5s);
  EXPECT_EQ(job["state"], "cancelled");
  EXPECT_LT(job["progress"]["step"].get<int>(), 100);
  EXPECT_TRUE(job["images"].empty());
  // Finished jobs cannot be cancelled again.
  EXPECT_EQ(call(port_, "POST", job_path(running, "/cancel"), "", bearer(editor.token)).status,
            409);
  // The worker is free again: a new job runs to the end.
  int64_t next = submit_ok(port_, editor.token, project_, null_job("after", {{"steps", 1}}));
  EXPECT_EQ(wait_terminal(port_, editor.token, next)["state"], "done");
}

TEST_F(JobsTest, OneUsersHundredJobsDoNotStarveAnothersOne) {
  start(/*step_ms=*/2);
  Account a = member("alice", "editor");
  Account b = member("bob", "editor");
  std::vector<int64_t> a_jobs;
  for (int i = 0; i < 100; ++i) {
    a_jobs.push_back(submit_ok(port_, a.token, project_, null_job("a", {{"steps", 2}})));
  }
  int64_t b_job = submit_ok(port_, b.token, project_, null_job("b", {{"steps", 2}}));
  wait_terminal(port_, b.token, b_job, 30s);
  // In the event log, between B's job.queued and B's job.started at most one of A's jobs may
  // start (the slot that was already being handed out).
  auto events =
      call(port_, "GET", project_path(project_, "/events?limit=1000"), "", bearer(a.token)).json;
  bool b_queued = false;
  int a_started_between = 0;
  for (const auto& e : events["events"]) {
    if (!e["data"].contains("job")) continue;
    int64_t job = e["data"]["job"]["id"];
    if (job == b_job && e["type"] == "job.queued") b_queued = true;
    if (job == b_job && e["type"] == "job.started") break;
    if (b_queued && job != b_job && e["type"] == "job.started") ++a_started_between;
  }
  EXPECT_TRUE(b_queued);
  EXPECT_LE(a_started_between, 1);
  // Cancel the rest so shutdown is quick.
  for (int64_t id : a_jobs) call(port_, "POST", job_path(id, "/cancel"), "", bearer(a.token));
}

TEST_F(JobsTest, LineageModesRecordTheirParent) {
  start();
  int64_t base =
      submit_ok(port_, owner_.token, project_, null_job("base", {{"width", 64}, {"height", 48}}));
  nlohmann::json done = wait_terminal(port_, owner_.token, base);
  int64_t parent = done["images"][0]["id"];
  auto child = [&](const std::string& mode, nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json body = null_job("child " + mode, {{"mode", mode}, {"parent_image_id", parent}});
    body.update(extra);
    int64_t id = submit_ok(port_, owner_.token, project_, body);
    return wait_terminal(port_, owner_.token, id);
  };
  nlohmann::json variation = child("variation", {{"strength", 0.2}});
  EXPECT_EQ(variation["parent_image_id"], parent);
  EXPECT_EQ(variation["width"], 64);  // size from the parent
  EXPECT_EQ(variation["height"], 48);
  EXPECT_EQ(variation["images"][0]["parent_image_id"], parent);
  nlohmann::json remix = child("remix");
  EXPECT_EQ(remix["mode"], "remix");
  nlohmann::json upscale = child("upscale");
  EXPECT_EQ(upscale["width"], 128);
  EXPECT_EQ(upscale["height"], 96);
  nlohmann::json up4 = child("upscale", {{"width", 256}, {"height", 192}});
  EXPECT_EQ(up4["state"], "done");
  auto bad = submit(
      port_, owner_.token, project_,
      null_job(
          "x",
          {{"mode", "upscale"}, {"parent_image_id", parent}, {"width", 192}, {"height", 144}}));
  EXPECT_EQ(bad.error_field(), "width");

  auto meta =
      call(port_, "GET", "/api/v1/images/" + std::to_string(parent), "", bearer(owner_.token));
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(meta.json["prompt"], "base");
  EXPECT_EQ(meta.json["parent"], nullptr);
  EXPECT_EQ(meta.json["children"].size(), 4u);
  int64_t var_image = variation["images"][0]["id"];
  auto var_meta =
      call(port_, "GET", "/api/v1/images/" + std::to_string(var_image), "", bearer(owner_.token));
  EXPECT_EQ(var_meta.json["parent"]["id"], parent);
  EXPECT_EQ(var_meta.json["mode"], "variation");
  EXPECT_EQ(var_meta.json["job_id"], variation["id"]);
  EXPECT_EQ(var_meta.json["created_by"], owner_.id);

  // A parent from another project is refused.
  int64_t other = create_project(port_, owner_.token, "Other");
  auto cross = submit(port_, owner_.token, other,
                      null_job("x", {{"mode", "variation"}, {"parent_image_id", parent}}));
  EXPECT_EQ(cross.status, 400);
  EXPECT_EQ(cross.error_field(), "parent_image_id");

  // The gallery pages newest first.
  auto page1 =
      call(port_, "GET", project_path(project_, "/images?limit=2"), "", bearer(owner_.token));
  ASSERT_EQ(page1.json["images"].size(), 2u);
  int64_t next = page1.json["next_before"];
  auto page2 =
      call(port_, "GET", project_path(project_, "/images?limit=10&before=" + std::to_string(next)),
           "", bearer(owner_.token));
  EXPECT_EQ(page2.json["images"].size(), 3u);
  EXPECT_LT(page2.json["images"][0]["id"].get<int64_t>(), next);
}

TEST_F(JobsTest, PerUserQueueLimitAnswers429) {
  start(/*step_ms=*/200, [](ServerConfig& c) { c.max_queued_per_user = 2; });
  int64_t first = submit_ok(port_, owner_.token, project_, null_job("1", {{"steps", 50}}));
  wait_state(port_, owner_.token, first, "running");
  int64_t second = submit_ok(port_, owner_.token, project_, null_job("2"));
  int64_t third = submit_ok(port_, owner_.token, project_, null_job("3"));
  // The list shows each queued job's place in line (newest first).
  auto queued =
      call(port_, "GET", project_path(project_, "/jobs?state=queued"), "", bearer(owner_.token));
  ASSERT_EQ(queued.json["jobs"].size(), 2u);
  EXPECT_EQ(queued.json["jobs"][0]["id"], third);
  EXPECT_EQ(queued.json["jobs"][0]["position"], 2);
  EXPECT_EQ(queued.json["jobs"][1]["id"], second);
  EXPECT_EQ(queued.json["jobs"][1]["position"], 1);
  auto r = submit(port_, owner_.token, project_, null_job("4"));
  EXPECT_EQ(r.status, 429) << r.body;
  // Another user has their own allowance.
  Account other = member("other", "editor");
  EXPECT_EQ(submit(port_, other.token, project_, null_job("o")).status, 202);
  call(port_, "POST", job_path(first, "/cancel"), "", bearer(owner_.token));
}

TEST_F(JobsTest, EveryStateChangeIsAnEventCarryingTheJob) {
  start();
  int64_t id = submit_ok(port_, owner_.token, project_, null_job("events"));
  wait_terminal(port_, owner_.token, id);
  auto r = call(port_, "GET", project_path(project_, "/events?after=1"), "", bearer(owner_.token));
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> types;
  for (const auto& e : r.json["events"]) {
    types.push_back(e["type"]);
    EXPECT_EQ(e["data"]["job"]["id"], id);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"job.queued", "job.started", "job.done"}));
  EXPECT_EQ(r.json["head_seq"], 4);  // project.created is seq 1
  const auto& done = r.json["events"][2]["data"]["job"];
  EXPECT_EQ(done["state"], "done");
  EXPECT_EQ(done["images"].size(), 1u);
  EXPECT_EQ(r.json["events"][0]["data"]["job"]["state"], "queued");
  EXPECT_EQ(r.json["events"][0]["actor"], owner_.id);
  auto limited =
      call(port_, "GET", project_path(project_, "/events?limit=1"), "", bearer(owner_.token));
  EXPECT_EQ(limited.json["events"].size(), 1u);
  EXPECT_EQ(
      call(port_, "GET", project_path(project_, "/events?limit=100000"), "", bearer(owner_.token))
          .status,
      200);
  EXPECT_EQ(call(port_, "GET", project_path(project_, "/events?after=x"), "", bearer(owner_.token))
                .error_field(),
            "after");
}

TEST_F(JobsTest, RolesAndScopesGateSubmission) {
  start();
  Account viewer = member("viewer", "viewer");
  EXPECT_EQ(submit(port_, viewer.token, project_, null_job()).status, 403);
  Account stranger = register_account(port_, "stranger");
  EXPECT_EQ(submit(port_, stranger.token, project_, null_job()).status, 404);
  ApiToken read = create_api_token(port_, owner_.token, "read");
  EXPECT_EQ(submit(port_, read.secret, project_, null_job()).status, 403);
  ApiToken script = create_api_token(port_, owner_.token, "submit");
  int64_t id = submit_ok(port_, script.secret, project_, null_job());
  EXPECT_EQ(call(port_, "GET", job_path(id), "", bearer(stranger.token)).status, 404);
  EXPECT_EQ(call(port_, "GET", job_path(id), "", bearer(viewer.token)).status, 200);
  EXPECT_EQ(call(port_, "GET", job_path(id), "").status, 401);
  nlohmann::json job = wait_terminal(port_, owner_.token, id);
  std::string url = job["images"][0]["url"];
  EXPECT_EQ(call(port_, "GET", url, "", bearer(stranger.token)).status, 404);
  EXPECT_EQ(call(port_, "GET", url, "", bearer(viewer.token)).status, 200);
}

TEST_F(JobsTest, QueuedJobsSurviveARestart) {
  start(/*step_ms=*/100);
  int64_t busy = submit_ok(port_, owner_.token, project_, null_job("busy", {{"steps", 100}}));
  wait_state(port_, owner_.token, busy, "running");
  std::vector<int64_t> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(submit_ok(port_, owner_.token, project_, null_job("w", {{"steps", 1}})));
  }
  server_->stop();
  server_.reset();
  ServerConfig c = test_config(dir_);
  c.enable_null_model = true;
  server_ = std::make_unique<TestServer>(c);
  port_ = server_->port();
  Account again = login(port_, "owner");
  for (int64_t id : waiting) EXPECT_EQ(wait_terminal(port_, again.token, id)["state"], "done");
  // The interrupted job went back to the queue (a shutdown is not its fault) and finished.
  nlohmann::json job = wait_terminal(port_, again.token, busy, 30s);
  EXPECT_EQ(job["state"], "done");
  EXPECT_EQ(job["attempt"], 2);
}

TEST_F(JobsTest, ModelsListTheirParameters) {
  start();
  auto r = call(port_, "GET", "/api/v1/models", "", bearer(owner_.token));
  ASSERT_EQ(r.status, 200);
  std::set<std::string> ids;
  for (const auto& m : r.json["models"]) {
    ids.insert(m["id"].get<std::string>());
    EXPECT_TRUE(m["params"]["width"].contains("max"));
    EXPECT_FALSE(m["params"]["samplers"].empty());
  }
  EXPECT_EQ(ids, (std::set<std::string>{"cppn", "null"}));
  EXPECT_EQ(call(port_, "GET", "/api/v1/models", "").status, 401);
}

TEST_F(JobsTest, JobListPagesAndFiltersByState) {
  start();
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(submit_ok(port_, owner_.token, project_, null_job()));
  for (int64_t id : ids) wait_terminal(port_, owner_.token, id);
  auto page = call(port_, "GET", project_path(project_, "/jobs?limit=2"), "", bearer(owner_.token));
  ASSERT_EQ(page.json["jobs"].size(), 2u);
  EXPECT_EQ(page.json["jobs"][0]["id"], ids[4]);
  int64_t before = page.json["next_before"];
  auto rest = call(port_, "GET", project_path(project_, "/jobs?before=" + std::to_string(before)),
                   "", bearer(owner_.token));
  EXPECT_EQ(rest.json["jobs"].size(), 3u);
  EXPECT_EQ(rest.json["next_before"], nullptr);
  auto done =
      call(port_, "GET", project_path(project_, "/jobs?state=done"), "", bearer(owner_.token));
  EXPECT_EQ(done.json["jobs"].size(), 5u);
  auto queued =
      call(port_, "GET", project_path(project_, "/jobs?state=queued"), "", bearer(owner_.token));
  EXPECT_EQ(queued.json["jobs"].size(), 0u);
  EXPECT_EQ(call(port_, "GET", project_path(project_, "/jobs?state=odd"), "", bearer(owner_.token))
                .error_field(),
            "state");
}

}  // namespace
}  // namespace atelier::apitest
