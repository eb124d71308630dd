// The fixture the job_db tests share (job_db_lifecycle_test.cpp, job_db_query_test.cpp): one real
// Store for the suite, two users and two projects, and helpers that run job_db calls in their
// own transactions.
#pragma once
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
#include "server/jobs/job_db.h"
#include "server/projects/project_db.h"
#include "server/store/store.h"
#include "tests/support/store_fixture.h"
#include "tests/support/temp_dir.h"

namespace atelier::jobs::jobdbtest {

using store::Db;
namespace adb = auth::account_db;
namespace pdb = projects::project_db;

using namespace std::chrono_literals;

constexpr SysTime kNow{std::chrono::milliseconds(1'764'139'999'000)};

inline std::string sha_of(int n) {
  std::string s = std::to_string(n);
  return std::string(64 - s.size(), 'a') + s;
}

inline JobParams basic_params() {
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
      auto alice = adb::insert_user(db, "alice", "h", false, from_unix_s(1));
      if (!alice.is_ok()) return alice.status();
      auto bob = adb::insert_user(db, "bob", "h", false, from_unix_s(1));
      if (!bob.is_ok()) return bob.status();
      auto p1 = pdb::insert_project(db, "p1", "", alice->id, from_unix_s(1));
      if (!p1.is_ok()) return p1.status();
      auto p2 = pdb::insert_project(db, "p2", "", alice->id, from_unix_s(1));
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
    return testing::run_capturing(fn, [](auto txn) { return store_->write(std::move(txn)); });
  }
  // Runs `fn` on a read-only connection and returns what it returned.
  template <typename Fn>
  static std::invoke_result_t<Fn, Db&> in_read(Fn fn) {
    return testing::run_capturing(fn, [](auto txn) { return store_->read(txn); });
  }

  Result<int64_t> try_insert(const job_db::NewJob& j, SysTime now = kNow) {
    return in_write([&](Db& db) { return job_db::insert_job(db, j, now); });
  }

  int64_t insert(JobParams params = basic_params(), SysTime now = kNow,
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

  // The job; nullopt when there is none (kNotFound), and a test failure on any other error.
  std::optional<Job> find(int64_t id) {
    auto j = in_read([id](Db& db) { return job_db::find_job(db, id); });
    if (j.status().code() == StatusCode::kNotFound) return std::nullopt;
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    return j.is_ok() ? std::optional<Job>(*j) : std::nullopt;
  }

  Job must_find(int64_t id) {
    std::optional<Job> j = find(id);
    EXPECT_TRUE(j.has_value()) << "job " << id;
    return j.value_or(Job{});
  }

  std::optional<Job> claim(int64_t id, const std::string& worker = "w1",
                           SysTime lease_until = kNow + 1000ms, SysTime now = kNow + 10ms) {
    auto j = in_write([&](Db& db) { return job_db::claim(db, id, worker, lease_until, now); });
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    return j.is_ok() ? *j : std::nullopt;
  }

  job_db::LeaseCheck extend(int64_t id, int attempt, SysTime lease_until, int step,
                            SysTime now = kNow + 20ms) {
    auto r = in_write(
        [&](Db& db) { return job_db::extend_lease(db, id, attempt, lease_until, step, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : job_db::LeaseCheck{};
  }

  bool finish(int64_t id, int attempt, JobState to, const std::string& error = "",
              SysTime now = kNow + 30ms) {
    auto r = in_write([&](Db& db) { return job_db::finish(db, id, attempt, to, error, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  std::optional<JobState> release(const Job& job, const std::string& reason,
                                  SysTime now = kNow + 40ms) {
    auto r = in_write([&](Db& db) { return job_db::release(db, job, reason, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : std::nullopt;
  }

  bool requeue(int64_t id, int attempt, SysTime now = kNow + 50ms) {
    auto r = in_write([&](Db& db) { return job_db::requeue(db, id, attempt, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  bool cancel_queued(int64_t id, SysTime now = kNow + 60ms) {
    auto r = in_write([&](Db& db) { return job_db::cancel_queued(db, id, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  bool request_cancel(int64_t id, SysTime now = kNow + 70ms) {
    auto r = in_write([&](Db& db) { return job_db::request_cancel(db, id, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }

  int64_t add_image(const Job& job, int idx, const std::string& sha, SysTime now = kNow + 25ms,
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
      auto claimed = job_db::claim(db, *job_id, "w1", kNow + 1000ms, kNow + 10ms);
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
        auto image_id = job_db::insert_image(db, **claimed, img, kNow + 25ms);
        if (!image_id.is_ok()) return image_id.status();
      }
      auto finished = job_db::finish(db, *job_id, 1, JobState::kDone, "", kNow + 30ms);
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
};

}  // namespace atelier::jobs::jobdbtest
