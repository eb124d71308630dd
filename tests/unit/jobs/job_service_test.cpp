// JobService against a real store and image store, with a fake clock: leases, fencing of stale
// attempts, start-up recovery, cancellation and the event log agreeing with the jobs table.
#include "server/jobs/job_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/auth/account_db.h"
#include "server/inference/null_generator.h"
#include "server/jobs/job_db.h"
#include "server/jobs/worker_pool.h"
#include "server/projects/project_db.h"
#include "tests/support/store_fixture.h"

namespace atelier::jobs {
namespace {

namespace pdb = projects::project_db;

class NoProgress : public inference::ProgressSink {
 public:
  void on_step(int, int, const image::Image*) override {}
};

// Reports each step to the service, as a worker does.
class ServiceSink : public inference::ProgressSink {
 public:
  ServiceSink(JobService& s, const Run& c) : s_(s), c_(c) {}
  void on_step(int step, int steps, const image::Image* p) override {
    s_.report_progress(c_, step, steps, p);
  }

 private:
  JobService& s_;
  const Run& c_;
};

class JobServiceTest : public testing::StoreFixture {
 protected:
  JobServiceTest() : StoreFixture("atelier-job-service-test") {}

  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto images = ImageStore::open(tmp_ / "media");
    ASSERT_TRUE(images.is_ok());
    images_ = std::move(*images);
    auto ids = in_write([](store::Db& db) -> Result<std::pair<int64_t, int64_t>> {
      auto user = auth::account_db::insert_user(db, "ann", "x", false, from_unix_s(1));
      if (!user.is_ok()) return user.status();
      auto project = pdb::insert_project(db, "p", "", user->id, from_unix_s(1));
      if (!project.is_ok()) return project.status();
      return std::make_pair(user->id, project->id);
    });
    ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
    user_ = ids->first;
    project_ = ids->second;
    make_service();
  }

  void make_service() {
    JobServiceOptions options;
    options.lease = std::chrono::milliseconds(1000);
    options.reaper_interval = std::chrono::hours(1);  // the tests call reap_expired() themselves
    options.max_attempts = 3;
    service_ = std::make_unique<JobService>(*store_, *images_, log_, options,
                                            [this] { return from_unix_ms(now_.load()); });
    ASSERT_TRUE(service_->start().is_ok());
  }

  static JobParams test_params(int steps = 2) {
    JobParams p;
    p.model = "null";
    p.prompt = "test";
    p.width = p.height = 8;
    p.steps = steps;
    p.sampler = "none";
    p.seed = 9;
    return p;
  }

  int64_t submit(int steps = 2) { return submit_params(test_params(steps)); }

  int64_t submit_params(JobParams params) {
    std::promise<Result<SubmitResult>> done;
    SubmitRequest r;
    r.project_id = project_;
    r.user_id = user_;
    r.request_hash = "h";
    r.prepare = [params](store::Db&) -> Result<JobParams> { return params; };
    service_->submit(std::move(r),
                     [&](Result<SubmitResult> res) { done.set_value(std::move(res)); });
    auto res = done.get_future().get();
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    return res.is_ok() ? res->job.id : 0;
  }

  Result<std::vector<inference::GeneratedImage>> render(const jobs::Run& c,
                                                        inference::ProgressSink& sink) {
    inference::GenerateRequest req;
    req.model = "null";
    req.prompt = c.job.params.prompt;
    req.width = req.height = 8;
    req.steps = c.job.params.steps;
    req.seed = c.job.params.seed;
    req.count = 1;
    return inference::make_null_generator()->generate(req, sink, *c.cancel);
  }

  Job job(int64_t id) {
    auto j = in_read([id](store::Db& db) { return job_db::find_job(db, id); });
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    return j.is_ok() ? *j : Job{};
  }

  std::vector<std::string> event_types(int64_t job_id) {
    auto events =
        in_read([this](store::Db& db) { return pdb::list_events(db, project_, 0, 1000); });
    std::vector<std::string> out;
    for (const auto& e : *events) {
      auto data = nlohmann::json::parse(e.data_json);
      if (data.contains("job") && data["job"]["id"] == job_id) out.push_back(e.type);
    }
    return out;
  }

