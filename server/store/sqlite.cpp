#include "server/store/sqlite.h"

#include <sqlite3.h>

#include <cassert>
#include <climits>
#include <utility>

#include "server/store/statement_cache.h"

namespace atelier::store {
namespace {

constexpr std::size_t kExcerptBytes = 80;

// Leading whitespace and comments are skipped, so an excerpt of a migration statement shows the
// statement itself rather than the comment above it.
std::string_view skip_space_and_comments(std::string_view sql) {
  while (!sql.empty()) {
    const char c = sql.front();
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      sql.remove_prefix(1);
    } else if (sql.starts_with("--")) {
      const auto eol = sql.find('\n');
      sql.remove_prefix(eol == std::string_view::npos ? sql.size() : eol + 1);
    } else if (sql.starts_with("/*")) {
      const auto end = sql.find("*/", 2);
      sql.remove_prefix(end == std::string_view::npos ? sql.size() : end + 2);
    } else {
      break;
    }
  }
  return sql;
}

// The first ~80 bytes of `sql` on one line (whitespace runs collapsed), cut on a UTF-8 character
// boundary, with "..." when something was left off.
std::string sql_excerpt(std::string_view sql) {
  sql = skip_space_and_comments(sql);
  std::string out;
  bool pending_space = false;
  std::size_t i = 0;
  for (; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = !out.empty();
      continue;
    }
    if (out.size() + (pending_space ? 1 : 0) >= kExcerptBytes) break;
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  if (i < sql.size()) {
    // Do not leave half a multi-byte character behind.
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80) != 0) out.pop_back();
    out += "...";
  }
  return out;
}

StatusCode map_code(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
      return StatusCode::kAlreadyExists;
    default:
      break;
  }
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_INTERRUPT:
      return StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StatusCode::kCorruption;
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return StatusCode::kResourceExhausted;
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
      return StatusCode::kInternal;
    default:
      return StatusCode::kIoError;
  }
}

// Builds the Status for a failed call. Must run before anything else touches the connection,
// because sqlite3_errmsg() describes only the most recent call.
Status sqlite_error(int rc, sqlite3* db, std::string_view sql) {
  std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += " (sqlite error ";
  msg += std::to_string(rc);
  msg += ")";
  if (!sql.empty()) {
    msg += " in SQL: ";
    msg += sql_excerpt(sql);
  }
  return Status(map_code(rc), std::move(msg));
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Statement

Statement::~Statement() {
  release();
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), cache_(std::move(other.cache_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    release();
    stmt_ = std::exchange(other.stmt_, nullptr);
    cache_ = std::move(other.cache_);
  }
  return *this;
}

void Statement::release() {
  if (stmt_ != nullptr) {
    if (cache_) {
      cache_->give_back(stmt_);
    } else {
      sqlite3_finalize(stmt_);
    }
  }
  stmt_ = nullptr;
  cache_.reset();
}

Status Statement::bind_result(int rc, int index) {
  if (rc == SQLITE_OK) return Status::ok();
  return sqlite_error(rc, sqlite3_db_handle(stmt_), sqlite3_sql(stmt_))
      .with_context("binding parameter " + std::to_string(index));
}

Status Statement::bind_int64(int index, std::int64_t value) {
  if (!stmt_) return Status::internal("bind on an empty Statement");
  return bind_result(sqlite3_bind_int64(stmt_, index, value), index);
}

Status Statement::bind_double(int index, double value) {
  if (!stmt_) return Status::internal("bind on an empty Statement");
  return bind_result(sqlite3_bind_double(stmt_, index, value), index);
}

Status Statement::bind_text(int index, std::string_view value) {
  if (!stmt_) return Status::internal("bind on an empty Statement");
  // A null pointer would bind SQL NULL, but an empty string_view is still text.
  const char* data = value.data() != nullptr ? value.data() : "";
  return bind_result(
      sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8), index);
}

Status Statement::bind_blob(int index, std::span<const std::uint8_t> value) {
  if (!stmt_) return Status::internal("bind on an empty Statement");
  // sqlite3_bind_blob with a null pointer binds NULL; an empty blob must stay a blob.
  if (value.empty()) return bind_result(sqlite3_bind_zeroblob(stmt_, index, 0), index);
  return bind_result(
      sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT), index);
}

