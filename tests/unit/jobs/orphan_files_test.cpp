// No orphan image files (issue 19): a run whose rows are not committed (cancel requested, lease
// lost) leaves no file behind, unless another row or run uses the same bytes; the running sweep
// removes unreferenced files past their grace period and keeps fresh, pinned and referenced
// ones; and a project's disk_bytes follows its image rows, filled in for rows older than it.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "server/auth/account_db.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job_db.h"
#include "server/jobs/job_service.h"
#include "server/projects/project_db.h"
#include "server/store/migrations.h"
#include "tests/support/store_fixture.h"

namespace atelier::jobs {
namespace {

namespace fs = std::filesystem;
namespace pdb = projects::project_db;
using namespace std::chrono_literals;

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Every *.png file in the image store under `root`.
std::vector<fs::path> pngs_under(const fs::path& root) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(root / "images")) {
    if (e.is_regular_file() && e.path().extension() == ".png") out.push_back(e.path());
  }
  return out;
}

// Makes `path` look written `age` ago.
void age_file(const fs::path& path, std::chrono::minutes age) {
  fs::last_write_time(path, fs::file_time_type::clock::now() - age);
}

// An 8x8 RGB image whose pixels (and so whose PNG) depend on `shade`.
inference::GeneratedImage generated(uint8_t shade) {
  inference::GeneratedImage g;
  g.image = image::Image{8, 8, 3, std::vector<uint8_t>(8 * 8 * 3, shade)};
  g.seed = shade;
  return g;
}

// ---------------------------------------------------------------------------------------------
// ImageStore: pins, discard, the running sweep

class ImageStorePinsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = ImageStore::open(tmp_ / "media");
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    images_ = std::move(store).value();
  }

  StoredFile put(std::string_view bytes) {
    auto r = images_->put(as_bytes(bytes));
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : StoredFile{};
  }

  // A ReferenceCheck answering from `rows_`, as the database would.
  ReferenceCheck check() {
    return [this](std::span<const std::string> shas) {
      std::unordered_set<std::string> found;
      for (const std::string& sha : shas) {
        if (rows_.contains(sha)) found.insert(sha);
      }
      return Result<std::unordered_set<std::string>>(std::move(found));
    };
  }

  testing::TempDir tmp_{"atelier-orphan-files-test"};
  std::unique_ptr<ImageStore> images_;
  std::unordered_set<std::string> rows_;
};

TEST_F(ImageStorePinsTest, DiscardRemovesAFileNoRowAndNoOtherPutUses) {
  StoredFile f = put("cancelled");
  auto removed = images_->discard(f.sha256, check());
  ASSERT_TRUE(removed.is_ok()) << removed.status().to_string();
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(fs::exists(images_->path_for(f.sha256)));
}

TEST_F(ImageStorePinsTest, DiscardKeepsAFileARowRefersTo) {
  StoredFile f = put("same bytes as a committed image");
  rows_.insert(f.sha256);
  auto removed = images_->discard(f.sha256, check());
  ASSERT_TRUE(removed.is_ok());
  EXPECT_FALSE(*removed);
  EXPECT_TRUE(fs::exists(images_->path_for(f.sha256)));
}

