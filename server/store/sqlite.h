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

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

// Opaque SQLite handles; sqlite3.h stays out of our headers.
struct sqlite3;
struct sqlite3_stmt;

namespace atelier::store {

enum class OpenMode {
  kReadWriteCreate,  // creates the file if missing
  kReadOnly,         // the file must exist; every write fails with kIoError
};

enum class ColumnType { kInteger, kFloat, kText, kBlob, kNull };

// A prepared statement. Parameter indexes are 1-based and column indexes 0-based, as in SQLite.
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
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Status bind_result(int rc, int index);

  sqlite3_stmt* stmt_ = nullptr;
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
  Result<Statement> prepare(std::string_view sql);

  // Runs a one-row query and returns column 0 of the first row; kNotFound when there is no row.
  // Handy for pragmas and counts.
  Result<std::int64_t> query_int64(std::string_view sql);
  Result<std::string> query_text(std::string_view sql);

  // How long a statement waits on a lock held by another connection before failing with
  // kUnavailable. Zero fails at once.
  void set_busy_timeout(std::chrono::milliseconds timeout);

  std::int64_t last_insert_rowid() const;
  // Rows changed by the most recent INSERT, UPDATE or DELETE on this connection.
  std::int64_t changes() const;
  // True between BEGIN and COMMIT/ROLLBACK (SQLite's autocommit flag is off).
  bool in_transaction() const;

  // Closes now; also done by the destructor. Statements must have been destroyed first; if any
  // are alive, SQLite defers the close until the last one is finalized.
  void close();

 private:
  Db(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
};

}  // namespace atelier::store