Status Statement::bind_null(int index) {
  if (!stmt_) return Status::internal("bind on an empty Statement");
  return bind_result(sqlite3_bind_null(stmt_, index), index);
}

void Statement::clear_bindings() {
  if (stmt_) sqlite3_clear_bindings(stmt_);
}

Result<bool> Statement::step() {
  if (!stmt_) return Status::internal("step on an empty Statement");
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(rc, sqlite3_db_handle(stmt_), sqlite3_sql(stmt_));
}

void Statement::reset() {
  if (stmt_) sqlite3_reset(stmt_);
}

int Statement::column_count() const {
  return stmt_ ? sqlite3_column_count(stmt_) : 0;
}

std::string Statement::column_name(int column) const {
  assert(stmt_);
  const char* name = sqlite3_column_name(stmt_, column);
  return name ? std::string(name) : std::string();
}

ColumnType Statement::column_type(int column) const {
  assert(stmt_);
  switch (sqlite3_column_type(stmt_, column)) {
    case SQLITE_INTEGER:
      return ColumnType::kInteger;
    case SQLITE_FLOAT:
      return ColumnType::kFloat;
    case SQLITE_TEXT:
      return ColumnType::kText;
    case SQLITE_BLOB:
      return ColumnType::kBlob;
    default:
      return ColumnType::kNull;
  }
}

std::int64_t Statement::column_int64(int column) const {
  assert(stmt_);
  return sqlite3_column_int64(stmt_, column);
}

double Statement::column_double(int column) const {
  assert(stmt_);
  return sqlite3_column_double(stmt_, column);
}

std::string Statement::column_text(int column) const {
  assert(stmt_);
  // The pointer must be fetched before the length: _text may convert the value in place.
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return data ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::vector<std::uint8_t> Statement::column_blob(int column) const {
  assert(stmt_);
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  if (!data || size <= 0) return {};
  return std::vector<std::uint8_t>(data, data + size);
}

std::string Statement::sql() const {
  const char* text = stmt_ ? sqlite3_sql(stmt_) : nullptr;
  return text ? std::string(text) : std::string();
}

// ---------------------------------------------------------------------------------------------
// Db

Db::~Db() {
  close();
}

Db::Db(sqlite3* db, std::filesystem::path path)
    : db_(db), path_(std::move(path)), cache_(std::make_shared<detail::StatementCache>(db)) {}

Db::Db(Db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      cache_(std::move(other.cache_)),
      wal_hook_(std::move(other.wal_hook_)),
      after_commit_(std::move(other.after_commit_)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    cache_ = std::move(other.cache_);
    wal_hook_ = std::move(other.wal_hook_);
    after_commit_ = std::move(other.after_commit_);
  }
  return *this;
}

Result<Db> Db::open(const std::filesystem::path& path, OpenMode mode) {
  // NOMUTEX: each connection is confined to one thread at a time (see header), so SQLite's
  // per-connection mutex would be pure overhead.
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= mode == OpenMode::kReadOnly ? SQLITE_OPEN_READONLY
                                       : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status st = sqlite_error(rc, raw, {});
    sqlite3_close_v2(raw);
    return st.with_context("opening database " + path.string());
  }
  sqlite3_extended_result_codes(raw, 1);
  return Db(raw, path);
}

void Db::close() {
  if (cache_) cache_->close();
  cache_.reset();
  if (db_) {
    // _v2 never fails with BUSY: with statements still alive the handle becomes a zombie that
    // SQLite frees when the last one is finalized.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
  wal_hook_.reset();
}

Result<Statement> Db::compile(std::string_view sql, std::string_view& tail) {
  if (sqlite3_stmt* cached = cache_ ? cache_->take(sql) : nullptr) {
    tail = {};
    return Statement(cached, cache_);
  }
  sqlite3_stmt* raw = nullptr;
  const char* end = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, &end);
  if (rc != SQLITE_OK) return sqlite_error(rc, db_, sql);
  const auto consumed = static_cast<std::size_t>(end - sql.data());
  tail = sql.substr(consumed);
  if (raw == nullptr) return Statement();  // only whitespace or comments
  // Cached only when the text is exactly this one statement, so that the key the cache files it
  // under (SQLite's copy of the statement's text) is what the next caller will look it up by.
  const char* text = sqlite3_sql(raw);
  const bool cacheable = cache_ && consumed == sql.size() && text != nullptr && sql == text;
  return Statement(raw, cacheable ? cache_ : nullptr);
}