  int64_t image_rows(int64_t job_id) {
    auto n = in_read([job_id](store::Db& db) -> Result<int64_t> {
      auto stmt =
          db.prepare("SELECT COUNT(*) FROM images WHERE job_id = " + std::to_string(job_id));
      if (!stmt.is_ok()) return stmt.status();
      auto row = stmt->step();
      if (!row.is_ok()) return row.status();
      return stmt->column_int64(0);
    });
    return *n;
  }

  // The stored `data` of a job event, reduced to what these tests read (the API's encoder
  // writes the whole Job object; server/api is above this layer).
  static std::string encode(const events::DomainEvent& e) {
    if (const auto* j = std::get_if<events::JobChanged>(&e)) {
      return nlohmann::json{{"job", {{"id", j->job.id}, {"warnings", j->job.warnings}}}}.dump();
    }
    return "{}";
  }

  events::EventBus bus_;
  events::EventLog log_{bus_, encode};
  std::unique_ptr<ImageStore> images_;
  std::atomic<int64_t> now_{1'000'000};
  std::unique_ptr<JobService> service_;
  int64_t user_ = 0;
  int64_t project_ = 0;
};

TEST_F(JobServiceTest, StalledWorkerLosesItsJobAndItsLateResultIsDiscarded) {
  int64_t id = submit();
  auto first = service_->next_job("w1");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->job.attempt, 1);
  EXPECT_EQ(job(id).state, JobState::kRunning);

  // w1 stalls: no progress for longer than its lease.
  now_ += 1500;
  ASSERT_TRUE(service_->reap_expired().is_ok());
  EXPECT_EQ(job(id).state, JobState::kQueued);
  EXPECT_TRUE(first->cancel->cancelled()) << "the stalled run is told it lost the job";

  auto second = service_->next_job("w2");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->job.attempt, 2);
  ServiceSink sink2(*service_, *second);
  service_->complete(*second, render(*second, sink2));
  Job done = job(id);
  EXPECT_EQ(done.state, JobState::kDone);
  ASSERT_EQ(done.images.size(), 1u);

  // w1 wakes up and reports: fenced out, nothing changes.
  NoProgress quiet;
  inference::CancelToken fresh;  // ignore the cancel, as a truly stuck worker would
  inference::GenerateRequest req;
  req.model = "null";
  req.prompt = "stale";
  req.width = req.height = 8;
  req.steps = 1;
  req.count = 1;
  auto late = inference::make_null_generator()->generate(req, quiet, fresh);
  ASSERT_TRUE(late.is_ok());
  service_->complete(*first, std::move(late));
  Job after = job(id);
  EXPECT_EQ(after.state, JobState::kDone);
  EXPECT_EQ(after.attempt, 2);
  ASSERT_EQ(after.images.size(), 1u);
  EXPECT_EQ(after.images[0].sha256, done.images[0].sha256);
  EXPECT_EQ(image_rows(id), 1);
  EXPECT_EQ(event_types(id), (std::vector<std::string>{"job.queued", "job.started", "job.queued",
                                                       "job.started", "job.done"}));
}

// A worker already waiting gets the job claimed in the submit's own transaction: one commit for
// both, the events in their usual order, and the submitter still told "queued".
TEST_F(JobServiceTest, AnIdleWorkerIsHandedTheJobInTheSubmitCommit) {
  std::vector<std::string> published;
  std::mutex published_mu;
  bus_.subscribe({.committed = [&](const events::CommittedEvent& e) {
    std::lock_guard lock(published_mu);
    published.emplace_back(events::event_type(e.event));
  }});
  auto waiting = std::async(std::launch::async, [this] { return service_->next_job("w"); });
  for (int i = 0; i < 2000 && service_->idle_workers() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(service_->idle_workers(), 1u);
  const uint64_t commits = store_->stats().writes_committed;
  int64_t id = submit();
  auto claim = waiting.get();
  ASSERT_TRUE(claim);
  EXPECT_EQ(claim->job.id, id);
  EXPECT_EQ(claim->job.attempt, 1);
  EXPECT_EQ(claim->worker, "w");
  EXPECT_EQ(store_->stats().writes_committed, commits + 1) << "submit and claim share a commit";
  EXPECT_EQ(service_->idle_workers(), 0u);
  EXPECT_EQ(job(id).state, JobState::kRunning);
  EXPECT_EQ(event_types(id), (std::vector<std::string>{"job.queued", "job.started"}));
  {
    std::lock_guard lock(published_mu);
    EXPECT_EQ(published, (std::vector<std::string>{"job.queued", "job.started"}));
  }
  ServiceSink sink(*service_, *claim);
  service_->complete(*claim, render(*claim, sink));
  EXPECT_EQ(job(id).state, JobState::kDone);

  // With no worker waiting, the job stays queued for the next next_job().
  int64_t later = submit();
  EXPECT_EQ(job(later).state, JobState::kQueued);
  auto next = service_->next_job("w");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->job.id, later);
}

