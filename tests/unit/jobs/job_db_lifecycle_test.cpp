// job_db, one job's life against a real Store: every field round-trips, and every state change is
// fenced by the job's state and attempt, so a stale worker changes nothing.
#include "tests/unit/jobs/job_db_fixture.h"

namespace atelier::jobs::jobdbtest {
namespace {

// ---------------------------------------------------------------------------------------------
// insert / find

TEST_F(JobDbTest, InsertAndFindRoundTripEveryField) {
  Job parent_job = done_job(project_, 1, 1);
  ASSERT_EQ(parent_job.images.size(), 1u);
  int64_t parent_image = parent_job.images[0].id;

  JobParams p;
  p.model = "cppn";
  p.prompt = "a red\nfox, \"quoted\" ünïcödé";
  p.negative_prompt = "blurry, low quality";
  p.width = 512;
  p.height = 768;
  p.steps = 37;
  p.guidance = 7.25;
  p.seed = 9'007'199'254'740'991;
  p.count = 3;
  p.sampler = "smooth";
  p.mode = inference::Mode::kRemix;
  p.strength = 0.35;
  p.parent_image_id = parent_image;
  p.priority = -7;
  job_db::NewJob nj;
  nj.project_id = project_;
  nj.submitted_by = bob_;
  nj.params = p;
  nj.max_attempts = 5;
  auto id = try_insert(nj, kNow + 123ms);
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();

  Job j = must_find(*id);
  EXPECT_EQ(j.id, *id);
  EXPECT_EQ(j.project_id, project_);
  EXPECT_EQ(j.submitted_by, std::optional<int64_t>(bob_));
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.params.model, "cppn");
  EXPECT_EQ(j.params.prompt, p.prompt);
  EXPECT_EQ(j.params.negative_prompt, "blurry, low quality");
  EXPECT_EQ(j.params.width, 512);
  EXPECT_EQ(j.params.height, 768);
  EXPECT_EQ(j.params.steps, 37);
  EXPECT_DOUBLE_EQ(j.params.guidance, 7.25);
  EXPECT_EQ(j.params.seed, 9'007'199'254'740'991);
  EXPECT_EQ(j.params.count, 3);
  EXPECT_EQ(j.params.sampler, "smooth");
  EXPECT_EQ(j.params.mode, inference::Mode::kRemix);
  EXPECT_DOUBLE_EQ(j.params.strength, 0.35);
  EXPECT_EQ(j.params.parent_image_id, std::optional<int64_t>(parent_image));
  EXPECT_EQ(j.params.priority, -7);
  EXPECT_EQ(j.attempt, 0);
  EXPECT_EQ(j.max_attempts, 5);
  EXPECT_EQ(j.worker, "");
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_EQ(j.progress_step, 0);
  EXPECT_FALSE(j.cancel_requested);
  EXPECT_EQ(j.error, "");
  EXPECT_EQ(j.created_at, kNow + 123ms);
  EXPECT_EQ(j.queued_at, kNow + 123ms);
  EXPECT_EQ(j.updated_at, kNow + 123ms);
  EXPECT_EQ(j.started_at, std::nullopt);
  EXPECT_EQ(j.finished_at, std::nullopt);
  EXPECT_TRUE(j.images.empty());
  EXPECT_EQ(j.position, std::nullopt);
}

TEST_F(JobDbTest, InsertRoundTripsTxt2ImgWithoutParentOrNegativePrompt) {
  JobParams p = basic_params();
  p.seed = -5;  // whatever the layer above chose, stored as is
  p.guidance = 0.1;
  int64_t id = insert(p);
  Job j = must_find(id);
  EXPECT_EQ(j.params.mode, inference::Mode::kTxt2Img);
  EXPECT_EQ(j.params.parent_image_id, std::nullopt);
  EXPECT_EQ(j.params.negative_prompt, "");
  EXPECT_EQ(j.params.seed, -5);
  EXPECT_DOUBLE_EQ(j.params.guidance, 0.1);
}

TEST_F(JobDbTest, EveryModeRoundTrips) {
  Job parent = done_job(project_, 1, 1);
  for (inference::Mode m :
       {inference::Mode::kVariation, inference::Mode::kRemix, inference::Mode::kUpscale}) {
    JobParams p = basic_params();
    p.mode = m;
    p.parent_image_id = parent.images[0].id;
    EXPECT_EQ(must_find(insert(p)).params.mode, m) << inference::mode_name(m);
  }
}

TEST_F(JobDbTest, InsertIdsIncrease) {
  int64_t a = insert();
  int64_t b = insert();
  EXPECT_GT(a, 0);
  EXPECT_GT(b, a);
}

TEST_F(JobDbTest, InsertRefusesAnUnknownProject) {
  job_db::NewJob j;
  j.project_id = 9999;
  j.submitted_by = alice_;
  j.params = basic_params();
  EXPECT_FALSE(try_insert(j).is_ok());
}

TEST_F(JobDbTest, FindUnknownJobIsNotFound) {
  auto j = in_read([](Db& db) { return job_db::find_job(db, 4242); });
  EXPECT_EQ(j.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(j.status().message(), "no such job");
}

// ---------------------------------------------------------------------------------------------
// claim

TEST_F(JobDbTest, ClaimMovesQueuedToRunning) {
  int64_t id = insert();
  std::optional<Job> c = claim(id, "gpu-0", kNow + 5000ms, kNow + 7ms);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->id, id);
  EXPECT_EQ(c->state, JobState::kRunning);
  EXPECT_EQ(c->attempt, 1);
  EXPECT_EQ(c->worker, "gpu-0");
  EXPECT_EQ(c->lease_until, std::optional<SysTime>(kNow + 5000ms));
  EXPECT_EQ(c->started_at, std::optional<SysTime>(kNow + 7ms));
  EXPECT_EQ(c->updated_at, kNow + 7ms);
  EXPECT_EQ(c->progress_step, 0);
  EXPECT_EQ(c->params.prompt, "a cat");  // the whole row comes back
  // And the row says the same.
  Job stored = must_find(id);
  EXPECT_EQ(stored.state, JobState::kRunning);
  EXPECT_EQ(stored.attempt, 1);
  EXPECT_EQ(stored.worker, "gpu-0");
  EXPECT_EQ(stored.lease_until, std::optional<SysTime>(kNow + 5000ms));
}

TEST_F(JobDbTest, ClaimOnlyFromQueued) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id).has_value());
  EXPECT_FALSE(claim(id, "w2").has_value());  // already running
  Job after = must_find(id);
  EXPECT_EQ(after.attempt, 1);
  EXPECT_EQ(after.worker, "w1");

  int64_t cancelled = insert();
  ASSERT_TRUE(cancel_queued(cancelled));
  EXPECT_FALSE(claim(cancelled).has_value());
  EXPECT_EQ(must_find(cancelled).state, JobState::kCancelled);
  EXPECT_EQ(must_find(cancelled).attempt, 0);

  ASSERT_TRUE(finish(id, 1, JobState::kDone));
  EXPECT_FALSE(claim(id).has_value());
  EXPECT_EQ(must_find(id).state, JobState::kDone);

  EXPECT_FALSE(claim(4242).has_value());  // no such job
}

