// Store: the one owner of the SQLite database.
//
// Writes are serialized through a single writer thread that owns the only read-write
// connection: callers hand it a transaction function and get the outcome back in a callback.
// Reads borrow one of a few read-only connections; in WAL mode they see the last committed
// snapshot and neither wait for nor block the writer.
//
//   auto store = Store::open({.path = "data/atelier.db"});
//   store.value()->submit_write(
//       [](Db& db) { return db.exec("INSERT INTO settings VALUES ('motd', 'hi')"); },
//       [](Status st) { /* on the writer thread: post to your own executor */ });
//   store.value()->read([](Db& db) { ...; return Status::ok(); });
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>  // std::once_flag
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "server/store/checkpointer.h"
#include "server/store/migrations.h"
#include "server/store/sqlite.h"

namespace atelier::store {

struct StoreOptions {
  // The database file; its parent directories are created. The -wal and -shm files live beside
  // it, so the directory must be on a local file system (WAL needs shared memory).
  std::filesystem::path path;
  // Read-only connections, i.e. how many read() calls can run at once. At least 1.
  int reader_count = 4;
  // How long a connection waits on a lock held by another (e.g. checkpoint() on readers).
  std::chrono::milliseconds busy_timeout{5000};
  // How often the idle writer checkpoints the WAL back into the database. Zero or less turns the
  // periodic checkpoint off (checkpoint() and close() still run one). Tests make it small.
  std::chrono::milliseconds checkpoint_interval{30000};
  // true: synchronous=FULL, every COMMIT is on disk before it returns (survives power loss).
  // false: synchronous=NORMAL, a COMMIT survives the process being killed but the last ones may
  // be lost if the machine loses power (WAL mode stays consistent either way).
  bool synchronous_full = true;
  // WAL pages (4 KiB each) after which a background thread checkpoints (see Checkpointer), so
  // that no commit runs one. The writer waits for one only between transactions: when idle
  // with the log past this, or with the log at four times this (a writer that never pauses);
  // a log still being appended to cannot be rewound. At least 1; tests make it small.
  int checkpoint_pages = 1000;
};

struct StoreStats {
  std::uint64_t writes_committed = 0;
  std::uint64_t writes_rolled_back = 0;      // the txn returned an error or threw, or COMMIT failed
  std::uint64_t writes_pending = 0;          // queued, not yet run
  std::uint64_t checkpoints_run = 0;         // TRUNCATE checkpoints that completed
  std::uint64_t group_commits = 0;           // COMMITs that covered more than one write
  std::uint64_t checkpoints_incomplete = 0;  // failed, or readers kept them from finishing
  std::uint64_t background_checkpoints = 0;  // PASSIVE ones run by the Checkpointer
  std::uint64_t writer_checkpoints = 0;      // times the writer waited for one to finish
};

class Store {
 public:
  using WriteTxn = std::function<Status(Db&)>;
  using WriteDone = std::function<void(Status)>;

  // Opens (creating if needed) the database, puts it in WAL mode with synchronous=FULL and
  // foreign keys on, hands checkpointing to a background Checkpointer, applies `migrations` (which
  // must include the embedded ones: the Store needs their `instance` table), records this
  // installation's id on first open, opens the reader pool and starts the writer thread. Fails,
  // with nothing left running, when any step fails: e.g. kFailedPrecondition for a schema newer
  // than this binary.
  static Result<std::unique_ptr<Store>> open(
      const StoreOptions& options,
      const std::vector<Migration>& migrations = embedded_migrations());

  // Calls close().
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Queues `txn` for the writer thread, which runs it between BEGIN IMMEDIATE and COMMIT. The
  // transaction is rolled back when `txn` returns non-OK or throws (a throw becomes kInternal);
  // `txn` must not COMMIT or ROLLBACK itself (kInternal), but may use SAVEPOINTs. Transactions
  // run one at a time in submission order; each sees every earlier one's effects.
  //
  // `done` (may be empty) receives the outcome: OK after a successful COMMIT, otherwise the
  // error. It runs ON THE WRITER THREAD, after commit or rollback, so it must be quick and must
  // not block: post the result to your own executor/strand if you need to do more. Exceptions
  // it throws are swallowed. It must not call write() (that would wait on itself: kInternal)
  // or close(); submit_write() is fine.
  //
  // Work a transaction registers with Db::after_commit() runs after its COMMIT, before `done`,
  // and is dropped when it rolls back.
  //
  // Once close() has begun, `txn` never runs and `done` is called at once, on the calling thread,
  // with kUnavailable.
  //
  // Keep transactions short: they hold the only write lock. No network or GPU waits inside.
  //
  // Group commit: transactions that are queued together (up to kMaxGroupCommit) run inside one
  // SQLite transaction, each in its own SAVEPOINT, and share its COMMIT (one fsync for all). The
  // contract above holds for each of them: one that fails is rolled back to its savepoint alone;
  // every `done` runs after the shared COMMIT with its own outcome (a failed COMMIT fails them
  // all). A transaction that breaks the contract by ending the SQL transaction itself fails with
  // kInternal, and so do the ones batched before it (their outcome is then unknown).
  static constexpr size_t kMaxGroupCommit = 64;
  void submit_write(WriteTxn txn, WriteDone done);

