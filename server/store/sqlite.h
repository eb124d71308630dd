// A thin RAII wrapper over the SQLite C API that speaks atelier::Status.
//
// Threading: a Db (and every Statement prepared on it) must be used by one thread at a time.
// Connections are opened in SQLite's multi-thread mode (no per-connection mutex), so sharing
// one across threads without external locking is undefined behaviour. The Store hands
// connections out so that this holds.
//
// Errors carry SQLite's own message, its extended result code and the first ~80 characters of
// the SQL that failed, so a log line is enough to find the statement. Result codes map to
// StatusCode as follows:
//   SQLITE_BUSY, SQLITE_LOCKED, SQLITE_INTERRUPT   -> kUnavailable (retry later)
//   SQLITE_CONSTRAINT_UNIQUE / _PRIMARYKEY / _ROWID -> kAlreadyExists (a duplicate key: 409)
//   any other SQLITE_CONSTRAINT_* (NOT NULL, CHECK, FOREIGN KEY, trigger RAISE)
//                                                   -> kFailedPrecondition (the state the row
//                                                      would need does not hold)
//   SQLITE_CORRUPT, SQLITE_NOTADB                   -> kCorruption
//   SQLITE_NOMEM, SQLITE_TOOBIG                     -> kResourceExhausted
//   SQLITE_ERROR, SQLITE_MISUSE, SQLITE_RANGE       -> kInternal (bad SQL or API use: a bug)
//   everything else (I/O, CANTOPEN, FULL, READONLY) -> kIoError
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

// Opaque SQLite handles; sqlite3.h stays out of our headers.
struct sqlite3;
struct sqlite3_stmt;

namespace atelier::store {

namespace detail {
class StatementCache;
}

enum class OpenMode {
  kReadWriteCreate,  // creates the file if missing
  kReadOnly,         // the file must exist; every write fails with kIoError
};

enum class ColumnType { kInteger, kFloat, kText, kBlob, kNull };

// A prepared statement. Statements come from their connection's cache of compiled statements
// (see Db::prepare) and go back to it when destroyed, reset and with their bindings cleared.
// Parameter indexes are 1-based and column indexes 0-based, as in SQLite.
// Column getters are only meaningful after step() returned true; they follow SQLite's type
// conversions (a NULL reads as 0, "" or an empty blob).
class Statement {
 public:
  Statement() = default;  // holds nothing; only useful as a move target
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool is_valid() const { return stmt_ != nullptr; }

  // Binding fails with kInternal on a bad index, or when the statement is mid-iteration
  // (call reset() first).
  Status bind_int64(int index, std::int64_t value);
  Status bind_double(int index, double value);
  Status bind_text(int index, std::string_view value);  // copied; embedded NULs are kept
  Status bind_blob(int index, std::span<const std::uint8_t> value);  // copied
  Status bind_null(int index);
  // Sets every parameter back to NULL.
  void clear_bindings();

  // Advances to the next row: true when a row is available, false when the statement is done.
  // After false, the next step() starts over (SQLite resets automatically).
  Result<bool> step();

  // Rewinds so the statement can run again; bindings are kept. Any error of the last step() was
  // already returned by step(), so there is nothing left to report here.
  void reset();

  int column_count() const;
  std::string column_name(int column) const;
  ColumnType column_type(int column) const;
  bool column_is_null(int column) const { return column_type(column) == ColumnType::kNull; }
  std::int64_t column_int64(int column) const;
  double column_double(int column) const;
  std::string column_text(int column) const;
  std::vector<std::uint8_t> column_blob(int column) const;

  // The SQL text the statement was prepared from.
  std::string sql() const;

 private:
  friend class Db;
  explicit Statement(sqlite3_stmt* stmt, std::shared_ptr<detail::StatementCache> cache = {})
      : stmt_(stmt), cache_(std::move(cache)) {}
  Status bind_result(int rc, int index);
  // Hands the compiled statement back to the cache (or finalizes it when there is none).
  void release();