TEST_F(ImageStorePinsTest, DiscardKeepsAFileAnotherPutStillPins) {
  StoredFile a = put("made twice");
  StoredFile b = put("made twice");  // another run, not committed yet
  ASSERT_EQ(a.sha256, b.sha256);
  auto removed = images_->discard(a.sha256, check());
  ASSERT_TRUE(removed.is_ok());
  EXPECT_FALSE(*removed) << "the other run's commit still needs the file";
  EXPECT_TRUE(fs::exists(images_->path_for(a.sha256)));
  // The other run fails too: now nothing needs it.
  removed = images_->discard(b.sha256, check());
  ASSERT_TRUE(removed.is_ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(fs::exists(images_->path_for(a.sha256)));
}

TEST_F(ImageStorePinsTest, PutAfterADiscardStoresTheFileAgain) {
  StoredFile f = put("again");
  ASSERT_TRUE(images_->discard(f.sha256, check()).is_ok());
  StoredFile g = put("again");
  EXPECT_EQ(g.sha256, f.sha256);
  EXPECT_TRUE(fs::exists(images_->path_for(f.sha256)));
}

TEST_F(ImageStorePinsTest, SweepRemovesOldUnreferencedFilesAndKeepsTheRest) {
  StoredFile old_orphan = put("old orphan");
  images_->unpin(old_orphan.sha256);
  StoredFile fresh_orphan = put("fresh orphan");
  images_->unpin(fresh_orphan.sha256);
  StoredFile referenced = put("referenced");
  images_->unpin(referenced.sha256);
  rows_.insert(referenced.sha256);
  StoredFile pinned = put("written, commit pending");
  for (const StoredFile& f : {old_orphan, referenced, pinned}) {
    age_file(images_->path_for(f.sha256), 60min);
  }
  fs::path old_thumb = images_->thumb_path(old_orphan.sha256, 64, "webp");
  fs::path kept_thumb = images_->thumb_path(referenced.sha256, 64, "webp");
  ASSERT_TRUE(images_->put_thumb(old_thumb, as_bytes("t")).is_ok());
  ASSERT_TRUE(images_->put_thumb(kept_thumb, as_bytes("t")).is_ok());
  age_file(old_thumb, 60min);
  age_file(kept_thumb, 60min);
  fs::path old_temp = tmp_ / "media" / "images" / "0a" / ".1-1.tmp";
  fs::path fresh_temp = tmp_ / "media" / "images" / "0b" / ".1-2.tmp";
  testing::write_file(old_temp, "partial");
  testing::write_file(fresh_temp, "being written");
  age_file(old_temp, 60min);

  auto report = images_->sweep_unreferenced(10min, check());
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->orphans_removed, 1);
  EXPECT_EQ(report->temp_files_removed, 1);
  EXPECT_EQ(report->thumbs_removed, 1);
  EXPECT_FALSE(fs::exists(images_->path_for(old_orphan.sha256)));
  EXPECT_FALSE(fs::exists(old_thumb));
  EXPECT_FALSE(fs::exists(old_temp));
  EXPECT_TRUE(fs::exists(images_->path_for(fresh_orphan.sha256))) << "inside the grace period";
  EXPECT_TRUE(fs::exists(images_->path_for(referenced.sha256)));
  EXPECT_TRUE(fs::exists(kept_thumb));
  EXPECT_TRUE(fs::exists(images_->path_for(pinned.sha256))) << "its commit may still come";
  EXPECT_TRUE(fs::exists(fresh_temp));
}

TEST_F(ImageStorePinsTest, SweepAsksAgainBeforeRemovingAFile) {
  StoredFile f = put("committed while the sweep reads");
  images_->unpin(f.sha256);
  age_file(images_->path_for(f.sha256), 60min);
  // The batch read says unreferenced; by the time the file would go, a row refers to it.
  int asked = 0;
  ReferenceCheck racing = [&](std::span<const std::string> shas) {
    std::unordered_set<std::string> found;
    if (asked++ > 0) found.insert(shas.begin(), shas.end());
    return Result<std::unordered_set<std::string>>(std::move(found));
  };
  auto report = images_->sweep_unreferenced(10min, racing);
  ASSERT_TRUE(report.is_ok());
  EXPECT_EQ(report->orphans_removed, 0);
  EXPECT_TRUE(fs::exists(images_->path_for(f.sha256)));
}

// ---------------------------------------------------------------------------------------------
// JobService: runs whose rows are not committed, and the running sweep

class JobServiceFilesTest : public testing::StoreFixture {
 protected:
  JobServiceFilesTest() : StoreFixture("atelier-job-files-test") {}

  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto images = ImageStore::open(tmp_ / "media");
    ASSERT_TRUE(images.is_ok());
    images_ = std::move(*images);
    auto ids = in_write([](store::Db& db) -> Result<std::pair<int64_t, int64_t>> {
      ATELIER_ASSIGN_OR_RETURN(
          auto user, auth::account_db::insert_user(db, "ann", "x", false, from_unix_s(1)));
      ATELIER_ASSIGN_OR_RETURN(auto project,
                               pdb::insert_project(db, "p", "", user.id, from_unix_s(1)));
      return std::make_pair(user.id, project.id);
    });
    ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
    user_ = ids->first;
    project_ = ids->second;
  }

  void make_service(std::chrono::milliseconds sweep_interval = std::chrono::hours(1)) {
    JobServiceOptions options;
    options.lease = 1000ms;
    options.reaper_interval = std::chrono::hours(1);  // reap_expired() is called by the tests
    options.orphan_sweep_interval = sweep_interval;
    options.orphan_grace = 10min;
    service_ = std::make_unique<JobService>(*store_, *images_, log_, options,
                                            [this] { return from_unix_ms(now_.load()); });
    ASSERT_TRUE(service_->start().is_ok());
  }

  int64_t submit() {
    JobParams p;
    p.model = "null";
    p.prompt = "test";
    p.width = p.height = 8;
    p.steps = 2;
    p.sampler = "none";
    std::promise<Result<SubmitResult>> done;
    SubmitRequest r;
    r.project_id = project_;
    r.user_id = user_;
    r.request_hash = "h";
    r.prepare = [p](store::Db&) -> Result<JobParams> { return p; };
    service_->submit(std::move(r),
                     [&](Result<SubmitResult> res) { done.set_value(std::move(res)); });
    auto res = done.get_future().get();
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    return res.is_ok() ? res->job.id : 0;
  }

  void cancel(int64_t id) {
    std::promise<Result<Job>> answered;
    service_->cancel(
        id, user_, [](store::Db&, const Job&) { return Status::ok(); },
        [&](Result<Job> j) { answered.set_value(std::move(j)); });
    auto job = answered.get_future().get();
    ASSERT_TRUE(job.is_ok()) << job.status().to_string();
    EXPECT_TRUE(job->cancel_requested);
  }

  Job job(int64_t id) {
    auto j = in_read([id](store::Db& db) { return job_db::find_job(db, id); });
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    return j.is_ok() ? *j : Job{};
  }

  int64_t disk_bytes() {
    auto n = in_read([this](store::Db& db) { return pdb::disk_bytes(db, project_); });
    EXPECT_TRUE(n.is_ok()) << n.status().to_string();
    return n.is_ok() ? *n : -1;
  }

  events::EventBus bus_;
  events::EventLog log_{bus_, [](const events::DomainEvent&) { return std::string("{}"); }};
  std::unique_ptr<ImageStore> images_;
  std::atomic<int64_t> now_{1'000'000};
  std::unique_ptr<JobService> service_;
  int64_t user_ = 0;
  int64_t project_ = 0;
};

