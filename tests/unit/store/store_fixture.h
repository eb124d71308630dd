// The fixture the Store tests share (store_test.cpp, checkpointer_test.cpp): a Store opened on
// a fresh directory with the embedded schema plus a table to write to.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "server/store/store.h"
#include "tests/support/temp_dir.h"

namespace atelier::store::storetest {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The embedded schema plus a table for the tests to write to.
inline std::vector<Migration> test_migrations() {
  std::vector<Migration> migrations = embedded_migrations();
  migrations.push_back({static_cast<int>(migrations.size()) + 1, "test_items",
                        "CREATE TABLE items(id INTEGER PRIMARY KEY, value TEXT NOT NULL);"
                        "CREATE TABLE counter(n INTEGER NOT NULL);"
                        "INSERT INTO counter VALUES (0);"});
  return migrations;
}

inline Status insert_item(Db& db, const std::string& value) {
  Result<Statement> stmt = db.prepare("INSERT INTO items(value) VALUES (?)");
  if (!stmt) return stmt.status();
  ATELIER_RETURN_IF_ERROR(stmt->bind_text(1, value));
  return stmt->step().status();
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.path = dir_ / "nested" / "dir" / "atelier.db";
    options_.busy_timeout = 2000ms;
  }
  void TearDown() override { store_.reset(); }

  void open() {
    Result<std::unique_ptr<Store>> store = Store::open(options_, test_migrations());
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
  }

  std::int64_t count_items() {
    std::int64_t n = -1;
    EXPECT_TRUE(store_
                    ->read([&](Db& db) {
                      Result<std::int64_t> r = db.query_int64("SELECT count(*) FROM items");
                      if (r) n = *r;
                      return r.status();
                    })
                    .is_ok());
    return n;
  }

  fs::path wal_path() const { return fs::path(options_.path.string() + "-wal"); }
  std::uintmax_t wal_size() const {
    std::error_code ec;
    const auto size = fs::file_size(wal_path(), ec);
    return ec ? 0 : size;
  }

  testing::TempDir tmp_{"atelier-store-test"};
  fs::path dir_ = tmp_.path();
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

}  // namespace atelier::store::storetest
