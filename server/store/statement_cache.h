// Per-connection cache of compiled statements, keyed by their exact SQL text.
//
// Why: every query used to be compiled from text on every call, and SQLite's parser and code
// generator were a quarter of the server's CPU time on the job path. The *_db layers pass
// constant SQL strings, so a handful of compiled statements serve every call.
//
// Contract: owned through a shared_ptr by one Db and by every Statement taken from it, so a
// Statement that outlives its Db (a bug, but one SQLite tolerates) still has a valid cache to
// return to. Like the Db, it is used by one thread at a time. Only statements that are not in
// use sit in the cache: take() hands one out exclusively, give_back() resets it (ending any read
// it held open) and clears its bindings before keeping it. Internal to server/store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace atelier::store::detail {

class StatementCache {
 public:
  // Idle statements kept at most; more distinct queries than this are compiled each time.
  static constexpr std::size_t kMaxIdle = 128;

  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() { close(); }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // An idle compiled statement for exactly `sql`, now owned by the caller; nullptr on a miss.
  sqlite3_stmt* take(std::string_view sql);
  // Takes `stmt` back (reset, bindings cleared), or finalizes it when the cache is full or
  // closed.
  void give_back(sqlite3_stmt* stmt);
  // Finalizes every idle statement; statements given back afterwards are finalized at once.
  // Called by Db::close() before the connection goes.
  void close();

  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }
  std::size_t idle() const { return idle_count_; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };

  sqlite3* db_;
  // Several per text: a query may be running (e.g. an outer loop) while the same text is
  // prepared again.
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>, Hash, Equal> idle_;
  std::size_t idle_count_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace atelier::store::detail
