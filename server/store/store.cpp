#include "server/store/store.h"

#include <algorithm>
#include <exception>
#include <future>
#include <random>
#include <system_error>
#include <utility>

#include "common/thread_name.h"

namespace atelier::store {
namespace {

// Which Store's writer loop this thread runs, if any. Unlike a saved std::thread::id this cannot
// match a later thread that happens to reuse the id.
thread_local const Store* tls_writer_of = nullptr;

Status unavailable_closed() {
  return Status::unavailable("the store is closed");
}

Status from_exception(std::string_view what_ran) {
  try {
    throw;
  } catch (const std::exception& e) {
    return Status::internal(std::string(what_ran) + " threw: " + e.what());
  } catch (...) {
    return Status::internal(std::string(what_ran) + " threw a non-standard exception");
  }
}

Result<std::string> random_instance_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  try {
    std::random_device rd;
    std::string id;
    id.reserve(32);
    for (int word = 0; word < 4; ++word) {
      std::uint32_t bits = rd();
      for (int nibble = 0; nibble < 8; ++nibble) {
        id += kHex[bits & 0xF];
        bits >>= 4;
      }
    }
    return id;
  } catch (const std::exception& e) {
    return Status::internal(std::string("no random source for the instance id: ") + e.what());
  }
}

}  // namespace

Store::Store(const StoreOptions& options) : options_(options) {}

Store::~Store() {
  close();
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options,
                                           const std::vector<Migration>& migrations) {
  std::unique_ptr<Store> store(new Store(options));
  Status st = store->init(migrations);
  if (!st.is_ok()) return st.with_context("opening store " + options.path.string());
  return store;
}

Status Store::init(const std::vector<Migration>& migrations) {
  if (options_.path.empty()) return Status::invalid_argument("no database path", "path");
  if (options_.reader_count < 1) {
    return Status::invalid_argument("reader_count must be at least 1", "reader_count");
  }

  const std::filesystem::path parent = options_.path.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return Status::io_error("creating directory " + parent.string() + ": " + ec.message());
  }

  Result<Db> writer = Db::open(options_.path, OpenMode::kReadWriteCreate);
  if (!writer) return writer.status();
  writer_db_ = std::move(writer).value();
  writer_db_.set_busy_timeout(options_.busy_timeout);

  // WAL lets readers keep reading a snapshot while the writer commits. The pragma answers with
  // the mode actually in effect, which silently stays the old one where WAL is impossible.
  Result<std::string> mode = writer_db_.query_text("PRAGMA journal_mode=WAL");
  if (!mode) return mode.status();
  if (*mode != "wal") {
    return Status::failed_precondition(
        "could not switch the database to WAL mode (journal_mode is '" + *mode +
        "'); it needs a local file system");
  }
  // FULL: a commit that returned is on disk, even across power loss.
  ATELIER_RETURN_IF_ERROR(writer_db_.exec(options_.synchronous_full ? "PRAGMA synchronous=FULL"
                                                                    : "PRAGMA synchronous=NORMAL"));
  ATELIER_RETURN_IF_ERROR(writer_db_.exec("PRAGMA foreign_keys=ON"));
  Result<std::int64_t> fk = writer_db_.query_int64("PRAGMA foreign_keys");
  if (!fk) return fk.status();
  if (*fk != 1) return Status::failed_precondition("SQLite was built without foreign key support");

  Result<MigrationReport> report = apply_migrations(writer_db_, migrations);
  if (!report) return report.status();
  migration_report_ = std::move(report).value();

  ATELIER_RETURN_IF_ERROR(ensure_instance_row());

  {
    MutexLock lock(readers_mu_);
    for (int i = 0; i < options_.reader_count; ++i) {
      Result<Db> reader = Db::open(options_.path, OpenMode::kReadOnly);
      if (!reader) return reader.status().with_context("opening reader connection");
      reader->set_busy_timeout(options_.busy_timeout);
      // Belt and braces on top of the read-only open: a write through a reader is a bug.
      ATELIER_RETURN_IF_ERROR(reader->exec("PRAGMA query_only=ON"));
      idle_readers_.push_back(std::move(reader).value());
      ++readers_total_;
    }
  }

  Result<std::unique_ptr<Checkpointer>> checkpointer =
      Checkpointer::start(options_.path, options_.synchronous_full, options_.checkpoint_pages);
  if (!checkpointer) return checkpointer.status();
  checkpointer_ = std::move(checkpointer).value();
  // Replaces SQLite's auto-checkpoint on the writer: its commits only append to the WAL.
  writer_db_.set_wal_hook([this](int pages) {
    if (pages < wal_pages_) tail_checkpoint_at_ = 0;  // rewound
    wal_pages_ = pages;
    checkpointer_->wal_grew(pages);
  });

  try {
    writer_ = std::thread(&Store::writer_loop, this);
  } catch (const std::system_error& e) {
    return Status::internal(std::string("starting the writer thread: ") + e.what());
  }
  return Status::ok();
}

