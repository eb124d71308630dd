// The per-connection statement cache behind Db::prepare() and Db::exec().
#include "server/store/statement_cache.h"

#include <gtest/gtest.h>

#include <string>

#include "server/store/sqlite.h"
#include "tests/support/temp_dir.h"

namespace atelier::store {
namespace {

class StatementCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<Db> db = Db::open(tmp_.path() / "cache.db", OpenMode::kReadWriteCreate);
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    db_ = std::move(db).value();
    ASSERT_TRUE(db_.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").is_ok());
    ASSERT_TRUE(db_.exec("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')").is_ok());
  }

  std::string value_of(int64_t id) {
    Result<Statement> stmt = db_.prepare("SELECT v FROM t WHERE id = ?");
    EXPECT_TRUE(stmt.is_ok());
    EXPECT_TRUE(stmt->bind_int64(1, id).is_ok());
    Result<bool> row = stmt->step();
    EXPECT_TRUE(row.is_ok());
    return row.is_ok() && *row ? stmt->column_text(0) : "<none>";
  }

  testing::TempDir tmp_{"atelier-statement-cache"};
  Db db_;
};

TEST_F(StatementCacheTest, SameTextIsCompiledOnceAndComesBackClean) {
  const StatementCacheStats before = db_.statement_cache_stats();
  EXPECT_EQ(value_of(1), "a");
  EXPECT_EQ(value_of(3), "c");
  EXPECT_EQ(value_of(2), "b");
  const StatementCacheStats after = db_.statement_cache_stats();
  EXPECT_EQ(after.misses - before.misses, 1u);
  EXPECT_EQ(after.hits - before.hits, 2u);

  // A reused statement starts over with no bindings: the parameter reads as NULL.
  Result<Statement> stmt = db_.prepare("SELECT v FROM t WHERE id = ?");
  ASSERT_TRUE(stmt.is_ok());
  EXPECT_EQ(db_.statement_cache_stats().hits - after.hits, 1u);
  Result<bool> row = stmt->step();
  ASSERT_TRUE(row.is_ok());
  EXPECT_FALSE(*row);
}

TEST_F(StatementCacheTest, AStatementInUseIsNeverHandedOutTwice) {
  Result<Statement> outer = db_.prepare("SELECT id FROM t ORDER BY id");
  ASSERT_TRUE(outer.is_ok());
  std::string seen;
  while (true) {
    Result<bool> row = outer->step();
    ASSERT_TRUE(row.is_ok());
    if (!*row) break;
    // The same text again, while the outer one is mid-iteration: its own statement.
    Result<Statement> inner = db_.prepare("SELECT id FROM t ORDER BY id");
    ASSERT_TRUE(inner.is_ok());
    Result<bool> first = inner->step();
    ASSERT_TRUE(first.is_ok() && *first);
    seen +=
        std::to_string(outer->column_int64(0)) + ":" + std::to_string(inner->column_int64(0)) + " ";
  }
  EXPECT_EQ(seen, "1:1 2:1 3:1 ");
  // Two compiled copies exist now, both idle.
  Result<Statement> a = db_.prepare("SELECT id FROM t ORDER BY id");
  Result<Statement> b = db_.prepare("SELECT id FROM t ORDER BY id");
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_TRUE(a->step().value());
  ASSERT_TRUE(b->step().value());
  ASSERT_TRUE(a->step().value());
  EXPECT_EQ(a->column_int64(0), 2);
  EXPECT_EQ(b->column_int64(0), 1);
}

TEST_F(StatementCacheTest, TextThatIsNotExactlyOneStatementIsNotCached) {
  // SQLite files a statement under its own text ("SELECT 1;"), which a caller passing trailing
  // blanks never looks up: such text must not pile up copies in the cache.
  const StatementCacheStats before = db_.statement_cache_stats();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(db_.prepare("SELECT 1;  ").is_ok());
  StatementCacheStats after = db_.statement_cache_stats();
  EXPECT_EQ(after.idle, before.idle);
  EXPECT_EQ(after.misses - before.misses, 3u);
  // A script's statements are compiled each time; only its exact last statement can be reused.
  ASSERT_TRUE(db_.exec("UPDATE t SET v = v; UPDATE t SET v = v").is_ok());
  const size_t idle = db_.statement_cache_stats().idle;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(db_.exec("UPDATE t SET v = v; UPDATE t SET v = v").is_ok());
  }
  EXPECT_EQ(db_.statement_cache_stats().idle, idle);
  // The one-statement check still holds for text the cache has seen.
  ASSERT_TRUE(db_.prepare("SELECT 2").is_ok());
  EXPECT_EQ(db_.prepare("SELECT 2; SELECT 3").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StatementCacheTest, ExecReusesTransactionStatements) {
  ASSERT_TRUE(db_.exec("BEGIN IMMEDIATE").is_ok());
  ASSERT_TRUE(db_.exec("COMMIT").is_ok());
  const StatementCacheStats before = db_.statement_cache_stats();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(db_.exec("BEGIN IMMEDIATE").is_ok());
    EXPECT_TRUE(db_.in_transaction());
    ASSERT_TRUE(db_.exec("COMMIT").is_ok());
    EXPECT_FALSE(db_.in_transaction());
  }
  const StatementCacheStats after = db_.statement_cache_stats();
  EXPECT_EQ(after.hits - before.hits, 10u);
  EXPECT_EQ(after.misses, before.misses);
}