TEST_F(JobDbTest, EachClaimIncrementsTheAttempt) {
  int64_t id = insert();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::optional<Job> c = claim(id, "w" + std::to_string(attempt));
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->attempt, attempt);
    ASSERT_TRUE(requeue(id, attempt));
  }
}

// ---------------------------------------------------------------------------------------------
// extend_lease

TEST_F(JobDbTest, ExtendLeaseWithTheCurrentAttempt) {
  int64_t id = insert();
  std::optional<Job> c = claim(id);
  ASSERT_TRUE(c);
  job_db::LeaseCheck check = extend(id, c->attempt, kNow + 9000ms, 3, kNow + 21ms);
  EXPECT_TRUE(check.held);
  EXPECT_FALSE(check.cancel_requested);
  Job j = must_find(id);
  EXPECT_EQ(j.lease_until, std::optional<SysTime>(kNow + 9000ms));
  EXPECT_EQ(j.progress_step, 3);
  EXPECT_EQ(j.updated_at, kNow + 21ms);
}

TEST_F(JobDbTest, ExtendLeaseWithAStaleAttemptChangesNothing) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(requeue(id, 1));
  std::optional<Job> c2 = claim(id, "w2", kNow + 1000ms);
  ASSERT_TRUE(c2);
  ASSERT_EQ(c2->attempt, 2);
  Job before = must_find(id);

  job_db::LeaseCheck stale = extend(id, 1, kNow + 99'000ms, 4);
  EXPECT_FALSE(stale.held);
  EXPECT_FALSE(stale.cancel_requested);
  Job after = must_find(id);
  EXPECT_EQ(after.lease_until, before.lease_until);
  EXPECT_EQ(after.progress_step, before.progress_step);
  EXPECT_EQ(after.updated_at, before.updated_at);

  EXPECT_FALSE(extend(id, 3, kNow + 99'000ms, 4).held);  // a future attempt is no better
  EXPECT_TRUE(extend(id, 2, kNow + 99'000ms, 4).held);
}

TEST_F(JobDbTest, ExtendLeaseOfAJobNoLongerRunningIsNotHeld) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(finish(id, 1, JobState::kFailed, "boom"));
  EXPECT_FALSE(extend(id, 1, kNow + 9000ms, 1).held);
  EXPECT_FALSE(extend(4242, 1, kNow + 9000ms, 1).held);
  int64_t queued = insert();
  EXPECT_FALSE(extend(queued, 0, kNow + 9000ms, 1).held);
  EXPECT_EQ(must_find(queued).lease_until, std::nullopt);
}

TEST_F(JobDbTest, ExtendLeaseReportsACancelRequest) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(request_cancel(id));
  job_db::LeaseCheck check = extend(id, 1, kNow + 9000ms, 2);
  EXPECT_TRUE(check.held);
  EXPECT_TRUE(check.cancel_requested);
}

// ---------------------------------------------------------------------------------------------
// finish

TEST_F(JobDbTest, FinishDoneSetsProgressToStepsAndClearsTheLease) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  extend(id, 1, kNow + 9000ms, 2);
  EXPECT_TRUE(finish(id, 1, JobState::kDone, "", kNow + 33ms));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kDone);
  EXPECT_EQ(j.progress_step, 5);  // = steps
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_EQ(j.finished_at, std::optional<SysTime>(kNow + 33ms));
  EXPECT_EQ(j.updated_at, kNow + 33ms);
  EXPECT_EQ(j.error, "");
  EXPECT_EQ(j.attempt, 1);
}