// A worker reserved by a submit still gets its job when the service stops meanwhile, already
// cancelled, so that the run is interrupted and the job put back rather than left running.
TEST_F(JobServiceTest, StoppingWithAWorkerIdleLeavesNothingRunning) {
  auto waiting = std::async(std::launch::async, [this] { return service_->next_job("w"); });
  for (int i = 0; i < 2000 && service_->idle_workers() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int64_t id = submit();
  service_->stop();
  auto claim = waiting.get();
  ASSERT_TRUE(claim);
  EXPECT_TRUE(claim->cancel->cancelled());
  NoProgress quiet;
  service_->complete(*claim, render(*claim, quiet));
  EXPECT_EQ(job(id).state, JobState::kQueued) << "a shutdown puts the job back";
  EXPECT_FALSE(service_->next_job("w2")) << "stopped: no more work handed out";
}

TEST_F(JobServiceTest, ProgressKeepsTheLeaseAlive) {
  int64_t id = submit(/*steps=*/5);
  auto claim = service_->next_job("w");
  ASSERT_TRUE(claim);
  for (int step = 1; step <= 5; ++step) {
    now_ += 600;  // each step well inside the lease, all of them together past it
    service_->report_progress(*claim, step, 5, nullptr);
    ASSERT_TRUE(service_->reap_expired().is_ok());
    EXPECT_EQ(job(id).state, JobState::kRunning) << "step " << step;
  }
  EXPECT_FALSE(claim->cancel->cancelled());
  Job j = job(id);
  service_->decorate(j);
  EXPECT_EQ(j.progress_step, 5);
}

TEST_F(JobServiceTest, JobsLeftRunningByADeadProcessAreRequeuedThenFailed) {
  int64_t id = submit();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto claim = service_->next_job("w");
    ASSERT_TRUE(claim);
    EXPECT_EQ(claim->job.attempt, attempt);
    // The process dies here: a new service starts on the same database.
    service_.reset();
    make_service();
    Job j = job(id);
    if (attempt < 3) {
      EXPECT_EQ(j.state, JobState::kQueued) << "attempt " << attempt;
    } else {
      EXPECT_EQ(j.state, JobState::kFailed);
      EXPECT_NE(j.error.find("gave up after 3 attempts"), std::string::npos) << j.error;
    }
  }
  auto types = event_types(id);
  EXPECT_EQ(types.back(), "job.failed");
  EXPECT_EQ(std::count(types.begin(), types.end(), "job.started"), 3);
}

TEST_F(JobServiceTest, CancelRequestedWhileRunningWinsOverALateCompletion) {
  int64_t id = submit();
  auto claim = service_->next_job("w");
  ASSERT_TRUE(claim);
  std::promise<Result<Job>> cancelled;
  service_->cancel(
      id, user_, [](store::Db&, const Job&) { return Status::ok(); },
      [&](Result<Job> j) { cancelled.set_value(std::move(j)); });
  auto answer = cancelled.get_future().get();
  ASSERT_TRUE(answer.is_ok());
  EXPECT_TRUE(answer->cancel_requested);
  EXPECT_TRUE(claim->cancel->cancelled());
  // The generator finished its last step before it looked at the token.
  NoProgress quiet;
  inference::CancelToken ignore;
  inference::GenerateRequest req;
  req.model = "null";
  req.prompt = "x";
  req.width = req.height = 8;
  req.steps = 1;
  req.count = 1;
  service_->complete(*claim, inference::make_null_generator()->generate(req, quiet, ignore));
  EXPECT_EQ(job(id).state, JobState::kCancelled);
  EXPECT_EQ(image_rows(id), 0);
  EXPECT_EQ(event_types(id).back(), "job.cancelled");
}

