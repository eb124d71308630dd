// Positional binding for prepared statements: the helpers the *_db layers (accounts, projects)
// share so that each query is one call with its arguments in placeholder order.
//
//   ATELIER_RETURN_IF_ERROR(run(db, "UPDATE users SET name = ? WHERE id = ?", name_view, id));
//
// Contract: prepare_bound() and run() bind args to parameters 1..N in the order given and stop
// at the first failure, returning that error (the statement is discarded). A type binds when it
// has a bind_value() overload below: int64_t, int, double, std::string_view (text, copied), and
// std::optional of a bindable type (std::optional<std::string> included), where an empty optional
// binds NULL.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "server/store/sqlite.h"

namespace atelier::store {

inline Status bind_value(Statement& stmt, int index, int64_t value) {
  return stmt.bind_int64(index, value);
}
inline Status bind_value(Statement& stmt, int index, int value) {
  return stmt.bind_int64(index, value);
}
inline Status bind_value(Statement& stmt, int index, double value) {
  return stmt.bind_double(index, value);
}
inline Status bind_value(Statement& stmt, int index, std::string_view value) {
  return stmt.bind_text(index, value);
}
// A template rather than one overload per optional type, so that std::optional<std::string> and
// std::optional<int64_t> can both be bound without making plain string arguments ambiguous.
template <typename T>
Status bind_value(Statement& stmt, int index, const std::optional<T>& value) {
  return value ? bind_value(stmt, index, *value) : stmt.bind_null(index);
}

// Prepares `sql` and binds `args` to parameters 1, 2, ... in order.
template <typename... Args>
Result<Statement> prepare_bound(Db& db, std::string_view sql, const Args&... args) {
  Result<Statement> stmt = db.prepare(sql);
  if (!stmt.is_ok()) return stmt.status();
  int index = 0;
  Status st;
  // Stops binding at the first failure (the && short-circuits).
  (void)((st = bind_value(*stmt, ++index, args), st.is_ok()) && ...);
  if (!st.is_ok()) return st;
  return stmt;
}

// Runs a statement that returns no rows (INSERT, UPDATE, DELETE).
template <typename... Args>
Status run(Db& db, std::string_view sql, const Args&... args) {
  Result<Statement> stmt = prepare_bound(db, sql, args...);
  if (!stmt.is_ok()) return stmt.status();
  return stmt->step().status();
}

}  // namespace atelier::store