TEST_F(JobDbTest, FinishFailedKeepsProgressAndRecordsTheError) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  extend(id, 1, kNow + 9000ms, 2);
  EXPECT_TRUE(finish(id, 1, JobState::kFailed, "out of memory", kNow + 34ms));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.progress_step, 2);
  EXPECT_EQ(j.error, "out of memory");
  EXPECT_EQ(j.finished_at, std::optional<SysTime>(kNow + 34ms));
  EXPECT_EQ(j.lease_until, std::nullopt);
}

TEST_F(JobDbTest, FinishCancelled) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  EXPECT_TRUE(finish(id, 1, JobState::kCancelled));
  EXPECT_EQ(must_find(id).state, JobState::kCancelled);
}

TEST_F(JobDbTest, FinishWithAStaleAttemptChangesNothing) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(requeue(id, 1));
  ASSERT_TRUE(claim(id, "w2"));
  extend(id, 2, kNow + 9000ms, 1);
  Job before = must_find(id);

  EXPECT_FALSE(finish(id, 1, JobState::kDone, "", kNow + 99ms));
  Job after = must_find(id);
  EXPECT_EQ(after.state, JobState::kRunning);
  EXPECT_EQ(after.progress_step, before.progress_step);
  EXPECT_EQ(after.lease_until, before.lease_until);
  EXPECT_EQ(after.finished_at, std::nullopt);
  EXPECT_EQ(after.updated_at, before.updated_at);

  EXPECT_FALSE(finish(id, 1, JobState::kFailed, "late failure"));
  EXPECT_EQ(must_find(id).error, "");
  EXPECT_TRUE(finish(id, 2, JobState::kDone));
}