  // submit_write() and wait for the outcome. Blocks the caller for as long as the queue ahead
  // takes: for CLI tools, tests and worker threads, NEVER from an I/O thread.
  Status write(WriteTxn txn);

  // Runs `fn` on a read-only connection inside one deferred transaction, so every query in it
  // sees the same snapshot (the last commit before its first query). Blocks until a connection
  // is free. Returns fn's status (a throw becomes kInternal), or kUnavailable once close() has
  // begun. Writes inside `fn` fail (the connection is query_only). Do not call read() from
  // inside `fn`: with every connection borrowed that would wait forever.
  Status read(const std::function<Status(Db&)>& fn);

  // Runs a TRUNCATE checkpoint on the writer thread (after the writes queued before it) and
  // waits for it: the -wal file is empty afterwards unless a reader still uses it, in which case
  // this waits up to busy_timeout and then reports kUnavailable. Same blocking rule as write().
  Status checkpoint();
  // Runs `fn` on the writer thread with its connection, between transactions (connection
  // settings that later writes rely on). Blocks like write().
  Status with_writer(const std::function<void(Db&)>& fn);

  StoreStats stats() const;

  // 32 lowercase hex characters identifying this installation; stable across restarts.
  const std::string& instance_id() const { return instance_id_; }
  // What open() did to the schema.
  const MigrationReport& migration_report() const { return migration_report_; }
  const std::filesystem::path& path() const { return options_.path; }

  // Graceful shutdown: refuses new writes, runs every write already queued, runs a final
  // TRUNCATE checkpoint, stops the writer thread, waits for reads in progress and closes every
  // connection. Idempotent; concurrent callers all return once it is done. Called from a `done`
  // callback it only stops new writes (it cannot wait for its own thread); the owner's close()
  // or destructor finishes the job. Never call it from inside read(), and never destroy the
  // Store on the writer thread.
  void close();

 private:
  using Job = std::function<void(Db&)>;
  // A queued write transaction (txn set) or other writer-thread work (job set).
  struct Entry {
    Job job;
    WriteTxn txn;
    WriteDone done;
  };

  explicit Store(const StoreOptions& options);

  Status init(const std::vector<Migration>& migrations);
  Status ensure_instance_row();
  // Queues a job for the writer thread; false (job dropped) once closing.
  bool enqueue(Job job);
  void writer_loop();
  void run_write(Db& db, const WriteTxn& txn, const WriteDone& done);
  // Several queued writes under one COMMIT (see kMaxGroupCommit).
  void run_group(Db& db, std::vector<Entry>& group);
  void finish_write(Status st, const WriteDone& done);
  // Runs (committed) or drops what the transaction registered with Db::after_commit().
  void run_after_commit(Db& db, bool committed);
  // busy: how long to wait for readers; the periodic checkpoint does not wait, so that a long
  // read never holds up queued writes.
  Status run_checkpoint(Db& db, std::chrono::milliseconds busy);
  bool on_writer_thread() const;
  // A PASSIVE checkpoint on the writer's own connection, between transactions; true when it
  // copied the whole log (so the next write rewinds it). Gives up at once when the background
  // thread holds the checkpoint lock.
  bool checkpoint_tail();

  const StoreOptions options_;
  std::string instance_id_;
  MigrationReport migration_report_;

  // Writer: the connection is touched only by the writer thread once it is running.
  Db writer_db_;
  std::unique_ptr<Checkpointer> checkpointer_;
  // Pages in the WAL after the last commit, as the WAL hook (on the writer thread) saw them,
  // and the count at the writer's last tail checkpoint. Writer thread only.
  int64_t wal_pages_ = 0;
  int64_t tail_checkpoint_at_ = 0;
  std::thread writer_;
  // Lock order: queue_mu_ and readers_mu_ are never held together (see docs/threads.md).
  Mutex queue_mu_;
  std::condition_variable_any queue_cv_;
  std::deque<Entry> queue_ ATELIER_GUARDED_BY(queue_mu_);
  bool closing_ ATELIER_GUARDED_BY(queue_mu_) = false;
  // Writer thread only. Starts at 1 so that what open() wrote (migrations, the instance row)
  // is covered by the first periodic checkpoint.
  std::uint64_t writes_since_checkpoint_ = 1;

  // Readers: connections not currently borrowed.
  Mutex readers_mu_;
  std::condition_variable_any readers_cv_;
  std::vector<Db> idle_readers_ ATELIER_GUARDED_BY(readers_mu_);
  int readers_total_ ATELIER_GUARDED_BY(readers_mu_) = 0;
  bool readers_closing_ ATELIER_GUARDED_BY(readers_mu_) = false;

  std::once_flag close_once_;

  std::atomic<std::uint64_t> writes_committed_{0};
  std::atomic<std::uint64_t> group_commits_{0};
  std::atomic<std::uint64_t> writes_rolled_back_{0};
  std::atomic<std::uint64_t> writes_pending_{0};
  std::atomic<std::uint64_t> checkpoints_run_{0};
  std::atomic<std::uint64_t> checkpoints_incomplete_{0};
  std::atomic<std::uint64_t> writer_checkpoints_{0};
};

}  // namespace atelier::store
