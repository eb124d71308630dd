// job_db queries over many jobs and images: paging, filters, leases, idempotency keys, lineage.
#include "tests/unit/jobs/job_db_fixture.h"

namespace atelier::jobs::jobdbtest {
namespace {

// ---------------------------------------------------------------------------------------------
// queries over many jobs

TEST_F(JobDbTest, ExpiredLeasesAreRunningJobsWhoseLeaseEndedBeforeNow) {
  int64_t a = insert();
  int64_t b = insert();
  int64_t c = insert();
  int64_t queued = insert();
  (void)queued;
  ASSERT_TRUE(claim(a, "w", kNow + 100ms));
  ASSERT_TRUE(claim(b, "w", kNow + 200ms));
  ASSERT_TRUE(claim(c, "w", kNow + 50ms));
  ASSERT_TRUE(finish(c, 1, JobState::kFailed, "x"));  // lease cleared, not running anyway

  auto at = [&](SysTime now) {
    auto r = in_read([&](Db& db) { return job_db::expired_leases(db, now); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? ids_of(*r) : std::vector<int64_t>{};
  };
  EXPECT_EQ(at(kNow + 100ms), std::vector<int64_t>{});  // a lease ending now is still held
  EXPECT_EQ(at(kNow + 101ms), std::vector<int64_t>{a});
  EXPECT_EQ(at(kNow + 1000ms), (std::vector<int64_t>{a, b}));
  // Extending the lease takes the job out.
  extend(a, 1, kNow + 5000ms, 1);
  EXPECT_EQ(at(kNow + 1000ms), std::vector<int64_t>{b});

  auto full = in_read([&](Db& db) { return job_db::expired_leases(db, kNow + 1000ms); });
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
  auto image_id = in_write([&](Db& db) { return job_db::insert_image(db, *c, img, kNow + 9ms); });
  ASSERT_TRUE(image_id.is_ok()) << image_id.status().to_string();

  auto found = in_read([&](Db& db) { return job_db::find_image(db, *image_id); });
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  const ImageRecord& r = *found;
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
  EXPECT_EQ(r.created_at, kNow + 9ms);

  EXPECT_EQ(parent_job.images[0].parent_image_id, std::nullopt);
  auto missing = in_read([](Db& db) { return job_db::find_image(db, 4242); });
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no such image");
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

TEST_F(JobDbTest, LorasHashesAndSizeConditioningRoundTrip) {
  JobParams p = basic_params();
  p.prompt = "a cat <lora:grain:0.5>";
  p.loras = {{"ink", 0.75}, {"grain", -0.5}, {"no hash", 1}};
  p.lora_hashes = {{"ink", std::string(64, 'b')}, {"grain", std::string(64, 'c')}};
  p.model_hash = std::string(64, 'a');
  p.size_conditioning = inference::SizeConditioning{4096, 2048, 1024, 512, 16, 32};
  Job j = must_find(insert(p));
  EXPECT_EQ(j.params.prompt, "a cat <lora:grain:0.5>");
  EXPECT_EQ(j.params.loras, p.loras);
  EXPECT_EQ(j.params.lora_hashes, p.lora_hashes);
  EXPECT_EQ(j.params.model_hash, p.model_hash);
  EXPECT_EQ(j.params.size_conditioning, p.size_conditioning);
  EXPECT_TRUE(j.warnings.empty());
  // The same through a claim (UPDATE ... RETURNING reads the same columns).
  auto claimed = claim(j.id);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->params.loras, p.loras);
  EXPECT_EQ(claimed->params.size_conditioning, p.size_conditioning);
}

TEST_F(JobDbTest, AJobWithoutTheNewFieldsReadsEmpty) {
  Job j = must_find(insert(basic_params()));
  EXPECT_TRUE(j.params.loras.empty());
  EXPECT_TRUE(j.params.lora_hashes.empty());
  EXPECT_EQ(j.params.model_hash, "");
  EXPECT_FALSE(j.params.size_conditioning);
}

TEST_F(JobDbTest, WarningsAreFencedByTheAttempt) {
  int64_t id = insert();
  ASSERT_TRUE(claim(id));
  auto stale = in_write([&](Db& db) {
    return job_db::set_warnings(db, id, /*attempt=*/2, {"not mine"}, kNow + 20ms);
  });
  ASSERT_TRUE(stale.is_ok());
  EXPECT_FALSE(*stale);
  auto set = in_write([&](Db& db) {
    return job_db::set_warnings(db, id, 1, {"LoRA ink: 3 of 40 keys matched no layer", "ü"},
                                kNow + 20ms);
  });
  ASSERT_TRUE(set.is_ok());
  EXPECT_TRUE(*set);
  ASSERT_TRUE(finish(id, 1, JobState::kDone));
  EXPECT_EQ(must_find(id).warnings,
            (std::vector<std::string>{"LoRA ink: 3 of 40 keys matched no layer", "ü"}));
}

}  // namespace
}  // namespace atelier::jobs::jobdbtest
