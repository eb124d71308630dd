#include "server/store/sqlite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/support/temp_dir.h"

namespace atelier::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// A fresh directory per test, removed afterwards.
class SqliteTest : public ::testing::Test {
 protected:
  Db open_rw(const std::string& name = "test.db") {
    Result<Db> db = Db::open(dir_ / name, OpenMode::kReadWriteCreate);
    EXPECT_TRUE(db.is_ok()) << db.status().to_string();
    return std::move(db).value();
  }

  testing::TempDir tmp_{"atelier-store-test"};
  fs::path dir_ = tmp_.path();
};

static_assert(!std::is_copy_constructible_v<Db> && std::is_nothrow_move_constructible_v<Db>);
static_assert(!std::is_copy_constructible_v<Statement> &&
              std::is_nothrow_move_constructible_v<Statement>);

TEST_F(SqliteTest, OpenCreatesFileAndRoundTripsEveryType) {
  Db db = open_rw();
  EXPECT_TRUE(fs::exists(dir_ / "test.db"));
  ASSERT_TRUE(db.exec("CREATE TABLE t(i INTEGER, d REAL, s TEXT, b BLOB, n)").is_ok());

  Result<Statement> insert = db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)");
  ASSERT_TRUE(insert.is_ok()) << insert.status().to_string();
  const std::vector<std::uint8_t> blob = {0x00, 0xff, 0x10, 0x00};
  ASSERT_TRUE(insert->bind_int64(1, INT64_MIN).is_ok());
  ASSERT_TRUE(insert->bind_double(2, 2.5).is_ok());
  ASSERT_TRUE(insert->bind_text(3, "h\xc3\xa9llo").is_ok());
  ASSERT_TRUE(insert->bind_blob(4, blob).is_ok());
  ASSERT_TRUE(insert->bind_null(5).is_ok());
  Result<bool> stepped = insert->step();
  ASSERT_TRUE(stepped.is_ok()) << stepped.status().to_string();
  EXPECT_FALSE(*stepped);
  EXPECT_EQ(db.changes(), 1);
  EXPECT_EQ(db.last_insert_rowid(), 1);

  Result<Statement> select = db.prepare("SELECT i, d, s, b, n FROM t");
  ASSERT_TRUE(select.is_ok());
  ASSERT_EQ(select->column_count(), 5);
  EXPECT_EQ(select->column_name(2), "s");
  Result<bool> row = select->step();
  ASSERT_TRUE(row.is_ok() && *row);
  EXPECT_EQ(select->column_type(0), ColumnType::kInteger);
  EXPECT_EQ(select->column_int64(0), INT64_MIN);
  EXPECT_EQ(select->column_type(1), ColumnType::kFloat);
  EXPECT_DOUBLE_EQ(select->column_double(1), 2.5);
  EXPECT_EQ(select->column_type(2), ColumnType::kText);
  EXPECT_EQ(select->column_text(2), "h\xc3\xa9llo");
  EXPECT_EQ(select->column_type(3), ColumnType::kBlob);
  EXPECT_EQ(select->column_blob(3), blob);
  EXPECT_TRUE(select->column_is_null(4));
  row = select->step();
  ASSERT_TRUE(row.is_ok());
  EXPECT_FALSE(*row);
}

TEST_F(SqliteTest, EmptyTextAndBlobStayValuesAndNulsSurvive) {
  Db db = open_rw();
  ASSERT_TRUE(db.exec("CREATE TABLE t(s TEXT, b BLOB)").is_ok());
  Result<Statement> insert = db.prepare("INSERT INTO t VALUES (?, ?)");
  ASSERT_TRUE(insert.is_ok());
  // Null data pointers: SQLite would store NULL for these unless the wrapper takes care.
  ASSERT_TRUE(insert->bind_text(1, std::string_view()).is_ok());
  ASSERT_TRUE(insert->bind_blob(2, std::span<const std::uint8_t>()).is_ok());
  ASSERT_TRUE(insert->step().is_ok());
  insert->reset();
  const std::string with_nul("a\0b", 3);
  ASSERT_TRUE(insert->bind_text(1, with_nul).is_ok());
  ASSERT_TRUE(insert->step().is_ok());

  Result<Statement> select = db.prepare("SELECT s, b, typeof(s), typeof(b) FROM t ORDER BY rowid");
  ASSERT_TRUE(select.is_ok());
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->column_text(2), "text");
  EXPECT_EQ(select->column_text(3), "blob");
  EXPECT_EQ(select->column_text(0), "");
  EXPECT_TRUE(select->column_blob(1).empty());
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->column_text(0), with_nul);
}

