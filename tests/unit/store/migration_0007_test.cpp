// Migration 0007 rebuilds the images and jobs tables (uploads have no job; two new job modes).
// A rebuild is the riskiest kind of migration: these tests fill a version-6 database the way the
// server does, upgrade it, and check that nothing was lost, cascaded away or renumbered, and
// that the new rules hold.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "server/store/migrations.h"
#include "tests/support/temp_dir.h"

namespace atelier::store {
namespace {

class Migration0007Test : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<Db> db = Db::open(tmp_.path() / "m.db", OpenMode::kReadWriteCreate);
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    db_ = std::make_unique<Db>(std::move(db).value());
    // As the store opens it: foreign keys on.
    ASSERT_TRUE(db_->exec("PRAGMA foreign_keys=ON").is_ok());
    const std::vector<Migration>& all = embedded_migrations();
    ASSERT_GE(all.size(), 7u);
    std::vector<Migration> up_to_6(all.begin(), all.begin() + 6);
    ASSERT_TRUE(apply_migrations(*db_, up_to_6).is_ok());
    exec(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES "
        "(1, 'alice', 'x', 0), (2, 'bob', 'x', 0);"
        "INSERT INTO projects (id, name, created_by, created_at, updated_at) VALUES "
        "(10, 'p', 1, 0, 0);");
    // Jobs 1..3; job 3 is deleted afterwards so the AUTOINCREMENT high-water mark (3) is above
    // the largest id left (2).
    for (int id = 1; id <= 3; ++id) {
      exec(
          "INSERT INTO jobs (id, project_id, submitted_by, state, model, prompt, width, height, "
          "steps, guidance, seed, count, sampler, mode, strength, parent_image_id, max_attempts, "
          "created_at, queued_at, updated_at, loras) VALUES (" +
          std::to_string(id) + ", 10, 1, 'done', 'null', 'p" + std::to_string(id) +
          "', 64, 64, 4, 7, 1, 1, 'euler', '" + (id == 2 ? "variation" : "txt2img") +
          "', 0.5, NULL, 3, 0, 0, 0, '[{\"name\":\"l\",\"weight\":1,\"hash\":\"\"}]')");
    }
    exec(
        "INSERT INTO images (id, project_id, job_id, idx, created_by, sha256, bytes, width, "
        "height, seed, parent_image_id, lineage, created_at) VALUES "
        "(100, 10, 1, 0, 1, 'aa', 1000, 64, 64, 1, NULL, 'L1', 0),"
        "(101, 10, 2, 0, 1, 'bb', 500, 64, 64, 1, 100, 'L2', 0),"
        "(102, 10, 3, 0, 1, 'cc', 7, 64, 64, 1, NULL, '', 0);"
        "UPDATE jobs SET parent_image_id = 100 WHERE id = 2;"
        "INSERT INTO reactions (image_id, user_id, emoji, created_at) VALUES (101, 2, 'x', 0);"
        "DELETE FROM jobs WHERE id = 3;");
    ASSERT_EQ(count("SELECT COUNT(*) FROM images"), 2);  // image 102 went with its job
    ASSERT_EQ(count("SELECT disk_bytes FROM projects WHERE id = 10"), 1500);
    Result<MigrationReport> report = apply_migrations(*db_, all);
    ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  }

  void exec(const std::string& sql) {
    Status st = db_->exec(sql);
    ASSERT_TRUE(st.is_ok()) << st.to_string() << "\n" << sql;
  }
  int64_t count(const std::string& sql) {
    Result<int64_t> v = db_->query_int64(sql);
    EXPECT_TRUE(v.is_ok()) << v.status().to_string() << "\n" << sql;
    return v.is_ok() ? *v : -1;
  }

  testing::TempDir tmp_{"atelier-migration7-test"};
  std::unique_ptr<Db> db_;
};

