// job_db against a real Store: every field round-trips, and every state change is fenced by the
// job's state and attempt, so a stale worker changes nothing.
#include "server/jobs/job_db.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "server/auth/account_db.h"
#include "server/projects/project_db.h"
#include "server/store/store.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace atelier::jobs {
namespace {

using store::Db;
namespace adb = auth::account_db;
namespace pdb = projects::project_db;

constexpr int64_t kNow = 1'764'139'999'000;  // Unix ms

std::string sha_of(int n) {
  std::string s = std::to_string(n);
  return std::string(64 - s.size(), 'a') + s;
}

JobParams basic_params() {
  JobParams p;
  p.model = "null";
  p.prompt = "a cat";
  p.width = 64;
  p.height = 32;
  p.steps = 5;
  p.guidance = 7;
  p.seed = 42;
  p.count = 2;
  p.sampler = "none";
  return p;
}

// One Store for the whole suite: opening one costs several fsyncs, and with a fresh database
// per test this suite would take seconds. Instead every test starts from empty jobs and images
// tables (SetUp deletes them) and the same two users and two projects.
class JobDbTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = std::make_unique<testing::TempDir>("atelier-job-db-test");
    auto store = store::Store::open({.path = *tmp_ / "atelier.db"});
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
    Status st = store_->write([](Db& db) -> Status {
      auto alice = adb::insert_user(db, "alice", "h", false, 1);
      if (!alice.is_ok()) return alice.status();
      auto bob = adb::insert_user(db, "bob", "h", false, 1);
      if (!bob.is_ok()) return bob.status();
      auto p1 = pdb::insert_project(db, "p1", "", alice->id, 1);
      if (!p1.is_ok()) return p1.status();
      auto p2 = pdb::insert_project(db, "p2", "", alice->id, 1);
      if (!p2.is_ok()) return p2.status();
      alice_ = alice->id;
      bob_ = bob->id;
      project_ = p1->id;
      other_project_ = p2->id;
      return Status::ok();
    });
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }

  static void TearDownTestSuite() {
    store_.reset();  // closes the database before its directory goes
    tmp_.reset();
  }

  void SetUp() override {
    ASSERT_NE(store_, nullptr) << "the suite's store did not open";
    Status st = store_->write([](Db& db) -> Status {
      ATELIER_RETURN_IF_ERROR(db.exec("DELETE FROM images"));
      return db.exec("DELETE FROM jobs");
    });
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }

  // Runs `fn` in a write transaction (committed when it returns OK) and returns what it returned,
  // or the commit's error (as StoreFixture::in_write does).
  template <typename Fn>
  static std::invoke_result_t<Fn, Db&> in_write(Fn fn) {
    return capture(fn, [](auto txn) { return store_->write(std::move(txn)); });
  }
  // Runs `fn` on a read-only connection and returns what it returned.
  template <typename Fn>
  static std::invoke_result_t<Fn, Db&> in_read(Fn fn) {
    return capture(fn, [](auto txn) { return store_->read(txn); });
  }

  Result<int64_t> try_insert(const job_db::NewJob& j, int64_t now = kNow) {
    return in_write([&](Db& db) { return job_db::insert_job(db, j, now); });
  }

  int64_t insert(JobParams params = basic_params(), int64_t now = kNow,
                 std::optional<int64_t> project = std::nullopt,
                 std::optional<int64_t> user = std::nullopt, int max_attempts = 3) {
    job_db::NewJob j;
    j.project_id = project.value_or(project_);
    j.submitted_by = user.value_or(alice_);
    j.params = std::move(params);
    j.max_attempts = max_attempts;
    auto id = try_insert(j, now);
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return id.is_ok() ? *id : 0;
  }

  std::optional<Job> find(int64_t id) {
    auto j = in_read([id](Db& db) { return job_db::find_job(db, id); });
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    return j.is_ok() ? *j : std::nullopt;
  }

  Job must_find(int64_t id) {
    std::optional<Job> j = find(id);
    EXPECT_TRUE(j.has_value()) << "job " << id;
    return j.value_or(Job{});
  }

  std::optional<Job> claim(int64_t id, const std::string& worker = "w1",
                           int64_t lease_until = kNow + 1000, int64_t now = kNow + 10) {
    auto j = in_write([&](Db& db) { return job_db::claim(db, id, worker, lease_until, now); });
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    return j.is_ok() ? *j : std::nullopt;
  }

  job_db::LeaseCheck extend(int64_t id, int attempt, int64_t lease_until, int step,
                            int64_t now = kNow + 20) {
    auto r = in_write(
        [&](Db& db) { return job_db::extend_lease(db, id, attempt, lease_until, step, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : job_db::LeaseCheck{};
  }

  bool finish(int64_t id, int attempt, JobState to, const std::string& error = "",
              int64_t now = kNow + 30) {
    auto r = in_write([&](Db& db) { return job_db::finish(db, id, attempt, to, error, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  std::optional<JobState> release(const Job& job, const std::string& reason,
                                  int64_t now = kNow + 40) {
    auto r = in_write([&](Db& db) { return job_db::release(db, job, reason, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : std::nullopt;
  }

  bool requeue(int64_t id, int attempt, int64_t now = kNow + 50) {
    auto r = in_write([&](Db& db) { return job_db::requeue(db, id, attempt, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  bool cancel_queued(int64_t id, int64_t now = kNow + 60) {
    auto r = in_write([&](Db& db) { return job_db::cancel_queued(db, id, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  bool request_cancel(int64_t id, int64_t now = kNow + 70) {
    auto r = in_write([&](Db& db) { return job_db::request_cancel(db, id, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  int64_t add_image(const Job& job, int idx, const std::string& sha, int64_t now = kNow + 25,
                    int width = 64, int height = 32, const std::string& lineage = "null1;0") {
    NewImage img;
    img.idx = idx;
    img.sha256 = sha;
    img.bytes = 1000 + idx;
    img.width = width;
    img.height = height;
    img.seed = job.params.seed + idx;
    img.lineage = lineage;
    auto id = in_write([&](Db& db) { return job_db::insert_image(db, job, img, now); });
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return id.is_ok() ? *id : 0;
  }

  // A done job in `project` with `count` images (sha_of(first_sha + idx)), made in one
  // transaction; returns the job with its images.
  Job done_job(int64_t project, int count, int first_sha, JobParams params = basic_params()) {
    params.count = count;
    auto id = in_write([&](Db& db) -> Result<int64_t> {
      job_db::NewJob nj;
      nj.project_id = project;
      nj.submitted_by = alice_;
      nj.params = params;
      auto job_id = job_db::insert_job(db, nj, kNow);
      if (!job_id.is_ok()) return job_id.status();
      auto claimed = job_db::claim(db, *job_id, "w1", kNow + 1000, kNow + 10);
      if (!claimed.is_ok()) return claimed.status();
      if (!*claimed) return Status::internal("not claimed");
      for (int i = 0; i < count; ++i) {
        NewImage img;
        img.idx = i;
        img.sha256 = sha_of(first_sha + i);
        img.bytes = 1000 + i;
        img.width = params.width;
        img.height = params.height;
        img.seed = params.seed + i;
        img.lineage = "null1;0";
        auto image_id = job_db::insert_image(db, **claimed, img, kNow + 25);
        if (!image_id.is_ok()) return image_id.status();
      }
      auto finished = job_db::finish(db, *job_id, 1, JobState::kDone, "", kNow + 30);
      if (!finished.is_ok()) return finished.status();
      if (!*finished) return Status::internal("not finished");
      return *job_id;
    });
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return id.is_ok() ? must_find(*id) : Job{};
  }

  std::vector<int64_t> list_ids(std::optional<JobState> state, int64_t limit,
                                std::optional<int64_t> before, int64_t project = 0) {
    auto jobs = in_read([&](Db& db) {
      return job_db::list_jobs(db, project ? project : project_, state, limit, before);
    });
    EXPECT_TRUE(jobs.is_ok()) << jobs.status().to_string();
    std::vector<int64_t> out;
    if (jobs.is_ok()) {
      for (const Job& j : *jobs) out.push_back(j.id);
    }
    return out;
  }

  static std::vector<int64_t> ids_of(const std::vector<Job>& jobs) {
    std::vector<int64_t> out;
    for (const Job& j : jobs) out.push_back(j.id);
    return out;
  }

  static std::vector<int64_t> image_ids(const std::vector<ImageRecord>& images) {
    std::vector<int64_t> out;
    for (const ImageRecord& i : images) out.push_back(i.id);
    return out;
  }

  static inline std::unique_ptr<testing::TempDir> tmp_;
  static inline std::unique_ptr<store::Store> store_;
  static inline int64_t alice_ = 0;
  static inline int64_t bob_ = 0;
  static inline int64_t project_ = 0;
  static inline int64_t other_project_ = 0;

 private:
  template <typename Fn, typename Submit>
  static std::invoke_result_t<Fn, Db&> capture(Fn& fn, Submit submit) {
    using R = std::invoke_result_t<Fn, Db&>;
    std::optional<R> out;
    Status st = submit([&](Db& db) {
      out.emplace(fn(db));
      return testing::status_of(*out);
    });
    if (!out || (testing::status_of(*out).is_ok() && !st.is_ok())) return R(st);
    return std::move(*out);
  }
};

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
  auto id = try_insert(nj, kNow + 123);
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
  EXPECT_EQ(j.created_at, kNow + 123);
  EXPECT_EQ(j.queued_at, kNow + 123);
  EXPECT_EQ(j.updated_at, kNow + 123);
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

TEST_F(JobDbTest, FindUnknownJobIsNullopt) {
  auto j = in_read([](Db& db) { return job_db::find_job(db, 4242); });
  ASSERT_TRUE(j.is_ok());
  EXPECT_FALSE(j->has_value());
}

// ---------------------------------------------------------------------------------------------
// claim

TEST_F(JobDbTest, ClaimMovesQueuedToRunning) {
  int64_t id = insert();
  std::optional<Job> c = claim(id, "gpu-0", kNow + 5000, kNow + 7);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->id, id);
  EXPECT_EQ(c->state, JobState::kRunning);
  EXPECT_EQ(c->attempt, 1);
  EXPECT_EQ(c->worker, "gpu-0");
  EXPECT_EQ(c->lease_until, std::optional<int64_t>(kNow + 5000));
  EXPECT_EQ(c->started_at, std::optional<int64_t>(kNow + 7));
  EXPECT_EQ(c->updated_at, kNow + 7);
  EXPECT_EQ(c->progress_step, 0);
  EXPECT_EQ(c->params.prompt, "a cat");  // the whole row comes back
  // And the row says the same.
  Job stored = must_find(id);
  EXPECT_EQ(stored.state, JobState::kRunning);
  EXPECT_EQ(stored.attempt, 1);
  EXPECT_EQ(stored.worker, "gpu-0");
  EXPECT_EQ(stored.lease_until, std::optional<int64_t>(kNow + 5000));
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
  job_db::LeaseCheck check = extend(id, c->attempt, kNow + 9000, 3, kNow + 21);
  EXPECT_TRUE(check.held);
  EXPECT_FALSE(check.cancel_requested);
  Job j = must_find(id);
  EXPECT_EQ(j.lease_until, std::optional<int64_t>(kNow + 9000));
  EXPECT_EQ(j.progress_step, 3);
  EXPECT_EQ(j.updated_at, kNow + 21);
}

TEST_F(JobDbTest, ExtendLeaseWithAStaleAttemptChangesNothing) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(requeue(id, 1));
  std::optional<Job> c2 = claim(id, "w2", kNow + 1000);
  ASSERT_TRUE(c2);
  ASSERT_EQ(c2->attempt, 2);
  Job before = must_find(id);

  job_db::LeaseCheck stale = extend(id, 1, kNow + 99'000, 4);
  EXPECT_FALSE(stale.held);
  EXPECT_FALSE(stale.cancel_requested);
  Job after = must_find(id);
  EXPECT_EQ(after.lease_until, before.lease_until);
  EXPECT_EQ(after.progress_step, before.progress_step);
  EXPECT_EQ(after.updated_at, before.updated_at);

  EXPECT_FALSE(extend(id, 3, kNow + 99'000, 4).held);  // a future attempt is no better
  EXPECT_TRUE(extend(id, 2, kNow + 99'000, 4).held);
}

TEST_F(JobDbTest, ExtendLeaseOfAJobNoLongerRunningIsNotHeld) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(finish(id, 1, JobState::kFailed, "boom"));
  EXPECT_FALSE(extend(id, 1, kNow + 9000, 1).held);
  EXPECT_FALSE(extend(4242, 1, kNow + 9000, 1).held);
  int64_t queued = insert();
  EXPECT_FALSE(extend(queued, 0, kNow + 9000, 1).held);
  EXPECT_EQ(must_find(queued).lease_until, std::nullopt);
}

TEST_F(JobDbTest, ExtendLeaseReportsACancelRequest) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  ASSERT_TRUE(request_cancel(id));
  job_db::LeaseCheck check = extend(id, 1, kNow + 9000, 2);
  EXPECT_TRUE(check.held);
  EXPECT_TRUE(check.cancel_requested);
}

// ---------------------------------------------------------------------------------------------
// finish

TEST_F(JobDbTest, FinishDoneSetsProgressToStepsAndClearsTheLease) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  extend(id, 1, kNow + 9000, 2);
  EXPECT_TRUE(finish(id, 1, JobState::kDone, "", kNow + 33));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kDone);
  EXPECT_EQ(j.progress_step, 5);  // = steps
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_EQ(j.finished_at, std::optional<int64_t>(kNow + 33));
  EXPECT_EQ(j.updated_at, kNow + 33);
  EXPECT_EQ(j.error, "");
  EXPECT_EQ(j.attempt, 1);
}

TEST_F(JobDbTest, FinishFailedKeepsProgressAndRecordsTheError) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  extend(id, 1, kNow + 9000, 2);
  EXPECT_TRUE(finish(id, 1, JobState::kFailed, "out of memory", kNow + 34));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.progress_step, 2);
  EXPECT_EQ(j.error, "out of memory");
  EXPECT_EQ(j.finished_at, std::optional<int64_t>(kNow + 34));
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
  extend(id, 2, kNow + 9000, 1);
  Job before = must_find(id);

  EXPECT_FALSE(finish(id, 1, JobState::kDone, "", kNow + 99));
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
  ASSERT_TRUE(finish(id, 1, JobState::kFailed, "first", kNow + 30));
  // A second finish of the same attempt (a duplicate completion) does not overwrite the first.
  EXPECT_FALSE(finish(id, 1, JobState::kDone, "", kNow + 99));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.error, "first");
  EXPECT_EQ(j.finished_at, std::optional<int64_t>(kNow + 30));

  EXPECT_FALSE(finish(4242, 1, JobState::kDone));
}

// ---------------------------------------------------------------------------------------------
// release / requeue

TEST_F(JobDbTest, ReleaseRequeuesWhileAttemptsRemain) {
  int64_t id = insert(basic_params(), kNow, std::nullopt, std::nullopt, /*max_attempts=*/3);
  std::optional<Job> c = claim(id);
  ASSERT_TRUE(c);
  extend(id, 1, kNow + 9000, 3);
  EXPECT_EQ(release(*c, "worker lost", kNow + 44), std::optional<JobState>(JobState::kQueued));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.attempt, 1);  // the attempt was used
  EXPECT_EQ(j.worker, "");
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_EQ(j.progress_step, 0);
  EXPECT_EQ(j.queued_at, kNow + 44);
  EXPECT_EQ(j.updated_at, kNow + 44);
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
  EXPECT_EQ(release(*c2, "lease expired", kNow + 45), std::optional<JobState>(JobState::kFailed));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_NE(j.error.find("lease expired"), std::string::npos) << j.error;
  EXPECT_EQ(j.finished_at, std::optional<int64_t>(kNow + 45));
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
  EXPECT_EQ(release(running, "worker lost", kNow + 46),
            std::optional<JobState>(JobState::kCancelled));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kCancelled);
  EXPECT_EQ(j.finished_at, std::optional<int64_t>(kNow + 46));
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
  extend(id, 1, kNow + 9000, 4);
  EXPECT_TRUE(requeue(id, 1, kNow + 55));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.attempt, 1);
  EXPECT_EQ(j.worker, "");
  EXPECT_EQ(j.lease_until, std::nullopt);
  EXPECT_EQ(j.progress_step, 0);
  EXPECT_EQ(j.queued_at, kNow + 55);
  EXPECT_EQ(j.updated_at, kNow + 55);
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
  EXPECT_TRUE(cancel_queued(id, kNow + 61));
  Job j = must_find(id);
  EXPECT_EQ(j.state, JobState::kCancelled);
  EXPECT_EQ(j.finished_at, std::optional<int64_t>(kNow + 61));
  EXPECT_EQ(j.updated_at, kNow + 61);
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
  EXPECT_TRUE(request_cancel(id, kNow + 71));
  Job j = must_find(id);
  EXPECT_TRUE(j.cancel_requested);
  EXPECT_EQ(j.state, JobState::kRunning);  // the worker stops it at its next step
  EXPECT_EQ(j.updated_at, kNow + 71);

  ASSERT_TRUE(finish(id, 1, JobState::kCancelled));
  EXPECT_FALSE(request_cancel(id));
  EXPECT_FALSE(request_cancel(4242));
}

// ---------------------------------------------------------------------------------------------
// queries over many jobs

TEST_F(JobDbTest, ExpiredLeasesAreRunningJobsWhoseLeaseEndedBeforeNow) {
  int64_t a = insert();
  int64_t b = insert();
  int64_t c = insert();
  int64_t queued = insert();
  (void)queued;
  ASSERT_TRUE(claim(a, "w", kNow + 100));
  ASSERT_TRUE(claim(b, "w", kNow + 200));
  ASSERT_TRUE(claim(c, "w", kNow + 50));
  ASSERT_TRUE(finish(c, 1, JobState::kFailed, "x"));  // lease cleared, not running anyway

  auto at = [&](int64_t now) {
    auto r = in_read([&](Db& db) { return job_db::expired_leases(db, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? ids_of(*r) : std::vector<int64_t>{};
  };
  EXPECT_EQ(at(kNow + 100), std::vector<int64_t>{});  // a lease ending now is still held
  EXPECT_EQ(at(kNow + 101), std::vector<int64_t>{a});
  EXPECT_EQ(at(kNow + 1000), (std::vector<int64_t>{a, b}));
  // Extending the lease takes the job out.
  extend(a, 1, kNow + 5000, 1);
  EXPECT_EQ(at(kNow + 1000), std::vector<int64_t>{b});

  auto full = in_read([&](Db& db) { return job_db::expired_leases(db, kNow + 1000); });
  ASSERT_TRUE(full.is_ok());
  ASSERT_EQ(full->size(), 1u);
  EXPECT_EQ((*full)[0].attempt, 1);  // whole rows, usable for release()
  EXPECT_EQ((*full)[0].state, JobState::kRunning);
}

TEST_F(JobDbTest, JobsInStateById) {
  int64_t q1 = insert(basic_params(), kNow, other_project_);
  int64_t r1 = insert();
  int64_t q2 = insert();
  int64_t d1 = insert();
  ASSERT_TRUE(claim(r1));
  ASSERT_TRUE(claim(d1));
  ASSERT_TRUE(finish(d1, 1, JobState::kDone));

  auto in = [&](JobState s) {
    auto r = in_read([&](Db& db) { return job_db::jobs_in_state(db, s); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? ids_of(*r) : std::vector<int64_t>{};
  };
  EXPECT_EQ(in(JobState::kQueued), (std::vector<int64_t>{q1, q2}));  // every project
  EXPECT_EQ(in(JobState::kRunning), std::vector<int64_t>{r1});
  EXPECT_EQ(in(JobState::kDone), std::vector<int64_t>{d1});
  EXPECT_EQ(in(JobState::kFailed), std::vector<int64_t>{});
}

TEST_F(JobDbTest, CountQueuedForUser) {
  auto count = [&](int64_t user) {
    auto r = in_read([&](Db& db) { return job_db::count_queued_for_user(db, user); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : -1;
  };
  EXPECT_EQ(count(alice_), 0);
  int64_t a1 = insert();
  int64_t a2 = insert(basic_params(), kNow, other_project_);
  int64_t a3 = insert();
  insert(basic_params(), kNow, std::nullopt, bob_);
  EXPECT_EQ(count(alice_), 3);  // across projects
  EXPECT_EQ(count(bob_), 1);
  ASSERT_TRUE(claim(a1));
  EXPECT_EQ(count(alice_), 2);
  ASSERT_TRUE(cancel_queued(a2));
  EXPECT_EQ(count(alice_), 1);
  ASSERT_TRUE(claim(a3));
  EXPECT_EQ(count(alice_), 0);
  ASSERT_TRUE(requeue(a3, 1));
  EXPECT_EQ(count(alice_), 1);
  EXPECT_EQ(count(4242), 0);
}

TEST_F(JobDbTest, ListJobsNewestFirstWithPaging) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(insert());
  insert(basic_params(), kNow, other_project_);  // never listed for project_

  EXPECT_EQ(list_ids(std::nullopt, 100, std::nullopt),
            (std::vector<int64_t>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
  EXPECT_EQ(list_ids(std::nullopt, 2, std::nullopt), (std::vector<int64_t>{ids[4], ids[3]}));
  // The next page starts below the last id seen.
  EXPECT_EQ(list_ids(std::nullopt, 2, ids[3]), (std::vector<int64_t>{ids[2], ids[1]}));
  EXPECT_EQ(list_ids(std::nullopt, 2, ids[1]), (std::vector<int64_t>{ids[0]}));
  EXPECT_EQ(list_ids(std::nullopt, 2, ids[0]), std::vector<int64_t>{});
  EXPECT_EQ(list_ids(std::nullopt, 0, std::nullopt), std::vector<int64_t>{});
  EXPECT_EQ(list_ids(std::nullopt, 100, std::nullopt, 4242), std::vector<int64_t>{});
}

TEST_F(JobDbTest, ListJobsFiltersByState) {
  int64_t q1 = insert();
  int64_t r1 = insert();
  int64_t q2 = insert();
  int64_t c1 = insert();
  int64_t q3 = insert();
  ASSERT_TRUE(claim(r1));
  ASSERT_TRUE(cancel_queued(c1));

  EXPECT_EQ(list_ids(JobState::kQueued, 100, std::nullopt), (std::vector<int64_t>{q3, q2, q1}));
  EXPECT_EQ(list_ids(JobState::kQueued, 2, std::nullopt), (std::vector<int64_t>{q3, q2}));
  EXPECT_EQ(list_ids(JobState::kQueued, 100, q2), std::vector<int64_t>{q1});
  EXPECT_EQ(list_ids(JobState::kRunning, 100, std::nullopt), std::vector<int64_t>{r1});
  EXPECT_EQ(list_ids(JobState::kCancelled, 100, std::nullopt), std::vector<int64_t>{c1});
  EXPECT_EQ(list_ids(JobState::kDone, 100, std::nullopt), std::vector<int64_t>{});
}

TEST_F(JobDbTest, ImagesAreAttachedToDoneJobsOnly) {
  Job done = done_job(project_, 3, 10);
  // A running job that already has image rows (written before its finish) shows none.
  int64_t running = insert();
  std::optional<Job> c = claim(running);
  ASSERT_TRUE(c);
  add_image(*c, 0, sha_of(99));

  ASSERT_EQ(done.images.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(done.images[i].idx, i);  // in idx order
    EXPECT_EQ(done.images[i].sha256, sha_of(10 + i));
    EXPECT_EQ(done.images[i].job_id, done.id);
  }
  EXPECT_TRUE(must_find(running).images.empty());

  auto jobs = in_read(
      [&](Db& db) { return job_db::list_jobs(db, project_, std::nullopt, 100, std::nullopt); });
  ASSERT_TRUE(jobs.is_ok()) << jobs.status().to_string();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].id, running);
  EXPECT_TRUE((*jobs)[0].images.empty());
  EXPECT_EQ((*jobs)[1].id, done.id);
  ASSERT_EQ((*jobs)[1].images.size(), 3u);
  EXPECT_EQ((*jobs)[1].images[2].sha256, sha_of(12));

  // In state-filtered lists too.
  auto done_only =
      in_read([&](Db& db) { return job_db::list_jobs(db, project_, JobState::kDone, 10, {}); });
  ASSERT_TRUE(done_only.is_ok());
  ASSERT_EQ(done_only->size(), 1u);
  EXPECT_EQ((*done_only)[0].images.size(), 3u);

  // jobs_in_state never attaches images.
  auto by_state = in_read([&](Db& db) { return job_db::jobs_in_state(db, JobState::kDone); });
  ASSERT_TRUE(by_state.is_ok());
  ASSERT_EQ(by_state->size(), 1u);
  EXPECT_TRUE((*by_state)[0].images.empty());
}

// ---------------------------------------------------------------------------------------------
// idempotency

TEST_F(JobDbTest, FindIdempotentBySubmitterProjectAndKey) {
  job_db::NewJob j;
  j.project_id = project_;
  j.submitted_by = alice_;
  j.params = basic_params();
  j.idempotency_key = "key-1";
  j.request_hash = "hash-1";
  auto id = try_insert(j);
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();

  auto find = [&](int64_t user, int64_t project, const std::string& key) {
    auto r = in_read([&](Db& db) { return job_db::find_idempotent(db, user, project, key); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : std::nullopt;
  };
  auto match = find(alice_, project_, "key-1");
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->job_id, *id);
  EXPECT_EQ(match->request_hash, "hash-1");
  EXPECT_FALSE(find(alice_, project_, "key-2").has_value());
  EXPECT_FALSE(find(bob_, project_, "key-1").has_value());
  EXPECT_FALSE(find(alice_, other_project_, "key-1").has_value());
  EXPECT_FALSE(find(alice_, project_, "KEY-1").has_value());
}

TEST_F(JobDbTest, AKeyIsUniquePerSubmitterAndProject) {
  job_db::NewJob j;
  j.project_id = project_;
  j.submitted_by = alice_;
  j.params = basic_params();
  j.idempotency_key = "k";
  j.request_hash = "h1";
  auto first = try_insert(j);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();

  j.request_hash = "h2";
  auto second = try_insert(j);
  EXPECT_FALSE(second.is_ok());
  EXPECT_EQ(list_ids(std::nullopt, 100, std::nullopt), std::vector<int64_t>{*first});

  // The same key is free for another submitter and in another project.
  job_db::NewJob by_bob = j;
  by_bob.submitted_by = bob_;
  EXPECT_TRUE(try_insert(by_bob).is_ok());
  job_db::NewJob elsewhere = j;
  elsewhere.project_id = other_project_;
  EXPECT_TRUE(try_insert(elsewhere).is_ok());
}

TEST_F(JobDbTest, JobsWithoutAKeyNeverCollide) {
  insert();
  insert();
  EXPECT_EQ(list_ids(std::nullopt, 100, std::nullopt).size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// images

TEST_F(JobDbTest, InsertAndFindImageRoundTripEveryField) {
  Job parent_job = done_job(project_, 1, 1);
  int64_t parent_image = parent_job.images[0].id;

  JobParams p = basic_params();
  p.mode = inference::Mode::kVariation;
  p.parent_image_id = parent_image;
  p.seed = 1000;
  int64_t id = insert(p, kNow, std::nullopt, bob_);
  std::optional<Job> c = claim(id);
  ASSERT_TRUE(c);

  NewImage img;
  img.idx = 1;
  img.sha256 = sha_of(77);
  img.bytes = 123'456;
  img.width = 640;
  img.height = 480;
  img.seed = 1001;
  img.lineage = "null1;00112233445566ff";
  auto image_id = in_write([&](Db& db) { return job_db::insert_image(db, *c, img, kNow + 9); });
  ASSERT_TRUE(image_id.is_ok()) << image_id.status().to_string();

  auto found = in_read([&](Db& db) { return job_db::find_image(db, *image_id); });
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  ASSERT_TRUE(found->has_value());
  const ImageRecord& r = **found;
  EXPECT_EQ(r.id, *image_id);
  EXPECT_EQ(r.project_id, project_);
  EXPECT_EQ(r.job_id, id);
  EXPECT_EQ(r.idx, 1);
  EXPECT_EQ(r.created_by, std::optional<int64_t>(bob_));  // the submitter
  EXPECT_EQ(r.sha256, sha_of(77));
  EXPECT_EQ(r.bytes, 123'456);
  EXPECT_EQ(r.width, 640);
  EXPECT_EQ(r.height, 480);
  EXPECT_EQ(r.seed, 1001);
  EXPECT_EQ(r.parent_image_id, std::optional<int64_t>(parent_image));  // the job's parent
  EXPECT_EQ(r.lineage, "null1;00112233445566ff");
  EXPECT_EQ(r.created_at, kNow + 9);

  EXPECT_EQ(parent_job.images[0].parent_image_id, std::nullopt);
  auto missing = in_read([](Db& db) { return job_db::find_image(db, 4242); });
  ASSERT_TRUE(missing.is_ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(JobDbTest, OneImagePerJobAndIndex) {
  int64_t id = insert();
  std::optional<Job> c = claim(id);
  ASSERT_TRUE(c);
  add_image(*c, 0, sha_of(1));
  NewImage dup;
  dup.idx = 0;
  dup.sha256 = sha_of(2);
  dup.width = dup.height = 8;
  auto again = in_write([&](Db& db) { return job_db::insert_image(db, *c, dup, kNow); });
  EXPECT_FALSE(again.is_ok());
}

TEST_F(JobDbTest, ListImagesNewestFirstWithPaging) {
  Job a = done_job(project_, 2, 1);  // images a0, a1
  Job other = done_job(other_project_, 1, 50);
  Job b = done_job(project_, 2, 3);  // images b0, b1
  ASSERT_EQ(a.images.size(), 2u);
  ASSERT_EQ(b.images.size(), 2u);
  std::vector<int64_t> all = {b.images[1].id, b.images[0].id, a.images[1].id, a.images[0].id};

  auto list = [&](int64_t project, int64_t limit, std::optional<int64_t> before) {
    auto r = in_read([&](Db& db) { return job_db::list_images(db, project, limit, before); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? image_ids(*r) : std::vector<int64_t>{};
  };
  EXPECT_EQ(list(project_, 100, std::nullopt), all);
  EXPECT_EQ(list(project_, 3, std::nullopt), (std::vector<int64_t>{all[0], all[1], all[2]}));
  EXPECT_EQ(list(project_, 3, all[2]), std::vector<int64_t>{all[3]});
  EXPECT_EQ(list(project_, 100, all[3]), std::vector<int64_t>{});
  EXPECT_EQ(list(other_project_, 100, std::nullopt), std::vector<int64_t>{other.images[0].id});
}

TEST_F(JobDbTest, ChildrenOfAnImage) {
  Job root = done_job(project_, 2, 1);
  int64_t parent = root.images[0].id;
  JobParams p = basic_params();
  p.mode = inference::Mode::kVariation;
  p.parent_image_id = parent;
  Job child1 = done_job(project_, 2, 10, p);
  Job child2 = done_job(project_, 1, 20, p);
  JobParams q = p;
  q.parent_image_id = root.images[1].id;
  Job sibling_child = done_job(project_, 1, 30, q);

  auto children = [&](int64_t image, int64_t limit) {
    auto r = in_read([&](Db& db) { return job_db::children_of(db, image, limit); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? image_ids(*r) : std::vector<int64_t>{};
  };
  EXPECT_EQ(children(parent, 100), (std::vector<int64_t>{child1.images[0].id, child1.images[1].id,
                                                         child2.images[0].id}));  // oldest first
  EXPECT_EQ(children(parent, 2), (std::vector<int64_t>{child1.images[0].id, child1.images[1].id}));
  EXPECT_EQ(children(root.images[1].id, 100), std::vector<int64_t>{sibling_child.images[0].id});
  EXPECT_EQ(children(child2.images[0].id, 100), std::vector<int64_t>{});
}

TEST_F(JobDbTest, ReferencedShasIsTheSetOfImageShas) {
  auto shas = [&] {
    auto r = in_read([](Db& db) { return job_db::referenced_shas(db); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : std::unordered_set<std::string>{};
  };
  EXPECT_TRUE(shas().empty());
  done_job(project_, 2, 1);
  done_job(other_project_, 1, 5);
  // The same bytes made twice (another job): one sha, two rows.
  int64_t id = insert();
  std::optional<Job> c = claim(id);
  ASSERT_TRUE(c);
  add_image(*c, 0, sha_of(1));
  EXPECT_EQ(shas(), (std::unordered_set<std::string>{sha_of(1), sha_of(2), sha_of(5)}));
}

}  // namespace
}  // namespace atelier::jobs
