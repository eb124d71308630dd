// Checkpointing: explicit and periodic TRUNCATE checkpoints on the writer, and the background
// Checkpointer (with the writer's tail and four-times fallbacks) keeping the WAL bounded.
#include "server/store/checkpointer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "tests/unit/store/store_fixture.h"

namespace atelier::store::storetest {
namespace {

using namespace std::chrono_literals;

TEST_F(StoreTest, CheckpointTruncatesTheWal) {
  ASSERT_NO_FATAL_FAILURE(open());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(
        store_->write([&](Db& db) { return insert_item(db, std::string(500, 'x')); }).is_ok());
  }
  EXPECT_GT(wal_size(), 0u);
  const auto before = store_->stats().checkpoints_run;
  Status st = store_->checkpoint();
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(wal_size(), 0u);
  EXPECT_EQ(store_->stats().checkpoints_run, before + 1);
  EXPECT_EQ(count_items(), 50);
}

TEST_F(StoreTest, CheckpointReportsReadersHoldingTheWal) {
  options_.busy_timeout = 100ms;
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_TRUE(store_->write([](Db& db) { return insert_item(db, "x"); }).is_ok());
  Status during;
  ASSERT_TRUE(store_
                  ->read([&](Db& db) {
                    EXPECT_EQ(db.query_int64("SELECT count(*) FROM items").value(), 1);
                    during = store_->checkpoint();  // our open snapshot pins the log
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(during.code(), StatusCode::kUnavailable) << during.to_string();
  EXPECT_GE(store_->stats().checkpoints_incomplete, 1u);
  EXPECT_TRUE(store_->checkpoint().is_ok());
  EXPECT_EQ(wal_size(), 0u);
}

TEST_F(StoreTest, PeriodicCheckpointRunsWhenIdle) {
  options_.checkpoint_interval = 20ms;
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_TRUE(store_->write([](Db& db) { return insert_item(db, "x"); }).is_ok());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (store_->stats().checkpoints_run == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(store_->stats().checkpoints_run, 1u);
  EXPECT_EQ(wal_size(), 0u);
  // Idle with nothing written since: no further checkpoints (no pointless fsyncs).
  const auto settled = store_->stats().checkpoints_run;
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(store_->stats().checkpoints_run, settled);
}

// Commits no longer run SQLite's auto-checkpoint; the Checkpointer thread (and, for a writer
// that never pauses, the writer between transactions) must still keep the log bounded.
TEST_F(StoreTest, BackgroundCheckpointsKeepTheWalBounded) {
  options_.checkpoint_pages = 20;
  options_.synchronous_full = false;
  ASSERT_NO_FATAL_FAILURE(open());
  const std::string row(3000, 'x');  // about one page per write, plus index pages
  std::uintmax_t largest = 0;
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(store_->write([&](Db& db) { return insert_item(db, row); }).is_ok());
    largest = std::max(largest, wal_size());
  }
  // Unchecked, 400 such writes leave well over 1,000 pages (4 MiB) in the log. Checked, the
  // writer finishes a checkpoint itself at twice the threshold when idle (unless the background
  // thread holds the checkpoint lock just then) and always by four times it (80 pages); the
  // file keeps its largest extent, so allow a little for the frames of the last write.
  EXPECT_LT(largest, 100u * (4096u + 24u)) << "the WAL grew to " << largest << " bytes";
  const StoreStats stats = store_->stats();
  EXPECT_GT(stats.background_checkpoints + stats.writer_checkpoints, 0u);
  EXPECT_EQ(count_items(), 400);
}

TEST_F(StoreTest, ABurstWithoutPausesIsBoundedByTheWriterItself) {
  options_.checkpoint_pages = 10;
  options_.synchronous_full = false;
  ASSERT_NO_FATAL_FAILURE(open());
  const std::string row(3000, 'x');
  // Queued at once: the writer runs them back to back in groups, never idle.
  std::atomic<int> done{0};
  for (int i = 0; i < 2000; ++i) {
    store_->submit_write([&](Db& db) { return insert_item(db, row); },
                         [&](Status st) {
                           EXPECT_TRUE(st.is_ok());
                           ++done;
                         });
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (done.load() < 2000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(done.load(), 2000);
  EXPECT_EQ(count_items(), 2000);
  // 2000 rows of 3000 bytes are about 6 MiB of pages; the log must not hold them all.
  EXPECT_LT(wal_size(), 3u * 1024u * 1024u);
}

}  // namespace
}  // namespace atelier::store::storetest