TEST_F(SqliteTest, ErrorsCarrySqliteMessageAndShortSqlExcerpt) {
  Db db = open_rw();
  const std::string sql =
      "-- leading comment is skipped\n  SELECT   *\n  FROM no_such_table WHERE "
      "a_rather_long_column_name = "
      "'and a long literal that pushes this statement well past eighty characters'";
  Result<Statement> stmt = db.prepare(sql);
  ASSERT_FALSE(stmt.is_ok());
  const Status& st = stmt.status();
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_THAT(st.message(), HasSubstr("no such table: no_such_table"));
  EXPECT_THAT(st.message(), HasSubstr("in SQL: SELECT * FROM no_such_table WHERE"));
  EXPECT_THAT(st.message(), Not(HasSubstr("leading comment")));
  EXPECT_THAT(st.message(), Not(HasSubstr("eighty characters")));
  const std::string excerpt = st.message().substr(st.message().find("in SQL: ") + 8);
  EXPECT_LE(excerpt.size(), 83u);
  EXPECT_TRUE(excerpt.ends_with("...")) << excerpt;
}

TEST_F(SqliteTest, ExecNamesTheFailingStatementAndKeepsEarlierOnes) {
  Db db = open_rw();
  Status st = db.exec(
      "CREATE TABLE a(x);\n"
      "-- then something broken\n"
      "INSERT INTO missing VALUES (1);\n"
      "CREATE TABLE b(x);");
  ASSERT_FALSE(st.is_ok());
  EXPECT_THAT(st.message(), HasSubstr("in SQL: INSERT INTO missing VALUES (1);"));
  EXPECT_THAT(st.message(), Not(HasSubstr("CREATE TABLE a")));
  EXPECT_EQ(*db.query_int64("SELECT count(*) FROM sqlite_schema WHERE name = 'a'"), 1);
  EXPECT_EQ(*db.query_int64("SELECT count(*) FROM sqlite_schema WHERE name = 'b'"), 0);
}

TEST_F(SqliteTest, PrepareTakesExactlyOneStatement) {
  Db db = open_rw();
  Result<Statement> two = db.prepare("SELECT 1; SELECT 2");
  ASSERT_FALSE(two.is_ok());
  EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument);

  EXPECT_TRUE(db.prepare("SELECT 1;  -- trailing comment\n /* and another */ ;").is_ok());
  Result<Statement> none = db.prepare("  -- nothing here\n");
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteTest, ConstraintViolationsMapToStatusCodes) {
  Db db = open_rw();
  ASSERT_TRUE(db.exec("PRAGMA foreign_keys=ON").is_ok());
  ASSERT_TRUE(db.exec("CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
                      " n INTEGER CHECK (n > 0));"
                      "CREATE TABLE child(parent_id INTEGER NOT NULL REFERENCES parent(id));"
                      "INSERT INTO parent VALUES (1, 'a', 1);")
                  .is_ok());

  EXPECT_EQ(db.exec("INSERT INTO parent VALUES (2, 'a', 1)").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(db.exec("INSERT INTO parent VALUES (1, 'b', 1)").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(db.exec("INSERT INTO parent VALUES (3, NULL, 1)").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(db.exec("INSERT INTO parent VALUES (4, 'd', 0)").code(),
            StatusCode::kFailedPrecondition);
  const Status fk = db.exec("INSERT INTO child VALUES (99)");
  EXPECT_EQ(fk.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(fk.message(), HasSubstr("FOREIGN KEY constraint failed"));

  // Through step() too, not only exec().
  Result<Statement> insert = db.prepare("INSERT INTO parent VALUES (?, 'a', 1)");
  ASSERT_TRUE(insert.is_ok());
  ASSERT_TRUE(insert->bind_int64(1, 7).is_ok());
  Result<bool> stepped = insert->step();
  ASSERT_FALSE(stepped.is_ok());
  EXPECT_EQ(stepped.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(stepped.status().message(), HasSubstr("UNIQUE constraint failed: parent.name"));
}

TEST_F(SqliteTest, BusyMapsToUnavailableAfterTheBusyTimeout) {
  Db a = open_rw();
  Db b = open_rw();
  ASSERT_TRUE(a.exec("CREATE TABLE t(x)").is_ok());
  ASSERT_TRUE(a.exec("BEGIN IMMEDIATE").is_ok());

  b.set_busy_timeout(std::chrono::milliseconds(0));
  EXPECT_EQ(b.exec("BEGIN IMMEDIATE").code(), StatusCode::kUnavailable);

  b.set_busy_timeout(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(b.exec("INSERT INTO t VALUES (1)").code(), StatusCode::kUnavailable);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));

  ASSERT_TRUE(a.exec("COMMIT").is_ok());
  EXPECT_TRUE(b.exec("INSERT INTO t VALUES (1)").is_ok());
}

TEST_F(SqliteTest, ReadOnlyConnectionsRefuseWritesAndMissingFiles) {
  {
    Db rw = open_rw();
    ASSERT_TRUE(rw.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1);").is_ok());
  }
  Result<Db> ro = Db::open(dir_ / "test.db", OpenMode::kReadOnly);
  ASSERT_TRUE(ro.is_ok()) << ro.status().to_string();
  EXPECT_EQ(*ro->query_int64("SELECT x FROM t"), 1);
  const Status write = ro->exec("INSERT INTO t VALUES (2)");
  EXPECT_EQ(write.code(), StatusCode::kIoError);
  EXPECT_THAT(write.message(), HasSubstr("readonly"));

  Result<Db> missing = Db::open(dir_ / "nope" / "missing.db", OpenMode::kReadOnly);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_THAT(missing.status().message(), HasSubstr("missing.db"));
}

TEST_F(SqliteTest, GarbageFileIsCorruption) {
  std::ofstream(dir_ / "junk.db") << std::string(4096, 'x');
  Db db = open_rw("junk.db");
  Result<std::int64_t> n = db.query_int64("SELECT count(*) FROM sqlite_schema");
  ASSERT_FALSE(n.is_ok());
  EXPECT_EQ(n.status().code(), StatusCode::kCorruption);
}

TEST_F(SqliteTest, ResetRerunsWithNewBindingsAndDoneRestarts) {
  Db db = open_rw();
  ASSERT_TRUE(db.exec("CREATE TABLE t(x INTEGER)").is_ok());
  Result<Statement> insert = db.prepare("INSERT INTO t VALUES (?)");
  ASSERT_TRUE(insert.is_ok());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(insert->bind_int64(1, i).is_ok());
    ASSERT_TRUE(insert->step().is_ok());
    EXPECT_EQ(db.last_insert_rowid(), i);
    insert->reset();
  }
  // Binding mid-iteration is misuse; after reset() it works and the old binding was kept.
  Result<Statement> select = db.prepare("SELECT x FROM t WHERE x >= ? ORDER BY x");
  ASSERT_TRUE(select.is_ok());
  ASSERT_TRUE(select->bind_int64(1, 2).is_ok());
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->column_int64(0), 2);
  EXPECT_EQ(select->bind_int64(1, 1).code(), StatusCode::kInternal);
  select->reset();
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->column_int64(0), 2);
  ASSERT_TRUE(*select->step());
  ASSERT_FALSE(*select->step());
  // After "done" the next step starts over.
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->column_int64(0), 2);

  EXPECT_TRUE(db.exec("UPDATE t SET x = x + 10").is_ok());
  EXPECT_EQ(db.changes(), 3);
  EXPECT_EQ(select->bind_int64(5, 1).code(), StatusCode::kInternal);  // also: mid-iteration
  select->reset();
  select->clear_bindings();
  Result<bool> none = select->step();  // x >= NULL matches nothing
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(*none);
}

