#include "server/store/migrations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace atelier::store {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class MigrationsTest : public ::testing::Test {
 protected:
  Db open_db() {
    Result<Db> db = Db::open(dir_ / "m.db", OpenMode::kReadWriteCreate);
    EXPECT_TRUE(db.is_ok()) << db.status().to_string();
    return std::move(db).value();
  }

  static bool table_exists(Db& db, const std::string& name) {
    Result<Statement> stmt = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = ?");
    EXPECT_TRUE(stmt.is_ok());
    EXPECT_TRUE(stmt->bind_text(1, name).is_ok());
    EXPECT_TRUE(*stmt->step());
    return stmt->column_int64(0) == 1;
  }

  static std::vector<std::string> recorded(Db& db) {
    std::vector<std::string> out;
    Result<Statement> stmt =
        db.prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version");
    EXPECT_TRUE(stmt.is_ok()) << stmt.status().to_string();
    while (*stmt->step()) {
      EXPECT_FALSE(stmt->column_text(2).empty());
      out.push_back(std::to_string(stmt->column_int64(0)) + ":" + stmt->column_text(1));
    }
    return out;
  }

  testing::TempDir tmp_{"atelier-store-test"};
  fs::path dir_ = tmp_.path();
};

// Each migration depends on the one before, so applying out of order would fail.
std::vector<Migration> three_migrations() {
  return {
      {1, "people", "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
      {2, "people_email", "ALTER TABLE people ADD COLUMN email TEXT;"},
      {3, "seed", "INSERT INTO people(name, email) VALUES ('ada', 'ada@example.com');"},
  };
}

TEST_F(MigrationsTest, EmbeddedMigrationsAreContiguousFromOne) {
  const std::vector<Migration>& embedded = embedded_migrations();
  ASSERT_FALSE(embedded.empty());
  for (std::size_t i = 0; i < embedded.size(); ++i) {
    SCOPED_TRACE(migration_file_name(embedded[i]));
    EXPECT_EQ(embedded[i].version, static_cast<int>(i) + 1);
    EXPECT_FALSE(embedded[i].name.empty());
    EXPECT_FALSE(embedded[i].sql.empty());
  }
  EXPECT_EQ(migration_file_name(embedded[0]), "0001_instance.sql");
}

TEST_F(MigrationsTest, EmbeddedSqlIsByteForByteTheFile) {
  // Tests run from the repository root; this catches escaping mistakes in the generator.
  for (const Migration& m : embedded_migrations()) {
    const fs::path file = fs::path(ATELIER_SOURCE_DIR) / "migrations" / migration_file_name(m);
    std::ifstream in(file, std::ios::binary);
    ASSERT_TRUE(in) << file;
    std::stringstream contents;
    contents << in.rdbuf();
    EXPECT_EQ(m.sql, contents.str()) << file;
  }
}

TEST_F(MigrationsTest, EmbeddedMigrationsApplyToAFreshDatabase) {
  Db db = open_db();
  Result<MigrationReport> report = apply_migrations(db, embedded_migrations());
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->from_version, 0);
  EXPECT_EQ(report->to_version, static_cast<int>(embedded_migrations().size()));
  EXPECT_TRUE(table_exists(db, "instance"));
  EXPECT_TRUE(table_exists(db, "settings"));
}

TEST_F(MigrationsTest, AppliesInOrderOnceAndIsIdempotent) {
  {
    Db db = open_db();
    Result<MigrationReport> report = apply_migrations(db, three_migrations());
    ASSERT_TRUE(report.is_ok()) << report.status().to_string();
    EXPECT_EQ(report->from_version, 0);
    EXPECT_EQ(report->to_version, 3);
    EXPECT_THAT(report->applied,
                ElementsAre("0001_people.sql", "0002_people_email.sql", "0003_seed.sql"));
    EXPECT_THAT(recorded(db), ElementsAre("1:people", "2:people_email", "3:seed"));
    ASSERT_TRUE(db.exec("INSERT INTO people(name) VALUES ('grace')").is_ok());
  }
  // Re-open: nothing runs again (the seed would add a second 'ada'), data survives.
  Db db = open_db();
  Result<MigrationReport> again = apply_migrations(db, three_migrations());
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(again->from_version, 3);
  EXPECT_EQ(again->to_version, 3);
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(*db.query_int64("SELECT count(*) FROM people"), 2);
  EXPECT_EQ(*db.query_int64("SELECT count(*) FROM schema_migrations"), 3);
}