  sqlite3_stmt* stmt_ = nullptr;
  std::shared_ptr<detail::StatementCache> cache_;  // empty: finalized when destroyed
};

// How well a connection's statement cache is doing.
struct StatementCacheStats {
  std::uint64_t hits = 0;    // prepare()/exec() calls served by an already compiled statement
  std::uint64_t misses = 0;  // calls that compiled the text
  std::size_t idle = 0;      // compiled statements waiting in the cache now
};

// One SQLite connection.
class Db {
 public:
  Db() = default;  // closed; only useful as a move target
  ~Db();
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Opens `path`. Extended result codes are switched on so constraint kinds can be told apart.
  // Does not create parent directories. A file that is not a database fails here only once it
  // is first read (SQLite opens lazily), with kCorruption.
  static Result<Db> open(const std::filesystem::path& path, OpenMode mode);

  bool is_open() const { return db_ != nullptr; }
  const std::filesystem::path& path() const { return path_; }

  // Runs every statement in `sql` in order and discards result rows. Stops at the first failing
  // statement; the ones before it have taken effect (wrap in a transaction for all-or-nothing).
  // The error names the failing statement, not the whole script.
  Status exec(std::string_view sql);

  // Compiles exactly one statement; trailing whitespace and comments are allowed, a second
  // statement is kInvalidArgument (it would otherwise be silently ignored).
  //
  // Compiled statements are cached per connection by their exact text: a later prepare() of the
  // same text reuses an idle one instead of compiling again (the statement comes back reset,
  // with no bindings). Statements are never shared: one in use is not handed out twice, the
  // same text prepared while it runs gets its own. exec() of a single statement uses the same
  // cache (BEGIN, COMMIT, SAVEPOINT run on every write).
  Result<Statement> prepare(std::string_view sql);
  StatementCacheStats statement_cache_stats() const;

  // Runs a one-row query and returns column 0 of the first row; kNotFound when there is no row.
  // Handy for pragmas and counts.
  Result<std::int64_t> query_int64(std::string_view sql);
  Result<std::string> query_text(std::string_view sql);

  // How long a statement waits on a lock held by another connection before failing with
  // kUnavailable. Zero fails at once.
  void set_busy_timeout(std::chrono::milliseconds timeout);

  // Called after every commit on this connection with the number of pages now in the WAL (WAL
  // mode only). Replaces SQLite's auto-checkpoint on this connection, which uses the same hook:
  // whoever sets one takes over checkpointing (see Checkpointer). Empty removes it. The hook
  // runs on the committing thread, inside the commit call, and must not use this connection.
  void set_wal_hook(std::function<void(int pages)> hook);

  std::int64_t last_insert_rowid() const;
  // Rows changed by the most recent INSERT, UPDATE or DELETE on this connection.
  std::int64_t changes() const;
  // True between BEGIN and COMMIT/ROLLBACK (SQLite's autocommit flag is off).
  bool in_transaction() const;

  // Work to run once the write transaction in progress commits, in the order added, and to drop
  // if it rolls back (to the savepoint it was added in, for the Store's group commits). The
  // Store runs it on the writer thread right after COMMIT, before the write's `done`: it must be
  // quick and must not use this connection. Outside the Store nothing runs it.
  void after_commit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }
  std::size_t after_commit_count() const { return after_commit_.size(); }
  void drop_after_commit(std::size_t from) {
    after_commit_.resize(std::min(from, after_commit_.size()));
  }
  std::vector<std::function<void()>> take_after_commit() {
    return std::exchange(after_commit_, {});
  }

  // Closes now; also done by the destructor. Statements must have been destroyed first; if any
  // are alive, SQLite defers the close until the last one is finalized.
  void close();

 private:
  Db(sqlite3* db, std::filesystem::path path);
  // A cached compiled statement for `sql`, or a fresh one; `tail` receives the text after the
  // first statement (empty when it was served from the cache).
  Result<Statement> compile(std::string_view sql, std::string_view& tail);

  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  std::shared_ptr<detail::StatementCache> cache_;
  // Heap-held so that its address, which SQLite keeps, survives moves of the Db.
  std::unique_ptr<std::function<void(int)>> wal_hook_;
  std::vector<std::function<void()>> after_commit_;
};

}  // namespace atelier::store