Status Db::exec(std::string_view sql) {
  if (!db_) return Status::internal("exec on a closed Db");
  if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
    return Status::invalid_argument("SQL text is too long");
  }
  std::string_view rest = sql;
  while (!rest.empty()) {
    std::string_view tail;
    Result<Statement> stmt = compile(rest, tail);
    if (!stmt) return stmt.status();
    const std::string_view current = rest.substr(0, rest.size() - tail.size());
    rest = tail;
    if (!stmt->is_valid()) {  // only whitespace or comments
      if (current.empty()) break;
      continue;
    }
    int rc;
    while ((rc = sqlite3_step(stmt->stmt_)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return sqlite_error(rc, db_, current);
  }
  return Status::ok();
}

Result<Statement> Db::prepare(std::string_view sql) {
  if (!db_) return Status::internal("prepare on a closed Db");
  if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
    return Status::invalid_argument("SQL text is too long");
  }
  std::string_view rest;
  Result<Statement> stmt = compile(sql, rest);
  if (!stmt) return stmt.status();
  if (!stmt->is_valid()) {
    return Status::invalid_argument("no SQL statement to prepare in: " + sql_excerpt(sql));
  }

  // sqlite3_prepare compiles only the first statement and would ignore the rest without a word.
  bool only_space = true;
  for (char c : rest) {
    if (!is_space(c) && c != ';') {
      only_space = false;
      break;
    }
  }
  if (!only_space) {
    sqlite3_stmt* extra = nullptr;
    const int extra_rc =
        sqlite3_prepare_v2(db_, rest.data(), static_cast<int>(rest.size()), &extra, nullptr);
    sqlite3_finalize(extra);
    if (extra_rc != SQLITE_OK || extra != nullptr) {
      return Status::invalid_argument("prepare() takes one statement, got more in: " +
                                      sql_excerpt(sql));
    }
  }
  return stmt;
}

StatementCacheStats Db::statement_cache_stats() const {
  if (!cache_) return {};
  return StatementCacheStats{cache_->hits(), cache_->misses(), cache_->idle()};
}

Result<std::int64_t> Db::query_int64(std::string_view sql) {
  Result<Statement> stmt = prepare(sql);
  if (!stmt) return stmt.status();
  Result<bool> row = stmt->step();
  if (!row) return row.status();
  if (!*row) return Status::not_found("query returned no row: " + sql_excerpt(sql));
  return stmt->column_int64(0);
}

Result<std::string> Db::query_text(std::string_view sql) {
  Result<Statement> stmt = prepare(sql);
  if (!stmt) return stmt.status();
  Result<bool> row = stmt->step();
  if (!row) return row.status();
  if (!*row) return Status::not_found("query returned no row: " + sql_excerpt(sql));
  return stmt->column_text(0);
}

void Db::set_busy_timeout(std::chrono::milliseconds timeout) {
  if (!db_) return;
  const auto ms = timeout.count();
  sqlite3_busy_timeout(db_, ms <= 0 ? 0 : (ms > INT_MAX ? INT_MAX : static_cast<int>(ms)));
}

void Db::set_wal_hook(std::function<void(int pages)> hook) {
  if (!db_) return;
  if (!hook) {
    sqlite3_wal_hook(db_, nullptr, nullptr);
    wal_hook_.reset();
    return;
  }
  auto fn = std::make_unique<std::function<void(int)>>(std::move(hook));
  sqlite3_wal_hook(
      db_,
      [](void* arg, sqlite3*, const char*, int pages) -> int {
        try {
          (*static_cast<std::function<void(int)>*>(arg))(pages);
        } catch (...) {
          // A hook must not unwind through SQLite; the commit itself has already succeeded.
        }
        return SQLITE_OK;
      },
      fn.get());
  wal_hook_ = std::move(fn);
}

std::int64_t Db::last_insert_rowid() const {
  return db_ ? sqlite3_last_insert_rowid(db_) : 0;
}

std::int64_t Db::changes() const {
  return db_ ? sqlite3_changes64(db_) : 0;
}

bool Db::in_transaction() const {
  return db_ && sqlite3_get_autocommit(db_) == 0;
}

}  // namespace atelier::store