TEST_F(MigrationsTest, AppliesOnlyTheNewOnesAfterAnUpgrade) {
  Db db = open_db();
  std::vector<Migration> migrations = three_migrations();
  std::vector<Migration> old_binary(migrations.begin(), migrations.begin() + 1);
  ASSERT_TRUE(apply_migrations(db, old_binary).is_ok());
  Result<MigrationReport> report = apply_migrations(db, migrations);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->from_version, 1);
  EXPECT_EQ(report->to_version, 3);
  EXPECT_THAT(report->applied, ElementsAre("0002_people_email.sql", "0003_seed.sql"));
}

TEST_F(MigrationsTest, FailingMigrationRollsBackFullyAndNamesTheFile) {
  Db db = open_db();
  std::vector<Migration> migrations = three_migrations();
  migrations[1].sql =
      "CREATE TABLE half_done(x);\n"
      "INSERT INTO people(name) VALUES ('partial');\n"
      "INSERT INTO no_such_table VALUES (1);\n";
  Result<MigrationReport> report = apply_migrations(db, migrations);
  ASSERT_FALSE(report.is_ok());
  EXPECT_THAT(report.status().message(), HasSubstr("0002_people_email.sql"));
  EXPECT_THAT(report.status().message(), HasSubstr("no such table: no_such_table"));

  EXPECT_FALSE(db.in_transaction());
  EXPECT_FALSE(table_exists(db, "half_done"));
  EXPECT_EQ(*db.query_int64("SELECT count(*) FROM people"), 0);
  EXPECT_THAT(recorded(db), ElementsAre("1:people"));  // the earlier one stays

  // Fixed in the next build: it picks up where it failed.
  Result<MigrationReport> fixed = apply_migrations(db, three_migrations());
  ASSERT_TRUE(fixed.is_ok()) << fixed.status().to_string();
  EXPECT_EQ(fixed->from_version, 1);
  EXPECT_EQ(fixed->to_version, 3);
}