TEST_F(StatementCacheTest, AnUnfinishedQueryGivenBackDoesNotHoldItsRead) {
  ASSERT_TRUE(db_.query_text("PRAGMA journal_mode=WAL").is_ok());
  Result<Db> reader = Db::open(tmp_.path() / "cache.db", OpenMode::kReadOnly);
  ASSERT_TRUE(reader.is_ok());
  {
    Result<Statement> stmt = reader->prepare("SELECT v FROM t ORDER BY id");
    ASSERT_TRUE(stmt.is_ok());
    ASSERT_TRUE(stmt->step().value());  // mid-iteration: a read transaction is open
  }
  ASSERT_TRUE(db_.exec("INSERT INTO t (v) VALUES ('d')").is_ok());
  // A TRUNCATE checkpoint reports busy (column 0 = 1) while any reader still uses the log.
  Result<Statement> ckpt = db_.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_TRUE(ckpt.is_ok());
  ASSERT_TRUE(ckpt->step().value());
  EXPECT_EQ(ckpt->column_int64(0), 0);
}

TEST_F(StatementCacheTest, ManyDistinctQueriesStayWithinTheCap) {
  for (int i = 0; i < 300; ++i) {
    Result<Statement> stmt = db_.prepare("SELECT " + std::to_string(i));
    ASSERT_TRUE(stmt.is_ok());
    ASSERT_TRUE(stmt->step().value());
    EXPECT_EQ(stmt->column_int64(0), i);
  }
  EXPECT_LE(db_.statement_cache_stats().idle, detail::StatementCache::kMaxIdle);
  EXPECT_GE(db_.statement_cache_stats().idle, detail::StatementCache::kMaxIdle / 2);
}

TEST_F(StatementCacheTest, StatementsMayOutliveACloseAndMovesKeepThem) {
  Result<Statement> kept = db_.prepare("SELECT v FROM t WHERE id = 1");
  ASSERT_TRUE(kept.is_ok());
  Statement moved = std::move(kept).value();
  Statement target;
  target = std::move(moved);
  EXPECT_FALSE(moved.is_valid());
  ASSERT_TRUE(target.step().value());
  EXPECT_EQ(target.column_text(0), "a");
  db_.close();
  EXPECT_EQ(db_.statement_cache_stats().idle, 0u);
  // `target` is finalized by its destructor after the close; ASan runs would catch a misuse.
}

}  // namespace
}  // namespace atelier::store
