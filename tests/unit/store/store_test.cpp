#include "server/store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/store/store_fixture.h"

namespace atelier::store::storetest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST_F(StoreTest, OpenCreatesDirsMigratesAndRecordsAStableInstanceId) {
  ASSERT_NO_FATAL_FAILURE(open());
  EXPECT_TRUE(fs::exists(options_.path));
  const int newest = static_cast<int>(test_migrations().size());
  EXPECT_EQ(store_->migration_report().from_version, 0);
  EXPECT_EQ(store_->migration_report().to_version, newest);
  EXPECT_EQ(store_->migration_report().applied.size(), static_cast<std::size_t>(newest));
  const std::string id = store_->instance_id();
  EXPECT_THAT(id, MatchesRegex("[0-9a-f]{32}"));
  ASSERT_TRUE(
      store_->write([](Db& db) { return db.exec("INSERT INTO settings VALUES ('motd', 'hello')"); })
          .is_ok());
  store_->close();
  store_.reset();

  ASSERT_NO_FATAL_FAILURE(open());
  EXPECT_EQ(store_->instance_id(), id);
  EXPECT_EQ(store_->migration_report().from_version, newest);
  EXPECT_EQ(store_->migration_report().to_version, newest);
  EXPECT_TRUE(store_->migration_report().applied.empty());
  std::string motd;
  std::int64_t instances = 0;
  ASSERT_TRUE(store_
                  ->read([&](Db& db) {
                    Result<std::string> v = db.query_text("SELECT value FROM settings");
                    if (!v) return v.status();
                    motd = *v;
                    Result<std::int64_t> n = db.query_int64("SELECT count(*) FROM instance");
                    if (!n) return n.status();
                    instances = *n;
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(motd, "hello");
  EXPECT_EQ(instances, 1);
}

TEST_F(StoreTest, NormalSyncModeIsSynchronousNormal) {
  options_.synchronous_full = false;
  ASSERT_NO_FATAL_FAILURE(open());
  std::int64_t synchronous = -1;
  ASSERT_TRUE(store_
                  ->write([&](Db& db) {
                    synchronous = db.query_int64("PRAGMA synchronous").value();
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(synchronous, 1);  // NORMAL
}

TEST_F(StoreTest, WriterIsWalWithFullSyncAndReadersAreQueryOnly) {
  ASSERT_NO_FATAL_FAILURE(open());
  std::string journal;
  std::int64_t synchronous = -1, foreign_keys = -1;
  ASSERT_TRUE(store_
                  ->write([&](Db& db) {
                    journal = db.query_text("PRAGMA journal_mode").value();
                    synchronous = db.query_int64("PRAGMA synchronous").value();
                    foreign_keys = db.query_int64("PRAGMA foreign_keys").value();
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(journal, "wal");
  EXPECT_EQ(synchronous, 2);  // FULL
  EXPECT_EQ(foreign_keys, 1);

  Status write_in_read = store_->read([](Db& db) {
    EXPECT_EQ(db.query_int64("PRAGMA query_only").value(), 1);
    return db.exec("INSERT INTO items(value) VALUES ('nope')");
  });
  EXPECT_FALSE(write_in_read.is_ok());
  EXPECT_EQ(count_items(), 0);
}

TEST_F(StoreTest, ConcurrentWritesAllLandOneAtATimeOnOneThread) {
  ASSERT_NO_FATAL_FAILURE(open());
  constexpr int kThreads = 8;
  constexpr int kWritesPerThread = 40;
  std::atomic<int> in_flight{0}, max_in_flight{0};
  std::mutex ids_mu;
  std::set<std::thread::id> txn_threads;

  // Read-modify-write: lost updates would show if transactions ever interleaved.
  auto increment = [&](Db& db) -> Status {
    const int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    {
      std::lock_guard lock(ids_mu);
      txn_threads.insert(std::this_thread::get_id());
    }
    Result<std::int64_t> n = db.query_int64("SELECT n FROM counter");
    std::this_thread::yield();
    Status st = n ? db.exec("UPDATE counter SET n = " + std::to_string(*n + 1)) : n.status();
    --in_flight;
    return st;
  };

  std::vector<std::thread> threads;
  std::atomic<int> ok_done{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        if (t % 2 == 0) {
          EXPECT_TRUE(store_->write(increment).is_ok());
        } else {
          std::promise<void> finished;
          store_->submit_write(increment, [&](Status st) {
            if (st.is_ok()) ++ok_done;
            finished.set_value();
          });
          finished.get_future().wait();
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(max_in_flight.load(), 1);
  EXPECT_EQ(txn_threads.size(), 1u);
  EXPECT_EQ(txn_threads.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(ok_done.load(), kThreads / 2 * kWritesPerThread);
  std::int64_t n = -1;
  ASSERT_TRUE(store_
                  ->read([&](Db& db) {
                    n = db.query_int64("SELECT n FROM counter").value();
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(n, kThreads * kWritesPerThread);
  EXPECT_EQ(store_->stats().writes_committed,
            static_cast<std::uint64_t>(kThreads * kWritesPerThread));
  EXPECT_EQ(store_->stats().writes_pending, 0u);
}

TEST_F(StoreTest, FailedOrThrowingTransactionsRollBack) {
  ASSERT_NO_FATAL_FAILURE(open());
  Status st = store_->write([](Db& db) {
    ATELIER_RETURN_IF_ERROR(insert_item(db, "doomed"));
    return Status::invalid_argument("changed my mind", "value");
  });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "value");

  st = store_->write([](Db& db) -> Status {
    (void)insert_item(db, "doomed too");
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_THAT(st.message(), HasSubstr("boom"));

  st = store_->write([](Db& db) {
    ATELIER_RETURN_IF_ERROR(insert_item(db, "one"));
    return insert_item(db, std::string());  // fine: empty text is not NULL
  });
  EXPECT_TRUE(st.is_ok()) << st.to_string();

  st = store_->write([](Db& db) { return db.exec("ROLLBACK"); });
  EXPECT_EQ(st.code(), StatusCode::kInternal);

  EXPECT_EQ(count_items(), 2);
  EXPECT_EQ(store_->stats().writes_rolled_back, 3u);
  // The writer keeps going after all that.
  EXPECT_TRUE(store_->write([](Db& db) { return insert_item(db, "after"); }).is_ok());
  EXPECT_EQ(count_items(), 3);
}

TEST_F(StoreTest, WritesQueuedTogetherShareOneCommitButFailAlone) {
  ASSERT_NO_FATAL_FAILURE(open());
  // Hold the writer so that the next writes queue up behind it and run as one group.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  store_->submit_write(
      [&](Db& db) {
        holding.set_value();
        released.wait();
        return insert_item(db, "first");
      },
      {});
  holding.get_future().wait();
  constexpr int kWrites = 10;
  std::vector<std::promise<Status>> outcomes(kWrites);
  std::vector<int> order;
  for (int i = 0; i < kWrites; ++i) {
    store_->submit_write(
        [i](Db& db) -> Status {
          ATELIER_RETURN_IF_ERROR(insert_item(db, "w" + std::to_string(i)));
          if (i == 4) return Status::invalid_argument("this one fails", "value");
          if (i == 7) throw std::runtime_error("and this one throws");
          return Status::ok();
        },
        [&, i](Status st) {
          order.push_back(i);
          outcomes[i].set_value(std::move(st));
        });
  }
  release.set_value();
  for (int i = 0; i < kWrites; ++i) {
    Status st = outcomes[i].get_future().get();
    if (i == 4) {
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    } else if (i == 7) {
      EXPECT_EQ(st.code(), StatusCode::kInternal);
    } else {
      EXPECT_TRUE(st.is_ok()) << i << ": " << st.to_string();
    }
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(count_items(), 1 + kWrites - 2);  // the failed two left nothing behind
  EXPECT_GE(store_->stats().group_commits, 1u);
  EXPECT_EQ(store_->stats().writes_committed, 1u + kWrites - 2);
  EXPECT_EQ(store_->stats().writes_rolled_back, 2u);
  // A write that ends the SQL transaction itself inside a group fails, and the writer goes on.
  std::promise<void> release2;
  std::shared_future<void> released2 = release2.get_future().share();
  store_->submit_write(
      [&](Db&) {
        released2.wait();
        return Status::ok();
      },
      {});
  std::promise<Status> rogue;
  std::promise<Status> after;
  store_->submit_write([](Db& db) { return db.exec("ROLLBACK"); },
                       [&](Status st) { rogue.set_value(st); });
  store_->submit_write([](Db& db) { return insert_item(db, "after"); },
                       [&](Status st) { after.set_value(st); });
  release2.set_value();
  EXPECT_EQ(rogue.get_future().get().code(), StatusCode::kInternal);
  (void)after.get_future().get();
  EXPECT_TRUE(store_->write([](Db& db) { return insert_item(db, "later"); }).is_ok());
}

TEST_F(StoreTest, DoneRunsOnTheWriterThreadAfterCommit) {
  ASSERT_NO_FATAL_FAILURE(open());
  std::thread::id txn_thread;
  std::promise<std::pair<std::thread::id, std::int64_t>> seen;
  store_->submit_write(
      [&](Db& db) {
        txn_thread = std::this_thread::get_id();
        return insert_item(db, "x");
      },
      [&](Status st) {
        EXPECT_TRUE(st.is_ok());
        // Already committed: a reader connection sees it.
        seen.set_value({std::this_thread::get_id(), count_items()});
      });
  auto future = seen.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  auto [done_thread, items] = future.get();
  EXPECT_EQ(done_thread, txn_thread);
  EXPECT_NE(done_thread, std::this_thread::get_id());
  EXPECT_EQ(items, 1);
}

TEST_F(StoreTest, BlockingCallsFromTheWriterThreadAreRefusedNotDeadlocked) {
  ASSERT_NO_FATAL_FAILURE(open());
  std::promise<std::pair<Status, Status>> refused;
  store_->submit_write([](Db&) { return Status::ok(); },
                       [&](Status) {
                         Status w = store_->write([](Db&) { return Status::ok(); });
                         Status c = store_->checkpoint();
                         refused.set_value({w, c});
                       });
  auto future = refused.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  auto [w, c] = future.get();
  EXPECT_EQ(w.code(), StatusCode::kInternal);
  EXPECT_EQ(c.code(), StatusCode::kInternal);

  // A throwing callback does not take the writer down.
  store_->submit_write([](Db&) { return Status::ok(); },
                       [](Status) { throw std::runtime_error("careless callback"); });
  EXPECT_TRUE(store_->write([](Db& db) { return insert_item(db, "still alive"); }).is_ok());
}

TEST_F(StoreTest, ReadsDoNotWaitForALongWriteTransaction) {
  ASSERT_NO_FATAL_FAILURE(open());
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<Status> committed;
  store_->submit_write(
      [&](Db& db) {
        ATELIER_RETURN_IF_ERROR(insert_item(db, "slow"));
        entered.set_value();
        released.wait();  // holds the write transaction open
        return Status::ok();
      },
      [&](Status st) { committed.set_value(st); });
  entered.get_future().wait();

  auto reader = std::async(std::launch::async, [&] { return count_items(); });
  const bool read_finished = reader.wait_for(5s) == std::future_status::ready;
  release.set_value();
  ASSERT_TRUE(read_finished) << "read() waited for the write transaction";
  EXPECT_EQ(reader.get(), 0);  // the uncommitted row is invisible
  EXPECT_TRUE(committed.get_future().get().is_ok());
  EXPECT_EQ(count_items(), 1);
}

TEST_F(StoreTest, ReadSeesOneSnapshotThroughout) {
  ASSERT_NO_FATAL_FAILURE(open());
  ASSERT_TRUE(store_->write([](Db& db) { return insert_item(db, "first"); }).is_ok());
  std::int64_t before = -1, after = -1;
  ASSERT_TRUE(store_
                  ->read([&](Db& db) {
                    before = db.query_int64("SELECT count(*) FROM items").value();
                    // Commits while this read is open (we are not the writer thread).
                    EXPECT_TRUE(
                        store_->write([](Db& w) { return insert_item(w, "second"); }).is_ok());
                    after = db.query_int64("SELECT count(*) FROM items").value();
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(before, 1);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(count_items(), 2);
}

TEST_F(StoreTest, ReaderPoolBoundsConcurrentReads) {
  options_.reader_count = 2;
  ASSERT_NO_FATAL_FAILURE(open());
  std::atomic<int> in_flight{0}, max_in_flight{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      EXPECT_TRUE(store_
                      ->read([&](Db& db) {
                        const int now = ++in_flight;
                        int seen = max_in_flight.load();
                        while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
                        }
                        std::this_thread::sleep_for(20ms);
                        --in_flight;
                        return db.query_int64("SELECT 1").status();
                      })
                      .is_ok());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GE(max_in_flight.load(), 1);
  EXPECT_LE(max_in_flight.load(), 2);
}

TEST_F(StoreTest, CloseDrainsQueuedWritesThenRefusesEverything) {
  ASSERT_NO_FATAL_FAILURE(open());
  std::promise<void> gate_entered, gate_open;
  std::shared_future<void> gate = gate_open.get_future().share();
  store_->submit_write(
      [&](Db& db) {
        gate_entered.set_value();
        gate.wait();
        return insert_item(db, "gate");
      },
      nullptr);
  gate_entered.get_future().wait();  // the writer is busy; what follows stays queued

  constexpr int kQueued = 100;
  std::atomic<int> ok{0}, failed{0};
  auto count = [&](Status st) { st.is_ok() ? ++ok : ++failed; };
  for (int i = 0; i < kQueued; ++i) {
    store_->submit_write([i](Db& db) { return insert_item(db, std::to_string(i)); }, count);
  }
  EXPECT_EQ(store_->stats().writes_pending, static_cast<std::uint64_t>(kQueued));

  std::thread closer([&] { store_->close(); });
  // Once close() has begun, a submission is refused synchronously, on this thread.
  int accepted_while_waiting = 0;
  const auto me = std::this_thread::get_id();
  for (;;) {
    auto refused = std::make_shared<std::atomic<bool>>(false);
    store_->submit_write(
        [](Db& db) { return insert_item(db, "late-but-accepted"); },
        [&count, me, refused](Status st) {
          if (st.code() == StatusCode::kUnavailable && std::this_thread::get_id() == me) {
            *refused = true;
          } else {
            count(st);
          }
        });
    if (*refused) break;
    ++accepted_while_waiting;
    std::this_thread::sleep_for(1ms);
  }
  gate_open.set_value();
  closer.join();

  EXPECT_EQ(ok.load(), kQueued + accepted_while_waiting);
  EXPECT_EQ(failed.load(), 0);

  bool ran = false;
  Status late = store_->write([&](Db&) {
    ran = true;
    return Status::ok();
  });
  EXPECT_EQ(late.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(ran);
  EXPECT_EQ(store_->read([](Db&) { return Status::ok(); }).code(), StatusCode::kUnavailable);
  EXPECT_EQ(store_->checkpoint().code(), StatusCode::kUnavailable);
  store_->close();  // idempotent
  EXPECT_EQ(wal_size(), 0u);
  store_.reset();

  ASSERT_NO_FATAL_FAILURE(open());
  EXPECT_EQ(count_items(), 1 + kQueued + accepted_while_waiting);
}

TEST_F(StoreTest, OpenRefusesASchemaNewerThanTheBinary) {
  ASSERT_NO_FATAL_FAILURE(open());  // embedded + 1 test migration
  store_.reset();
  Result<std::unique_ptr<Store>> older = Store::open(options_, embedded_migrations());
  ASSERT_FALSE(older.is_ok());
  EXPECT_EQ(older.status().code(), StatusCode::kFailedPrecondition);
  const std::string expected =
      "database schema version " + std::to_string(test_migrations().size()) +
      " is newer than this binary supports (" + std::to_string(embedded_migrations().size()) +
      "); upgrade atelier or restore a backup";
  EXPECT_THAT(older.status().message(), HasSubstr(expected));
}

TEST_F(StoreTest, OpenFailsCleanlyOnABrokenMigration) {
  std::vector<Migration> migrations = test_migrations();
  migrations.push_back({static_cast<int>(migrations.size()) + 1, "broken",
                        "CREATE TABLE t(x); SELECT * FROM no_such_table;"});
  Result<std::unique_ptr<Store>> store = Store::open(options_, migrations);
  ASSERT_FALSE(store.is_ok());
  EXPECT_THAT(store.status().message(),
              HasSubstr(migration_file_name(migrations.back()) + " (rolled back)"));
  // The good ones before it stayed; the next start picks up from there.
  ASSERT_NO_FATAL_FAILURE(open());
  EXPECT_EQ(store_->migration_report().from_version, static_cast<int>(test_migrations().size()));
}

TEST_F(StoreTest, OpenValidatesItsOptions) {
  StoreOptions no_readers = options_;
  no_readers.reader_count = 0;
  Result<std::unique_ptr<Store>> store = Store::open(no_readers);
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.status().field(), "reader_count");

  fs::create_directories(dir_);
  std::ofstream(dir_ / "a_file") << "x";
  StoreOptions under_a_file = options_;
  under_a_file.path = dir_ / "a_file" / "atelier.db";
  store = Store::open(under_a_file);
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace atelier::store::storetest