// The generator finished before it looked at the token (a real model's last step or its VAE
// decode): the job ends cancelled, without rows, and so without files.
TEST_F(JobServiceFilesTest, ACancelRequestedWhileRunningLeavesNoFile) {
  make_service();
  int64_t id = submit();
  auto run = service_->next_job("w");
  ASSERT_TRUE(run);
  cancel(id);
  service_->complete(*run, std::vector<inference::GeneratedImage>{generated(1), generated(2)});
  EXPECT_EQ(job(id).state, JobState::kCancelled);
  EXPECT_TRUE(pngs_under(tmp_ / "media").empty());
  EXPECT_EQ(disk_bytes(), 0);
}

// A worker that stalled past its lease reports late: its commit is refused and its files go,
// except one the winning attempt committed with the same bytes.
TEST_F(JobServiceFilesTest, ALateResultOfALostLeaseLeavesNoFileButKeepsTheWinnersFile) {
  make_service();
  int64_t id = submit();
  auto first = service_->next_job("w1");
  ASSERT_TRUE(first);
  now_ += 1500;
  ASSERT_TRUE(service_->reap_expired().is_ok());
  auto second = service_->next_job("w2");
  ASSERT_TRUE(second);
  service_->complete(*second, std::vector<inference::GeneratedImage>{generated(7)});
  Job done = job(id);
  ASSERT_EQ(done.state, JobState::kDone);
  ASSERT_EQ(done.images.size(), 1u);

  // The stale run made the winner's image and one of its own.
  service_->complete(*first, std::vector<inference::GeneratedImage>{generated(7), generated(8)});
  EXPECT_EQ(job(id).attempt, 2);
  auto files = pngs_under(tmp_ / "media");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], images_->path_for(done.images[0].sha256));
  EXPECT_EQ(disk_bytes(), done.images[0].bytes);
}

// A done run keeps its files (counted once per distinct file); a failed run leaves none.
TEST_F(JobServiceFilesTest, ADoneRunKeepsItsFilesAndCountsThemOnce) {
  make_service();
  int64_t a = submit();
  auto run = service_->next_job("w");
  ASSERT_TRUE(run);
  service_->complete(*run, std::vector<inference::GeneratedImage>{generated(3), generated(4)});
  Job done = job(a);
  ASSERT_EQ(done.state, JobState::kDone);
  ASSERT_EQ(done.images.size(), 2u);
  EXPECT_EQ(pngs_under(tmp_ / "media").size(), 2u);
  EXPECT_EQ(disk_bytes(), done.images[0].bytes + done.images[1].bytes);

  // The same bytes again in the same project: one more row, no more disk.
  int64_t b = submit();
  run = service_->next_job("w");
  ASSERT_TRUE(run);
  service_->complete(*run, std::vector<inference::GeneratedImage>{generated(3)});
  ASSERT_EQ(job(b).state, JobState::kDone);
  EXPECT_EQ(pngs_under(tmp_ / "media").size(), 2u);
  EXPECT_EQ(disk_bytes(), done.images[0].bytes + done.images[1].bytes);

  // A failure writes nothing and leaves nothing.
  int64_t c = submit();
  run = service_->next_job("w");
  ASSERT_TRUE(run);
  service_->complete(*run, Status::internal("the model failed"));
  EXPECT_EQ(job(c).state, JobState::kFailed);
  EXPECT_EQ(pngs_under(tmp_ / "media").size(), 2u);
}

