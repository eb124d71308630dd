// A GoogleTest fixture over a real Store (embedded migrations, WAL, foreign keys on) in a fresh
// directory per test, for the tests of the layers that query it (accounts, projects).
//
//   class AccountDbTest : public testing::StoreFixture {
//    protected:
//     AccountDbTest() : StoreFixture("atelier-account-db-test") {}
//   };
//   auto user = in_read([](store::Db& db) { return account_db::find_user(db, 1); });
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "common/status.h"
#include "server/store/store.h"
#include "tests/support/temp_dir.h"

namespace atelier::testing {

// The status of a helper's outcome, whether it returned a Status or a Result<T>.
inline const Status& status_of(const Status& st) {
  return st;
}
template <typename T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

// Hands `fn` (which takes a store::Db&) to `submit` (a Store's write or read) and returns what
// `fn` returned, which the Store's Status-only interface would otherwise drop; the Store's own
// error wins only over an OK.
template <typename Fn, typename Submit>
std::invoke_result_t<Fn, store::Db&> run_capturing(Fn& fn, Submit submit) {
  using R = std::invoke_result_t<Fn, store::Db&>;
  std::optional<R> out;
  Status st = submit([&](store::Db& db) {
    out.emplace(fn(db));
    return status_of(*out);
  });
  if (!out || (status_of(*out).is_ok() && !st.is_ok())) return R(st);
  return std::move(*out);
}

class StoreFixture : public ::testing::Test {
 protected:
  // `prefix` names the temp directory, so that a leftover one says which suite made it.
  explicit StoreFixture(const std::string& prefix) : tmp_(prefix) {}

  // A subclass that overrides SetUp() calls this first and returns on HasFatalFailure().
  void SetUp() override {
    auto store = store::Store::open({.path = tmp_ / "atelier.db"});
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
  }

  // Runs `fn` in a write transaction (committed when it returns OK) and returns what it returned,
  // or the commit's error.
  template <typename Fn>
  std::invoke_result_t<Fn, store::Db&> in_write(Fn fn) {
    return run_capturing(fn, [this](auto txn) { return store_->write(std::move(txn)); });
  }

  // Runs `fn` on a read-only connection and returns what it returned.
  template <typename Fn>
  std::invoke_result_t<Fn, store::Db&> in_read(Fn fn) {
    return run_capturing(fn, [this](auto txn) { return store_->read(txn); });
  }

  // Declared before store_ so that the database is closed before its directory is removed.
  TempDir tmp_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace atelier::testing