TEST_F(SqliteTest, MovedFromHandlesAreEmptyAndSafe) {
  Db db = open_rw();
  Db moved = std::move(db);
  EXPECT_FALSE(db.is_open());  // NOLINT(bugprone-use-after-move): testing exactly that
  EXPECT_TRUE(moved.is_open());
  EXPECT_EQ(db.exec("SELECT 1").code(), StatusCode::kInternal);

  Result<Statement> stmt = moved.prepare("SELECT 42");
  ASSERT_TRUE(stmt.is_ok());
  Statement owner = std::move(stmt).value();
  Statement empty;
  EXPECT_FALSE(empty.is_valid());
  EXPECT_EQ(empty.step().status().code(), StatusCode::kInternal);
  empty = std::move(owner);
  EXPECT_FALSE(owner.is_valid());  // NOLINT(bugprone-use-after-move)
  ASSERT_TRUE(*empty.step());
  EXPECT_EQ(empty.column_int64(0), 42);
  EXPECT_EQ(empty.sql(), "SELECT 42");
}

TEST_F(SqliteTest, TransactionStateAndOneRowQueries) {
  Db db = open_rw();
  EXPECT_FALSE(db.in_transaction());
  ASSERT_TRUE(db.exec("BEGIN").is_ok());
  EXPECT_TRUE(db.in_transaction());
  ASSERT_TRUE(db.exec("CREATE TABLE t(x TEXT)").is_ok());
  ASSERT_TRUE(db.exec("ROLLBACK").is_ok());
  EXPECT_FALSE(db.in_transaction());
  EXPECT_EQ(*db.query_int64("SELECT count(*) FROM sqlite_schema"), 0);

  ASSERT_TRUE(db.exec("CREATE TABLE t(x TEXT)").is_ok());
  Result<std::string> none = db.query_text("SELECT x FROM t");
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*db.query_text("SELECT 'a' || 'b'"), "ab");
}

}  // namespace
}  // namespace atelier::store
