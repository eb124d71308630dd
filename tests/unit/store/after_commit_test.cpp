// Db::after_commit() as the Store runs it: after the COMMIT, in order, before `done`; never for
// a transaction that rolled back, also when it shared a group commit with others that did not.
#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/store/store.h"
#include "tests/unit/store/store_fixture.h"

namespace atelier::store::storetest {
namespace {

// A log the callbacks write into from the writer thread.
struct Trace {
  std::mutex mu;
  std::vector<std::string> lines;
  void add(std::string s) {
    std::lock_guard lock(mu);
    lines.push_back(std::move(s));
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mu);
    return lines;
  }
};

TEST_F(StoreTest, AfterCommitWorkRunsInOrderAfterTheCommitAndBeforeDone) {
  ASSERT_NO_FATAL_FAILURE(open());
  Trace trace;
  std::promise<void> finished;
  store_->submit_write(
      [&](Db& db) {
        db.after_commit([&] { trace.add("first"); });
        ATELIER_RETURN_IF_ERROR(insert_item(db, "x"));
        db.after_commit([&] { trace.add("second"); });
        trace.add("txn");
        return Status::ok();
      },
      [&](Status st) {
        trace.add(st.is_ok() ? "done ok" : "done failed");
        finished.set_value();
      });
  finished.get_future().wait();
  EXPECT_EQ(trace.get(), (std::vector<std::string>{"txn", "first", "second", "done ok"}));
}

TEST_F(StoreTest, AfterCommitWorkOfARolledBackTransactionNeverRuns) {
  ASSERT_NO_FATAL_FAILURE(open());
  Trace trace;
  Status st = store_->write([&](Db& db) {
    db.after_commit([&] { trace.add("must not run"); });
    return Status::invalid_argument("changed my mind");
  });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // Nor later, with the next transaction's work.
  ASSERT_TRUE(store_
                  ->write([&](Db& db) {
                    db.after_commit([&] { trace.add("next"); });
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(trace.get(), (std::vector<std::string>{"next"}));
}

TEST_F(StoreTest, InAGroupCommitOnlyTheFailedTransactionsWorkIsDropped) {
  ASSERT_NO_FATAL_FAILURE(open());
  // Hold the writer so that the next writes queue up and share one COMMIT.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  store_->submit_write(
      [&](Db&) {
        holding.set_value();
        released.wait();
        return Status::ok();
      },
      {});
  holding.get_future().wait();
  Trace trace;
  constexpr int kWrites = 6;
  std::vector<std::promise<void>> done(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    store_->submit_write(
        [&, i](Db& db) -> Status {
          db.after_commit([&, i] { trace.add("w" + std::to_string(i)); });
          ATELIER_RETURN_IF_ERROR(insert_item(db, "w" + std::to_string(i)));
          if (i == 2) return Status::invalid_argument("fails", "value");
          if (i == 4) throw std::runtime_error("throws");
          return Status::ok();
        },
        [&, i](Status) { done[i].set_value(); });
  }
  const uint64_t groups_before = store_->stats().group_commits;
  release.set_value();
  for (auto& d : done) d.get_future().wait();
  EXPECT_GT(store_->stats().group_commits, groups_before);
  EXPECT_EQ(trace.get(), (std::vector<std::string>{"w0", "w1", "w3", "w5"}));
}

TEST_F(StoreTest, WithWriterRunsOnTheWritersOwnConnection) {
  ASSERT_NO_FATAL_FAILURE(open());
  std::thread::id writer_thread;
  ASSERT_TRUE(store_
                  ->with_writer([&](Db& db) {
                    writer_thread = std::this_thread::get_id();
                    // A temporary table lives on one connection only.
                    EXPECT_TRUE(db.exec("CREATE TEMP TABLE mark (v TEXT)").is_ok());
                    EXPECT_TRUE(db.exec("INSERT INTO mark VALUES ('mark')").is_ok());
                  })
                  .is_ok());
  EXPECT_NE(writer_thread, std::this_thread::get_id());
  // What it left on the connection is there for every later transaction.
  std::string seen;
  ASSERT_TRUE(store_
                  ->write([&](Db& db) {
                    auto stmt = db.prepare("SELECT v FROM mark");
                    if (!stmt.is_ok()) return stmt.status();
                    auto row = stmt->step();
                    if (!row.is_ok()) return row.status();
                    if (*row) seen = stmt->column_text(0);
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(seen, "mark");
}

}  // namespace
}  // namespace atelier::store::storetest
