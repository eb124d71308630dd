// Checkpointer: copies the WAL back into the database file on its own thread and connection,
// so that the writer thread never waits for it.
//
// Why: SQLite's built-in auto-checkpoint runs inside the COMMIT that pushes the WAL past its
// threshold, fsyncs there, and so put a 15-20 ms stall on every few hundredth write (the job
// path's p99). With a Checkpointer the writer's commits only append to the WAL; this thread runs
// PASSIVE checkpoints (they never block the writer or readers, and copy what readers allow)
// whenever `threshold_pages` of log have not been copied yet. SQLite rewinds the WAL to its
// start only at a write that follows a complete checkpoint, which one running beside an active
// writer rarely is; the Store therefore asks for one with run_and_wait() when its writer is
// idle (or has let the log reach four times the threshold), and the file stays bounded.
//
// Contract: wal_grew() is called from the writer connection's WAL hook after every commit (see
// Db::set_wal_hook); it never blocks on a checkpoint. run_and_wait() is the writer's fallback
// when the log has grown far past the threshold anyway. stop() joins the thread and closes the
// connection; call it before the last connection closes (the Store does, before its final
// TRUNCATE checkpoint).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"
#include "server/store/sqlite.h"

namespace atelier::store {

// What one `PRAGMA wal_checkpoint` reported.
struct WalCheckpoint {
  bool busy = false;          // blocked: another checkpoint, or readers the mode waits for
  int64_t log_frames = 0;     // frames in the WAL
  int64_t copied_frames = 0;  // of those, copied into the database so far
  // Everything copied: the next write may rewind the log.
  bool complete() const { return !busy && log_frames == copied_frames; }
};

enum class CheckpointMode { kPassive, kTruncate };

// Runs `PRAGMA wal_checkpoint(PASSIVE|TRUNCATE)` on `db` with its current busy timeout.
Result<WalCheckpoint> wal_checkpoint(Db& db, CheckpointMode mode);

class Checkpointer {
 public:
  // Opens a read-write connection to `path` (which must already be in WAL mode) with the given
  // durability and starts the thread.
  static Result<std::unique_ptr<Checkpointer>> start(const std::filesystem::path& path,
                                                     bool synchronous_full, int threshold_pages);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // The WAL now holds `pages` pages: wakes the thread when the part not yet copied into the
  // database has reached the threshold.
  void wal_grew(int pages);
  // Runs a checkpoint that starts after this call and waits for it to end (at once once
  // stopped). For a writer that never pauses: checkpoints run while it appends cannot copy the
  // newest frames, so the log is never complete and never rewound; waiting here, between its
  // transactions, gives one that is.
  void run_and_wait();
  // Joins the thread and closes the connection. Idempotent.
  void stop();

  // Checkpoints that ran without an error (failures are logged).
  std::uint64_t runs() const { return runs_.load(std::memory_order_relaxed); }

 private:
  Checkpointer(Db db, int threshold_pages);
  void loop();

  Db db_;  // this thread's only
  const int threshold_pages_;
  Mutex mu_;
  std::condition_variable_any cv_;
  bool wanted_ ATELIER_GUARDED_BY(mu_) = false;
  bool stopping_ ATELIER_GUARDED_BY(mu_) = false;
  // Runs started and finished, so run_and_wait() can wait for one that began after it asked.
  std::uint64_t started_ ATELIER_GUARDED_BY(mu_) = 0;
  std::uint64_t finished_ ATELIER_GUARDED_BY(mu_) = 0;
  std::condition_variable_any done_cv_;
  std::thread thread_;
  // Frames of the log the last run had copied into the database (0 once SQLite rewinds it).
  std::atomic<int> copied_{0};
  std::atomic<std::uint64_t> runs_{0};
};

}  // namespace atelier::store