TEST_F(JobServiceTest, ListenersHearCommittedChangesAndProgress) {
  std::mutex mu;
  std::vector<std::string> heard;
  uint64_t sub = bus_.subscribe({.committed =
                                     [&](const events::CommittedEvent& e) {
                                       std::lock_guard lock(mu);
                                       heard.emplace_back(events::event_type(e.event));
                                     },
                                 .progress =
                                     [&](const events::JobProgress&) {
                                       std::lock_guard lock(mu);
                                       heard.push_back("progress");
                                     }});
  submit();
  auto claim = service_->next_job("w");
  ServiceSink sink(*service_, *claim);
  service_->complete(*claim, render(*claim, sink));
  bus_.unsubscribe(sub);
  submit();  // not heard
  std::lock_guard lock(mu);
  EXPECT_EQ(heard, (std::vector<std::string>{"job.queued", "job.started", "progress", "progress",
                                             "job.done"}));
}

TEST_F(JobServiceTest, StopWakesIdleWorkersAndRequeuesInterruptedJobs) {
  auto idle = std::async(std::launch::async, [this] { return service_->next_job("idle"); });
  int64_t id = submit();
  auto claimed = idle.get();
  ASSERT_TRUE(claimed);
  auto waiting = std::async(std::launch::async, [this] { return service_->next_job("w2"); });
  service_->stop();
  EXPECT_FALSE(waiting.get());
  EXPECT_TRUE(claimed->cancel->cancelled());
  NoProgress quiet;
  service_->complete(*claimed, render(*claimed, quiet));  // the generator saw the cancel
  Job j = job(id);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.attempt, 1);
}

TEST_F(JobServiceTest, TheGeneratorsWarningsAreKeptOnceWithTheDoneJob) {
  int64_t id = submit();
  auto claim = service_->next_job("w");
  ASSERT_TRUE(claim);
  NoProgress quiet;
  auto one = render(*claim, quiet);
  auto two = render(*claim, quiet);
  ASSERT_TRUE(one.is_ok() && two.is_ok());
  std::vector<inference::GeneratedImage> images = {(*one)[0], (*two)[0]};
  images[1].seed += 1;
  images[0].warnings = {"LoRA ink: 3 of 40 keys matched no layer", "b"};
  images[1].warnings = {"b", "c"};
  service_->complete(*claim, std::move(images));
  Job done = job(id);
  EXPECT_EQ(done.state, JobState::kDone);
  EXPECT_EQ(done.warnings,
            (std::vector<std::string>{"LoRA ink: 3 of 40 keys matched no layer", "b", "c"}));
  // The job.done event carries them too.
  auto events = in_read([this](store::Db& db) { return pdb::list_events(db, project_, 0, 1000); });
  ASSERT_TRUE(events.is_ok());
  auto data = nlohmann::json::parse(events->back().data_json);
  EXPECT_EQ(events->back().type, "job.done");
  EXPECT_EQ(data["job"]["warnings"].size(), 3u) << data.dump();
}

// A generator that keeps the requests it was given.
class CapturingGenerator : public inference::Generator {
 public:
  explicit CapturingGenerator(std::shared_ptr<std::vector<inference::GenerateRequest>> seen)
      : seen_(std::move(seen)), inner_(inference::make_null_generator()) {}
  const inference::ModelInfo& info() const override { return inner_->info(); }
  Result<std::vector<inference::GeneratedImage>> generate(
      const inference::GenerateRequest& request, inference::ProgressSink& progress,
      const inference::CancelToken& cancel) override {
    seen_->push_back(request);
    auto out = inner_->generate(request, progress, cancel);
    if (out.is_ok()) {
      for (auto& image : *out) image.warnings = {"LoRA ink: 1 of 2 keys matched no layer"};
    }
    return out;
  }

 private:
  std::shared_ptr<std::vector<inference::GenerateRequest>> seen_;
  std::unique_ptr<inference::Generator> inner_;
};