Status Store::ensure_instance_row() {
  ATELIER_RETURN_IF_ERROR(writer_db_.exec("BEGIN IMMEDIATE"));
  Status st = [&]() -> Status {
    Result<Statement> select = writer_db_.prepare("SELECT id FROM instance ORDER BY rowid LIMIT 1");
    if (!select) return select.status();
    Result<bool> row = select->step();
    if (!row) return row.status();
    if (*row) {
      instance_id_ = select->column_text(0);
      return Status::ok();
    }
    Result<std::string> id = random_instance_id();
    if (!id) return id.status();
    Result<Statement> insert = writer_db_.prepare(
        "INSERT INTO instance(id, created_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))");
    if (!insert) return insert.status();
    ATELIER_RETURN_IF_ERROR(insert->bind_text(1, *id));
    Result<bool> done = insert->step();
    if (!done) return done.status();
    instance_id_ = std::move(id).value();
    return Status::ok();
  }();
  if (st.is_ok()) st = writer_db_.exec("COMMIT");
  if (!st.is_ok() && writer_db_.in_transaction()) (void)writer_db_.exec("ROLLBACK");
  return st.with_context("recording the instance id");
}

// ---------------------------------------------------------------------------------------------
// Writes

void Store::submit_write(WriteTxn txn, WriteDone done) {
  {
    MutexLock lock(queue_mu_);
    if (!closing_) {
      writes_pending_.fetch_add(1, std::memory_order_relaxed);
      queue_.push_back(Entry{{}, std::move(txn), std::move(done)});
      queue_cv_.notify_one();
      return;
    }
  }
  if (done) done(unavailable_closed());
}

Status Store::write(WriteTxn txn) {
  if (on_writer_thread()) {
    return Status::internal("Store::write() called on the writer thread; it would wait on itself");
  }
  // std::function needs a copyable callable, hence the shared promise.
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> outcome = promise->get_future();
  submit_write(std::move(txn), [promise](Status st) { promise->set_value(std::move(st)); });
  return outcome.get();
}

bool Store::enqueue(Job job) {
  {
    MutexLock lock(queue_mu_);
    if (closing_) return false;
    queue_.push_back(Entry{std::move(job), {}, {}});
  }
  queue_cv_.notify_one();
  return true;
}

void Store::run_write(Db& db, const WriteTxn& txn, const WriteDone& done) {
  writes_pending_.fetch_sub(1, std::memory_order_relaxed);
  // IMMEDIATE takes the write lock up front, so a transaction never fails half-way for want of
  // it. Within this process nobody else writes; the busy timeout covers other processes.
  Status st = db.exec("BEGIN IMMEDIATE");
  if (st.is_ok()) {
    try {
      st = txn(db);
    } catch (...) {
      st = from_exception("write transaction");
    }
    if (st.is_ok() && !db.in_transaction()) {
      st = Status::internal("the write transaction ended itself (COMMIT/ROLLBACK inside txn)");
    }
    // COMMIT can still fail (deferred foreign keys, disk full); the transaction then stays open.
    if (st.is_ok()) st = db.exec("COMMIT");
    if (!st.is_ok() && db.in_transaction()) (void)db.exec("ROLLBACK");
  } else {
    st = st.with_context("starting write transaction");
  }
  run_after_commit(db, st.is_ok());
  finish_write(std::move(st), done);
}