TEST_F(JobServiceFilesTest, TheSweepRemovesOldUnreferencedFilesOnly) {
  make_service();
  int64_t id = submit();
  auto run = service_->next_job("w");
  ASSERT_TRUE(run);
  service_->complete(*run, std::vector<inference::GeneratedImage>{generated(5)});
  Job done = job(id);
  ASSERT_EQ(done.images.size(), 1u);
  const fs::path referenced = images_->path_for(done.images[0].sha256);

  // A file a crash left between write and commit, one written just now, one still pinned.
  auto old_orphan = images_->put(as_bytes("left by a crash"));
  auto fresh = images_->put(as_bytes("just written"));
  auto pinned = images_->put(as_bytes("commit pending"));
  ASSERT_TRUE(old_orphan.is_ok() && fresh.is_ok() && pinned.is_ok());
  images_->unpin(old_orphan->sha256);
  images_->unpin(fresh->sha256);
  for (const fs::path& p :
       {referenced, images_->path_for(old_orphan->sha256), images_->path_for(pinned->sha256)}) {
    age_file(p, 60min);
  }

  auto swept = service_->sweep_orphans();
  ASSERT_TRUE(swept.is_ok()) << swept.status().to_string();
  EXPECT_EQ(swept->orphans_removed, 1);
  EXPECT_FALSE(fs::exists(images_->path_for(old_orphan->sha256)));
  EXPECT_TRUE(fs::exists(referenced));
  EXPECT_TRUE(fs::exists(images_->path_for(fresh->sha256)));
  EXPECT_TRUE(fs::exists(images_->path_for(pinned->sha256)));
}

// Not only at start-up: the sweep's own thread finds a file orphaned while the server runs.
TEST_F(JobServiceFilesTest, TheSweepRunsPeriodically) {
  make_service(/*sweep_interval=*/10ms);
  auto orphan = images_->put(as_bytes("orphaned after start-up"));
  ASSERT_TRUE(orphan.is_ok());
  images_->unpin(orphan->sha256);
  const fs::path path = images_->path_for(orphan->sha256);
  age_file(path, 60min);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fs::exists(path) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_FALSE(fs::exists(path)) << "no sweep ran within 10 s";
}

// ---------------------------------------------------------------------------------------------
// disk_bytes for databases made before it

TEST(ProjectDiskBytesMigrationTest, FillsInTheImagesStoredBeforeIt) {
  testing::TempDir tmp("atelier-disk-bytes-migration-test");
  auto db = store::Db::open(tmp / "m.db", store::OpenMode::kReadWriteCreate);
  ASSERT_TRUE(db.is_ok()) << db.status().to_string();
  const std::vector<store::Migration>& all = store::embedded_migrations();
  std::vector<store::Migration> before;
  for (const store::Migration& m : all) {
    if (m.name == "project_disk_bytes") break;
    before.push_back(m);
  }
  ASSERT_LT(before.size(), all.size()) << "no migration named project_disk_bytes";
  ASSERT_TRUE(store::apply_migrations(*db, before).is_ok());
  ASSERT_TRUE(db->exec(R"sql(
    INSERT INTO users (username, password_hash, created_at) VALUES ('a', 'x', 1);
    INSERT INTO projects (name, created_by, created_at, updated_at)
      VALUES ('p', 1, 1, 1), ('q', 1, 1, 1), ('empty', 1, 1, 1);
    INSERT INTO jobs (project_id, submitted_by, state, model, prompt, width, height, steps,
                      guidance, seed, count, sampler, mode, strength, max_attempts, created_at,
                      queued_at, updated_at)
      VALUES (1, 1, 'done', 'null', 'x', 8, 8, 1, 1, 1, 1, 's', 'txt2img', 0, 3, 1, 1, 1),
             (2, 1, 'done', 'null', 'x', 8, 8, 1, 1, 1, 1, 's', 'txt2img', 0, 3, 1, 1, 1);
    INSERT INTO images (project_id, job_id, idx, sha256, bytes, width, height, seed, created_at)
      VALUES (1, 1, 0, 'aa', 100, 8, 8, 1, 1), (1, 1, 1, 'aa', 100, 8, 8, 1, 1),
             (1, 1, 2, 'bb', 7, 8, 8, 1, 1), (2, 2, 0, 'aa', 100, 8, 8, 1, 1);
  )sql")
                  .is_ok());
  auto report = store::apply_migrations(*db, all);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  auto bytes_of = [&](int64_t project) {
    auto n = pdb::disk_bytes(*db, project);
    EXPECT_TRUE(n.is_ok()) << n.status().to_string();
    return n.is_ok() ? *n : -1;
  };
  EXPECT_EQ(bytes_of(1), 107) << "each distinct file once";
  EXPECT_EQ(bytes_of(2), 100) << "a file two projects use counts in both";
  EXPECT_EQ(bytes_of(3), 0);
  EXPECT_EQ(pdb::disk_bytes(*db, 99).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace atelier::jobs
