#include "server/store/checkpointer.h"

#include <system_error>
#include <utility>

#include "common/logging.h"
#include "common/thread_name.h"

namespace atelier::store {

Result<WalCheckpoint> wal_checkpoint(Db& db, CheckpointMode mode) {
  Result<Statement> stmt =
      db.prepare(mode == CheckpointMode::kPassive ? "PRAGMA wal_checkpoint(PASSIVE)"
                                                  : "PRAGMA wal_checkpoint(TRUNCATE)");
  if (!stmt) return stmt.status();
  Result<bool> row = stmt->step();
  if (!row) return row.status();
  WalCheckpoint out;
  if (*row) {  // one row: (busy, frames in the log, frames copied)
    out.busy = stmt->column_int64(0) != 0;
    out.log_frames = stmt->column_int64(1);
    out.copied_frames = stmt->column_int64(2);
  }
  return out;
}

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::filesystem::path& path,
                                                          bool synchronous_full,
                                                          int threshold_pages) {
  if (threshold_pages < 1) {
    return Status::invalid_argument("the checkpoint threshold must be at least 1 page",
                                    "checkpoint_pages");
  }
  Result<Db> db = Db::open(path, OpenMode::kReadWriteCreate);
  if (!db) return db.status().with_context("opening the checkpoint connection");
  // The checkpoint's own fsyncs (WAL before copying, database after) follow the same setting.
  ATELIER_RETURN_IF_ERROR(
      db->exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  // This connection never commits, but a checkpoint of its own must not start from it either.
  ATELIER_RETURN_IF_ERROR(db->exec("PRAGMA wal_autocheckpoint=0"));
  std::unique_ptr<Checkpointer> c(new Checkpointer(std::move(db).value(), threshold_pages));
  try {
    c->thread_ = std::thread(&Checkpointer::loop, c.get());
  } catch (const std::system_error& e) {
    return Status::internal(std::string("starting the checkpoint thread: ") + e.what());
  }
  return c;
}

Checkpointer::Checkpointer(Db db, int threshold_pages)
    : db_(std::move(db)), threshold_pages_(threshold_pages) {}

Checkpointer::~Checkpointer() {
  stop();
}

void Checkpointer::wal_grew(int pages) {
  int copied = copied_.load(std::memory_order_relaxed);
  if (pages < copied) {
    // SQLite rewound the log to its start: everything in it now is new.
    copied_.store(0, std::memory_order_relaxed);
    copied = 0;
  }
  // Counted from what the last run copied: a log that cannot be rewound yet (the writer kept
  // appending while it was copied) must not start a run at every commit.
  if (pages - copied < threshold_pages_) return;
  {
    MutexLock lock(mu_);
    if (wanted_) return;  // one is already on its way
    wanted_ = true;
  }
  cv_.notify_one();
}

void Checkpointer::run_and_wait() {
  MutexLock lock(mu_);
  if (stopping_) return;
  wanted_ = true;
  // A run already under way may have missed the newest frames: wait for one that starts later.
  const std::uint64_t target = started_ + 1;
  cv_.notify_one();
  while (finished_ < target && !stopping_) done_cv_.wait(lock);
}

void Checkpointer::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  done_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  db_.close();
}

void Checkpointer::loop() {
  set_current_thread_name("db-checkpoint");
  MutexLock lock(mu_);
  while (true) {
    while (!wanted_ && !stopping_) cv_.wait(lock);
    if (stopping_) return;
    // Cleared as the run starts: a request made while it runs (its frames may be too new for
    // it) gets a run of its own.
    wanted_ = false;
    ++started_;
    lock.unlock();
    // PASSIVE: copies every frame that no reader still needs and returns; never waits.
    Result<WalCheckpoint> ran = wal_checkpoint(db_, CheckpointMode::kPassive);
    if (ran) {
      copied_.store(static_cast<int>(ran->copied_frames), std::memory_order_relaxed);
      runs_.fetch_add(1, std::memory_order_relaxed);
    } else {
      log::warn("background WAL checkpoint: {}", ran.status().to_string());
    }
    lock.lock();
    finished_ = started_;
    done_cv_.notify_all();
  }
}

}  // namespace atelier::store