TEST_F(MigrationsTest, RefusesADatabaseNewerThanTheBinary) {
  Db db = open_db();
  ASSERT_TRUE(apply_migrations(db, three_migrations()).is_ok());
  std::vector<Migration> older = three_migrations();
  older.pop_back();
  Result<MigrationReport> report = apply_migrations(db, older);
  ASSERT_FALSE(report.is_ok());
  EXPECT_EQ(report.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(report.status().message(),
            "database schema version 3 is newer than this binary supports (2); upgrade atelier "
            "or restore a backup");
  EXPECT_EQ(*db.query_int64("SELECT count(*) FROM people"), 1);  // untouched
}

TEST_F(MigrationsTest, RefusesAKnownVersionRecordedUnderAnotherName) {
  Db db = open_db();
  ASSERT_TRUE(apply_migrations(db, three_migrations()).is_ok());
  std::vector<Migration> renamed = three_migrations();
  renamed[1].name = "people_phone";
  Result<MigrationReport> report = apply_migrations(db, renamed);
  ASSERT_FALSE(report.is_ok());
  EXPECT_EQ(report.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("'people_email'"));
  EXPECT_THAT(report.status().message(), HasSubstr("0002_people_phone.sql"));
}

TEST_F(MigrationsTest, RefusesListsThatAreNotContiguousFromOne) {
  Db db = open_db();
  std::vector<Migration> gap = three_migrations();
  gap.erase(gap.begin() + 1);
  EXPECT_EQ(apply_migrations(db, gap).status().code(), StatusCode::kInvalidArgument);

  std::vector<Migration> unsorted = three_migrations();
  std::swap(unsorted[0], unsorted[1]);
  EXPECT_EQ(apply_migrations(db, unsorted).status().code(), StatusCode::kInvalidArgument);

  std::vector<Migration> from_two = {{2, "x", "SELECT 1;"}};
  EXPECT_EQ(apply_migrations(db, from_two).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(table_exists(db, "people"));
}

TEST_F(MigrationsTest, GapInRecordedVersionsIsCorruption) {
  Db db = open_db();
  ASSERT_TRUE(apply_migrations(db, three_migrations()).is_ok());
  ASSERT_TRUE(db.exec("DELETE FROM schema_migrations WHERE version = 2").is_ok());
  EXPECT_EQ(apply_migrations(db, three_migrations()).status().code(), StatusCode::kCorruption);
}

TEST_F(MigrationsTest, MigrationThatEndsItsOwnTransactionIsAnError) {
  Db db = open_db();
  std::vector<Migration> migrations = {{1, "sneaky", "CREATE TABLE t(x); COMMIT;"}};
  Result<MigrationReport> report = apply_migrations(db, migrations);
  ASSERT_FALSE(report.is_ok());
  EXPECT_THAT(report.status().message(), HasSubstr("0001_sneaky.sql"));
  EXPECT_THAT(report.status().message(), HasSubstr("ended the transaction"));
  EXPECT_FALSE(db.in_transaction());
  EXPECT_TRUE(recorded(db).empty());
}

TEST_F(MigrationsTest, ForeignKeyViolationRefusesTheMigrationAndKeysComeBackOn) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("PRAGMA foreign_keys=ON").is_ok());
  std::vector<Migration> migrations = {
      {1, "parents", "CREATE TABLE parents(id INTEGER PRIMARY KEY);"},
      {2, "children",
       "CREATE TABLE children(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents(id));"
       "INSERT INTO children(id, parent) VALUES (1, 42);"},
  };
  Result<MigrationReport> report = apply_migrations(db, migrations);
  ASSERT_FALSE(report.is_ok());
  EXPECT_THAT(report.status().message(), HasSubstr("foreign key violation in table 'children'"));
  EXPECT_FALSE(table_exists(db, "children"));
  EXPECT_EQ(*db.query_int64("PRAGMA foreign_keys"), 1);
}

TEST_F(MigrationsTest, TableRebuildDoesNotCascadeWhileForeignKeysAreOff) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("PRAGMA foreign_keys=ON").is_ok());
  std::vector<Migration> migrations = {
      {1, "tables",
       "CREATE TABLE parents(id INTEGER PRIMARY KEY);"
       "CREATE TABLE children(id INTEGER PRIMARY KEY,"
       " parent INTEGER REFERENCES parents(id) ON DELETE CASCADE);"
       "INSERT INTO parents(id) VALUES (1); INSERT INTO children(id, parent) VALUES (7, 1);"},
      {2, "rebuild_parents",
       "CREATE TABLE parents_new(id INTEGER PRIMARY KEY, note TEXT);"
       "INSERT INTO parents_new(id) SELECT id FROM parents;"
       "DROP TABLE parents; ALTER TABLE parents_new RENAME TO parents;"},
  };
  ASSERT_TRUE(apply_migrations(db, migrations).is_ok());
  EXPECT_EQ(*db.query_int64("SELECT COUNT(*) FROM children"), 1);
  // And the cascade works again afterwards.
  ASSERT_TRUE(db.exec("DELETE FROM parents WHERE id = 1").is_ok());
  EXPECT_EQ(*db.query_int64("SELECT COUNT(*) FROM children"), 0);
}

TEST_F(MigrationsTest, EmptyListOnAFreshDatabaseIsVersionZero) {
  Db db = open_db();
  Result<MigrationReport> report = apply_migrations(db, {});
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->from_version, 0);
  EXPECT_EQ(report->to_version, 0);
  EXPECT_TRUE(table_exists(db, "schema_migrations"));
}

}  // namespace
}  // namespace atelier::store