class WorkerPoolRequestTest : public JobServiceTest {
 protected:
  void SetUp() override {
    JobServiceTest::SetUp();
    if (HasFatalFailure()) return;
    auto seen = seen_;
    for (const char* id : {"xl", "broken"}) {
      inference::ModelEntry e = inference::null_model_entry();
      e.info.id = id;
      e.info.family = "sdxl";
      e.info.max_loras = 5;
      e.info.size_conditioning = true;
      e.info.available = std::string(id) == "xl";
      e.info.unavailable_reason = "truncated";
      e.create = [seen](const std::string&) -> Result<std::unique_ptr<inference::Generator>> {
        return std::unique_ptr<inference::Generator>(std::make_unique<CapturingGenerator>(seen));
      };
      ASSERT_TRUE(registry_.add(std::move(e)).is_ok());
    }
    ASSERT_TRUE(registry_.add_lora({"ink", "sdxl", std::string(64, 'b'), true, ""}).is_ok());
    ASSERT_TRUE(registry_.add_lora({"grain", "sdxl", "", false, "no weights"}).is_ok());
    pool_ = std::make_unique<WorkerPool>(*service_, registry_, WorkerPoolOptions{});
    ASSERT_TRUE(pool_->start().is_ok());
  }
  void TearDown() override {
    service_->stop();
    if (pool_) pool_->stop();
    JobServiceTest::TearDown();
  }

  Job wait_finished(int64_t id) {
    for (int i = 0; i < 5000; ++i) {
      Job j = job(id);
      if (is_terminal(j.state)) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "job " << id << " never finished";
    return job(id);
  }

  inference::ModelRegistry registry_;
  std::shared_ptr<std::vector<inference::GenerateRequest>> seen_ =
      std::make_shared<std::vector<inference::GenerateRequest>>();
  std::unique_ptr<WorkerPool> pool_;
};

TEST_F(WorkerPoolRequestTest, TheGeneratorGetsLorasSizeConditioningAndAPromptWithoutTags) {
  JobParams p = test_params();
  p.model = "xl";
  p.prompt = "a cat, <lora:ink:0.5> on a mat";
  p.loras = {{"ink", 0.5}};
  p.size_conditioning = inference::SizeConditioning{2048, 1024, 1024, 512, 0, 64};
  Job done = wait_finished(submit_params(p));
  EXPECT_EQ(done.state, JobState::kDone) << done.error;
  ASSERT_EQ(seen_->size(), 1u);
  const inference::GenerateRequest& r = seen_->front();
  EXPECT_EQ(r.prompt, "a cat,  on a mat");
  EXPECT_EQ(r.loras, (std::vector<inference::LoraRef>{{"ink", 0.5}}));
  EXPECT_EQ(r.size_conditioning, p.size_conditioning);
  EXPECT_EQ(done.params.prompt, "a cat, <lora:ink:0.5> on a mat") << "stored as written";
  EXPECT_EQ(done.warnings, (std::vector<std::string>{"LoRA ink: 1 of 2 keys matched no layer"}));
}

TEST_F(WorkerPoolRequestTest, AJobWhoseModelOrLoraWentAwayFailsWithTheReason) {
  JobParams p = test_params();
  p.model = "broken";
  Job a = wait_finished(submit_params(p));
  EXPECT_EQ(a.state, JobState::kFailed);
  EXPECT_NE(a.error.find("'broken' is unavailable: truncated"), std::string::npos) << a.error;
  p.model = "xl";
  p.loras = {{"gone", 1}};
  Job b = wait_finished(submit_params(p));
  EXPECT_EQ(b.state, JobState::kFailed);
  EXPECT_NE(b.error.find("LoRA 'gone' is no longer offered"), std::string::npos) << b.error;
  p.loras = {{"grain", 1}};
  Job c = wait_finished(submit_params(p));
  EXPECT_EQ(c.state, JobState::kFailed);
  EXPECT_NE(c.error.find("LoRA 'grain' is unavailable: no weights"), std::string::npos) << c.error;
  EXPECT_TRUE(seen_->empty()) << "the generator never ran";
}

}  // namespace
}  // namespace atelier::jobs