void Store::run_after_commit(Db& db, bool committed) {
  std::vector<std::function<void()>> work = db.take_after_commit();
  if (!committed) return;
  for (auto& fn : work) {
    try {
      fn();
    } catch (...) {
      // Like `done`: the writer thread survives a faulty callback; the data is committed.
    }
  }
}

void Store::finish_write(Status st, const WriteDone& done) {
  if (st.is_ok()) {
    writes_committed_.fetch_add(1, std::memory_order_relaxed);
    ++writes_since_checkpoint_;
  } else {
    writes_rolled_back_.fetch_add(1, std::memory_order_relaxed);
  }
  if (done) {
    try {
      done(std::move(st));
    } catch (...) {
      // The writer thread must survive a faulty callback; the outcome was already delivered.
    }
  }
}

void Store::run_group(Db& db, std::vector<Entry>& group) {
  if (group.size() == 1) return run_write(db, group[0].txn, group[0].done);
  writes_pending_.fetch_sub(group.size(), std::memory_order_relaxed);
  std::vector<Status> outcomes(group.size());
  Status begin = db.exec("BEGIN IMMEDIATE");
  if (!begin.is_ok()) {
    for (auto& out : outcomes) out = begin.with_context("starting write transaction");
  } else {
    for (size_t i = 0; i < group.size(); ++i) {
      const size_t after_commit_mark = db.after_commit_count();
      Status st = db.exec("SAVEPOINT atelier_group");
      if (st.is_ok()) {
        try {
          st = group[i].txn(db);
        } catch (...) {
          st = from_exception("write transaction");
        }
      }
      if (!db.in_transaction()) {
        // The transaction ended itself: whatever ran before it is committed or gone.
        Status broken =
            Status::internal("the write transaction ended itself (COMMIT/ROLLBACK inside txn)");
        for (size_t j = 0; j <= i; ++j) outcomes[j] = broken;
        for (size_t j = i + 1; j < group.size(); ++j) {
          outcomes[j] = Status::unavailable("not run: an earlier write in its group failed");
        }
        break;
      }
      if (st.is_ok()) {
        st = db.exec("RELEASE atelier_group");
      } else {
        (void)db.exec("ROLLBACK TO atelier_group");
        (void)db.exec("RELEASE atelier_group");
        db.drop_after_commit(after_commit_mark);
      }
      outcomes[i] = std::move(st);
    }
    if (db.in_transaction()) {
      Status commit = db.exec("COMMIT");
      if (!commit.is_ok()) {
        if (db.in_transaction()) (void)db.exec("ROLLBACK");
        for (auto& out : outcomes) {
          if (out.is_ok()) out = commit;
        }
      } else {
        group_commits_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  bool committed = false;
  for (const auto& out : outcomes) committed = committed || out.is_ok();
  run_after_commit(db, committed);
  for (size_t i = 0; i < group.size(); ++i) finish_write(std::move(outcomes[i]), group[i].done);
}

// Why TRUNCATE, and only when idle: PASSIVE copies pages back but leaves the -wal file at its
// high-water size, so one burst of writes would keep its disk space forever; TRUNCATE resets it
// to zero bytes. TRUNCATE also fsyncs and must wait for readers still using the log, so the
// periodic one runs when nothing is queued and does not wait for readers at all (busy = 0): if
// a read holds the log, we try again next interval. During bursts the Checkpointer's PASSIVE
// runs (every checkpoint_pages of log, on its own thread) keep the log from growing unbounded.
Status Store::run_checkpoint(Db& db, std::chrono::milliseconds busy) {
  db.set_busy_timeout(busy);
  Result<WalCheckpoint> ran = wal_checkpoint(db, CheckpointMode::kTruncate);
  db.set_busy_timeout(options_.busy_timeout);
  Status st = ran.status();
  const bool blocked = ran && ran->busy;

  if (st.is_ok() && blocked) {
    st = Status::unavailable("readers are still using the WAL; checkpoint incomplete");
  }
  if (!st.is_ok()) {
    checkpoints_incomplete_.fetch_add(1, std::memory_order_relaxed);
    return st.with_context("WAL checkpoint");
  }
  checkpoints_run_.fetch_add(1, std::memory_order_relaxed);
  writes_since_checkpoint_ = 0;
  return Status::ok();
}

bool Store::checkpoint_tail() {
  // Zero: if the background thread is checkpointing right now, leave it to that and go on.
  writer_db_.set_busy_timeout(std::chrono::milliseconds(0));
  Result<WalCheckpoint> ran = wal_checkpoint(writer_db_, CheckpointMode::kPassive);
  writer_db_.set_busy_timeout(options_.busy_timeout);
  return ran && ran->complete();
}

Status Store::checkpoint() {
  if (on_writer_thread()) {
    return Status::internal(
        "Store::checkpoint() called on the writer thread; it would wait on itself");
  }
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> outcome = promise->get_future();
  const bool queued = enqueue(
      [this, promise](Db& db) { promise->set_value(run_checkpoint(db, options_.busy_timeout)); });
  if (!queued) return unavailable_closed();
  return outcome.get();
}

Status Store::with_writer(const std::function<void(Db&)>& fn) {
  if (on_writer_thread()) {
    fn(writer_db_);
    return Status::ok();
  }
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> outcome = promise->get_future();
  const bool queued = enqueue([&fn, promise](Db& db) {
    try {
      fn(db);
      promise->set_value(Status::ok());
    } catch (...) {
      promise->set_value(from_exception("with_writer"));
    }
  });
  if (!queued) return unavailable_closed();
  return outcome.get();
}

bool Store::on_writer_thread() const {
  return tls_writer_of == this;
}

void Store::writer_loop() {
  set_current_thread_name("db-writer");
  tls_writer_of = this;
  using Clock = std::chrono::steady_clock;
  // Capped so that deadline arithmetic cannot overflow for an absurd setting.
  const auto interval = std::min<std::chrono::milliseconds>(options_.checkpoint_interval,
                                                            std::chrono::hours(24 * 365));
  const bool periodic = interval.count() > 0;
  auto next_checkpoint = Clock::now() + interval;

  MutexLock lock(queue_mu_);
  while (true) {
    const auto now = Clock::now();
    const bool due = periodic && now >= next_checkpoint;
    // Prefer an idle moment; but a writer that is never idle still checkpoints once it is a
    // whole interval late.
    const bool overdue = periodic && now >= next_checkpoint + interval;
    if (!queue_.empty() && !overdue) {
      if (!queue_.front().txn) {
        Job job = std::move(queue_.front().job);
        queue_.pop_front();
        lock.unlock();
        job(writer_db_);
        lock.lock();
        continue;
      }
      std::vector<Entry> group;
      while (!queue_.empty() && queue_.front().txn && group.size() < kMaxGroupCommit) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      run_group(writer_db_, group);
      lock.lock();
      // Background checkpoints cannot finish a log that is appended to meanwhile, and only a
      // finished one lets the next write rewind it. So the writer finishes one itself, between
      // transactions: when nothing is queued and the log is at twice the threshold, it copies
      // the tail the background runs left (a few pages and two flushes, so a request arriving
      // meanwhile waits a millisecond, not a whole checkpoint); a writer that is never idle
      // waits for a whole one at four times the threshold.
      const int64_t threshold = options_.checkpoint_pages;
      if (wal_pages_ >= 4 * threshold) {
        lock.unlock();
        checkpointer_->run_and_wait();
        writer_checkpoints_.fetch_add(1, std::memory_order_relaxed);
        wal_pages_ = 0;  // the hook tells the real count at the next commit
        lock.lock();
      } else if (wal_pages_ >= 2 * threshold && queue_.empty() &&
                 wal_pages_ >= tail_checkpoint_at_ + threshold / 8) {
        lock.unlock();
        tail_checkpoint_at_ = wal_pages_;
        if (checkpoint_tail()) writer_checkpoints_.fetch_add(1, std::memory_order_relaxed);
        lock.lock();
      }
      continue;
    }
    if (due) {
      lock.unlock();
      // Nothing written since the last one: skip the fsyncs.
      if (writes_since_checkpoint_ > 0)
        (void)run_checkpoint(writer_db_, std::chrono::milliseconds(0));
      lock.lock();
      next_checkpoint = Clock::now() + interval;
      continue;
    }
    if (closing_) break;  // and the queue is drained
    // Here the queue is empty and not closing. No predicate: the loop above re-checks both
    // under the lock after any wake-up (and the analysis can see it do so).
    if (periodic) {
      queue_cv_.wait_until(lock, next_checkpoint);
    } else {
      queue_cv_.wait(lock);
    }
  }
  lock.unlock();
  // Shutdown: leave the database file complete on its own (e.g. for a backup copy of just it).
  (void)run_checkpoint(writer_db_, options_.busy_timeout);
  tls_writer_of = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Reads

Status Store::read(const std::function<Status(Db&)>& fn) {
  Db db;
  {
    MutexLock lock(readers_mu_);
    while (!readers_closing_ && idle_readers_.empty()) readers_cv_.wait(lock);
    if (readers_closing_) return unavailable_closed();
    db = std::move(idle_readers_.back());
    idle_readers_.pop_back();
  }

  Status st = db.exec("BEGIN");  // deferred: the snapshot starts at the first read
  if (st.is_ok()) {
    try {
      st = fn(db);
    } catch (...) {
      st = from_exception("read function");
    }
    if (db.in_transaction()) {
      Status end = db.exec(st.is_ok() ? "COMMIT" : "ROLLBACK");
      if (st.is_ok()) st = end;
    }
  } else {
    st = st.with_context("starting read transaction");
  }

  {
    MutexLock lock(readers_mu_);
    idle_readers_.push_back(std::move(db));
  }
  // Both waiting readers and a closing store wait on this.
  readers_cv_.notify_all();
  return st;
}

// ---------------------------------------------------------------------------------------------
// Stats and shutdown

StoreStats Store::stats() const {
  StoreStats s;
  s.writes_committed = writes_committed_.load(std::memory_order_relaxed);
  s.writes_rolled_back = writes_rolled_back_.load(std::memory_order_relaxed);
  s.writes_pending = writes_pending_.load(std::memory_order_relaxed);
  s.checkpoints_run = checkpoints_run_.load(std::memory_order_relaxed);
  s.group_commits = group_commits_.load(std::memory_order_relaxed);
  s.checkpoints_incomplete = checkpoints_incomplete_.load(std::memory_order_relaxed);
  s.background_checkpoints = checkpointer_ ? checkpointer_->runs() : 0;
  s.writer_checkpoints = writer_checkpoints_.load(std::memory_order_relaxed);
  return s;
}

void Store::close() {
  if (on_writer_thread()) {
    // From a done callback: joining would wait on ourselves. Stop taking writes; whoever owns
    // the Store finishes the job (its destructor calls close() again).
    MutexLock lock(queue_mu_);
    closing_ = true;
    return;
  }
  std::call_once(close_once_, [this] {
    {
      MutexLock lock(queue_mu_);
      closing_ = true;
    }
    // First, so that its connection is gone before the writer's final checkpoint: the writer
    // must be the last connection for SQLite to remove the -wal file.
    if (checkpointer_) checkpointer_->stop();
    queue_cv_.notify_all();
    if (writer_.joinable()) writer_.join();  // drains the queue, then checkpoints

    {
      MutexLock lock(readers_mu_);
      readers_closing_ = true;
      readers_cv_.notify_all();
      while (idle_readers_.size() != static_cast<std::size_t>(readers_total_)) {
        readers_cv_.wait(lock);
      }
      idle_readers_.clear();
    }
    // Last, so the writer is the final connection: SQLite then removes the -wal file.
    writer_db_.set_wal_hook(nullptr);
    writer_db_.close();
  });
}

}  // namespace atelier::store
