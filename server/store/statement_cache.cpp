#include "server/store/statement_cache.h"

#include <sqlite3.h>

namespace atelier::store::detail {

sqlite3_stmt* StatementCache::take(std::string_view sql) {
  auto it = idle_.find(sql);
  if (it == idle_.end() || it->second.empty()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  sqlite3_stmt* stmt = it->second.back();
  it->second.pop_back();
  --idle_count_;
  return stmt;
}

void StatementCache::give_back(sqlite3_stmt* stmt) {
  if (stmt == nullptr) return;
  if (db_ == nullptr || idle_count_ >= kMaxIdle) {
    sqlite3_finalize(stmt);
    return;
  }
  // reset() ends the statement's read (an unfinished SELECT would otherwise pin its WAL
  // snapshot for as long as it sits here) and clear_bindings() drops copies of bound values.
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  const char* text = sqlite3_sql(stmt);
  if (text == nullptr) {
    sqlite3_finalize(stmt);
    return;
  }
  idle_[std::string(text)].push_back(stmt);
  ++idle_count_;
}

void StatementCache::close() {
  for (auto& [sql, stmts] : idle_) {
    for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
  }
  idle_.clear();
  idle_count_ = 0;
  db_ = nullptr;
}

}  // namespace atelier::store::detail