TEST_F(JobDbTest, FinishOnlyFromRunning) {
  int64_t queued = insert();
  EXPECT_FALSE(finish(queued, 0, JobState::kDone));
  EXPECT_EQ(must_find(queued).state, JobState::kQueued);

  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(finish(id, 1, JobState::kFailed, "first", kNow + 30ms));
  // A second finish of the same attempt (a duplicate completion) does not overwrite the first.
  EXPECT_FALSE(finish(id, 1, JobState::kDone, "", kNow + 99ms));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.error, "first");
  EXPECT_EQ(j.finished_at, std::optional<SysTime>(kNow + 30ms));

  EXPECT_FALSE(finish(4242, 1, JobState::kDone));
}

// ---------------------------------------------------------------------------------------------
// release / requeue

TEST_F(JobDbTest, ReleaseRequeuesWhileAttemptsRemain) {
  int64_t id = insert(basic_params(), kNow, std::nullopt, std::nullopt, /*max_attempts=*/3);
  std::optional<Job> c = claim(id);
  ASSERT_TRUE(c);
  extend(id, 1, kNow + 9000ms, 3);
  EXPECT_EQ(release(*c, "worker lost", kNow + 44ms), std::optional<JobState>(JobState::kQueued));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.attempt, 1);  // the attempt was used
  EXPECT_EQ(j.worker, "");
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_EQ(j.progress_step, 0);
  EXPECT_EQ(j.queued_at, kNow + 44ms);
  EXPECT_EQ(j.updated_at, kNow + 44ms);
  EXPECT_EQ(j.finished_at, std::nullopt);
  EXPECT_EQ(j.error, "");
  EXPECT_EQ(j.created_at, kNow);
}

TEST_F(JobDbTest, ReleaseFailsTheJobOnceAttemptsAreUsedUp) {
  int64_t id = insert(basic_params(), kNow, std::nullopt, std::nullopt, /*max_attempts=*/2);
  std::optional<Job> c1 = claim(id);
  ASSERT_TRUE(c1);
  ASSERT_EQ(release(*c1, "lease expired"), std::optional<JobState>(JobState::kQueued));
  std::optional<Job> c2 = claim(id);
  ASSERT_TRUE(c2);
  ASSERT_EQ(c2->attempt, 2);
  EXPECT_EQ(release(*c2, "lease expired", kNow + 45ms), std::optional<JobState>(JobState::kFailed));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_NE(j.error.find("lease expired"), std::string::npos) << j.error;
  EXPECT_EQ(j.finished_at, std::optional<SysTime>(kNow + 45ms));
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_FALSE(claim(id).has_value());
}

TEST_F(JobDbTest, ReleaseWithOneAttemptFailsAtOnce) {
  int64_t id = insert(basic_params(), kNow, std::nullopt, std::nullopt, /*max_attempts=*/1);
  std::optional<Job> c = claim(id);
  ASSERT_TRUE(c);
  EXPECT_EQ(release(*c, "crashed"), std::optional<JobState>(JobState::kFailed));
  EXPECT_NE(must_find(id).error.find("crashed"), std::string::npos);
}

TEST_F(JobDbTest, ReleaseCancelsWhenACancelWasRequested) {
  int64_t id = insert(basic_params(), kNow, std::nullopt, std::nullopt, /*max_attempts=*/3);
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(request_cancel(id));
  Job running = must_find(id);  // as the reaper reads it
  ASSERT_TRUE(running.cancel_requested);
  EXPECT_EQ(release(running, "worker lost", kNow + 46ms),
            std::optional<JobState>(JobState::kCancelled));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kCancelled);
  EXPECT_EQ(j.finished_at, std::optional<SysTime>(kNow + 46ms));
  EXPECT_EQ(j.lease_until, std::nullopt);
}