TEST_F(Migration0007Test, KeepsEveryRowWithItsIdAndReferences) {
  EXPECT_EQ(count("SELECT COUNT(*) FROM jobs"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM images"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM images WHERE source = 'generated' AND original_name IS "
                  "NULL"),
            2);
  EXPECT_EQ(count("SELECT parent_image_id FROM images WHERE id = 101"), 100);
  EXPECT_EQ(count("SELECT parent_image_id FROM jobs WHERE id = 2"), 100);
  EXPECT_EQ(count("SELECT COUNT(*) FROM reactions WHERE image_id = 101"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM jobs WHERE loras LIKE '%\"l\"%'"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM jobs WHERE mask_image_id IS NULL AND mask_blur IS NULL"),
            2);
  EXPECT_EQ(count("SELECT disk_bytes FROM projects WHERE id = 10"), 1500);
  // Nothing left behind, foreign keys on again and satisfied.
  EXPECT_EQ(count("SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE '%_new'"), 0);
  EXPECT_EQ(count("PRAGMA foreign_keys"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
}

TEST_F(Migration0007Test, IdsOfDeletedRowsAreNotReused) {
  exec(
      "INSERT INTO jobs (project_id, submitted_by, state, model, prompt, width, height, steps, "
      "guidance, seed, count, sampler, mode, strength, max_attempts, created_at, queued_at, "
      "updated_at) VALUES (10, 1, 'queued', 'null', 'p', 64, 64, 4, 7, 1, 1, 'euler', 'inpaint', "
      "0.5, 3, 0, 0, 0)");
  EXPECT_EQ(db_->last_insert_rowid(), 4);  // job 3 was deleted: its id stays used
  exec(
      "INSERT INTO images (project_id, job_id, idx, created_by, sha256, bytes, width, height, "
      "seed, created_at, source, original_name) VALUES (10, NULL, 0, 2, 'dd', 40, 8, 8, 0, 0, "
      "'upload', 'cat.png')");
  EXPECT_EQ(db_->last_insert_rowid(), 103);
}

TEST_F(Migration0007Test, UploadsNeedNoJobAndCountTowardsDiskUse) {
  exec(
      "INSERT INTO images (project_id, job_id, idx, created_by, sha256, bytes, width, height, "
      "seed, created_at, source) VALUES (10, NULL, 0, 2, 'dd', 40, 8, 8, 0, 0, 'upload')");
  EXPECT_EQ(count("SELECT disk_bytes FROM projects WHERE id = 10"), 1540);
  // An upload with a job, or a generated image without one, is refused.
  EXPECT_FALSE(db_->exec("INSERT INTO images (project_id, job_id, idx, sha256, bytes, width, "
                         "height, seed, created_at, source) VALUES (10, 1, 5, 'ee', 1, 8, 8, 0, "
                         "0, 'upload')")
                   .is_ok());
  EXPECT_FALSE(db_->exec("INSERT INTO images (project_id, job_id, idx, sha256, bytes, width, "
                         "height, seed, created_at) VALUES (10, NULL, 0, 'ee', 1, 8, 8, 0, 0)")
                   .is_ok());
  // The triggers came back: removing the upload takes its bytes away.
  exec("DELETE FROM images WHERE sha256 = 'dd'");
  EXPECT_EQ(count("SELECT disk_bytes FROM projects WHERE id = 10"), 1500);
}

TEST_F(Migration0007Test, NewModesAndEditColumnsAreChecked) {
  const std::string insert =
      "INSERT INTO jobs (project_id, submitted_by, state, model, prompt, width, height, steps, "
      "guidance, seed, count, sampler, strength, max_attempts, created_at, queued_at, "
      "updated_at, mode, mask_blur, inpaint_area) VALUES (10, 1, 'queued', 'null', 'p', 64, 64, "
      "4, 7, 1, 1, 'euler', 0.5, 3, 0, 0, 0, ";
  EXPECT_TRUE(db_->exec(insert + "'outpaint', 4, 'whole')").is_ok());
  EXPECT_FALSE(db_->exec(insert + "'sketch', 4, 'whole')").is_ok());
  EXPECT_FALSE(db_->exec(insert + "'inpaint', -1, 'whole')").is_ok());
  EXPECT_FALSE(db_->exec(insert + "'inpaint', 4, 'everything')").is_ok());
}

TEST_F(Migration0007Test, CascadesStillWorkAfterTheRebuild) {
  // A deleted mask leaves the job (SET NULL); a deleted job takes its images and their
  // reactions along; a deleted parent image leaves its children (SET NULL).
  exec(
      "INSERT INTO images (id, project_id, job_id, idx, created_by, sha256, bytes, width, "
      "height, seed, created_at, source) VALUES (200, 10, NULL, 0, 2, 'mm', 4, 64, 64, 0, 0, "
      "'upload')");
  exec("UPDATE jobs SET mask_image_id = 200 WHERE id = 2");
  exec("DELETE FROM images WHERE id = 200");
  EXPECT_EQ(count("SELECT COUNT(*) FROM jobs WHERE id = 2 AND mask_image_id IS NULL"), 1);
  exec("DELETE FROM images WHERE id = 100");
  EXPECT_EQ(count("SELECT COUNT(*) FROM images WHERE id = 101 AND parent_image_id IS NULL"), 1);
  exec("DELETE FROM jobs WHERE id = 2");
  EXPECT_EQ(count("SELECT COUNT(*) FROM images"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM reactions"), 0);
}

}  // namespace
}  // namespace atelier::store