TEST_F(JobDbTest, ReleaseOfAStaleAttemptChangesNothing) {
  int64_t id = insert();
  std::optional<Job> c1 = claim(id);
  ASSERT_TRUE(c1);
  ASSERT_TRUE(requeue(id, 1));
  ASSERT_TRUE(claim(id, "w2"));
  Job before = must_find(id);
  EXPECT_EQ(release(*c1, "stale"), std::nullopt);
  Job after = must_find(id);
  EXPECT_EQ(after.state, JobState::kRunning);
  EXPECT_EQ(after.attempt, 2);
  EXPECT_EQ(after.worker, "w2");
  EXPECT_EQ(after.lease_until, before.lease_until);

  // Nor when the job is no longer running.
  ASSERT_TRUE(finish(id, 2, JobState::kDone));
  Job done = must_find(id);
  Job as_running = done;
  as_running.state = JobState::kRunning;
  EXPECT_EQ(release(as_running, "late"), std::nullopt);
  EXPECT_EQ(must_find(id).state, JobState::kDone);
}

TEST_F(JobDbTest, RequeueKeepsTheAttemptCount) {
  int64_t id = insert(basic_params(), kNow, std::nullopt, std::nullopt, /*max_attempts=*/1);
  ASSERT_TRUE(claim(id));
  extend(id, 1, kNow + 9000ms, 4);
  EXPECT_TRUE(requeue(id, 1, kNow + 55ms));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.attempt, 1);
  EXPECT_EQ(j.worker, "");
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_EQ(j.progress_step, 0);
  EXPECT_EQ(j.queued_at, kNow + 55ms);
  EXPECT_EQ(j.updated_at, kNow + 55ms);
  // Claimable again although max_attempts is 1: a requeue does not count as a failure.
  std::optional<Job> again = claim(id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempt, 2);
}

TEST_F(JobDbTest, RequeueOnlyTheCurrentRunningAttempt) {
  int64_t id = insert();
  EXPECT_FALSE(requeue(id, 0));  // queued, not running
  ASSERT_TRUE(claim(id));
  EXPECT_FALSE(requeue(id, 2));  // wrong attempt
  EXPECT_EQ(must_find(id).state, JobState::kRunning);
  EXPECT_TRUE(requeue(id, 1));
  EXPECT_FALSE(requeue(id, 1));  // already queued
  EXPECT_FALSE(requeue(4242, 1));
}

// ---------------------------------------------------------------------------------------------
// cancellation

TEST_F(JobDbTest, CancelQueuedOnlyFromQueued) {
  int64_t id = insert();
  EXPECT_TRUE(cancel_queued(id, kNow + 61ms));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kCancelled);
  EXPECT_EQ(j.finished_at, std::optional<SysTime>(kNow + 61ms));
  EXPECT_EQ(j.updated_at, kNow + 61ms);
  EXPECT_FALSE(cancel_queued(id));  // already cancelled

  int64_t running = insert();
  ASSERT_TRUE(claim(running));
  EXPECT_FALSE(cancel_queued(running));
  EXPECT_EQ(must_find(running).state, JobState::kRunning);
  EXPECT_FALSE(cancel_queued(4242));
}

TEST_F(JobDbTest, RequestCancelOnlyFromRunning) {
  int64_t queued = insert();
  EXPECT_FALSE(request_cancel(queued));
  EXPECT_FALSE(must_find(queued).cancel_requested);

  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  EXPECT_TRUE(request_cancel(id, kNow + 71ms));
  Job j = must_find(id);
  EXPECT_TRUE(j.cancel_requested);
  EXPECT_EQ(j.state, JobState::kRunning);  // the worker stops it at its next step
  EXPECT_EQ(j.updated_at, kNow + 71ms);

  ASSERT_TRUE(finish(id, 1, JobState::kCancelled));
  EXPECT_FALSE(request_cancel(id));
  EXPECT_FALSE(request_cancel(4242));
}

}  // namespace
}  // namespace atelier::jobs::jobdbtest
