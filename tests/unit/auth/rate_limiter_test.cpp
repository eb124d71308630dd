#include "server/auth/rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <latch>
#include <string>
#include <thread>
#include <vector>

namespace atelier::auth {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// A limiter on a clock that only moves when the test says so.
class RateLimiterTest : public ::testing::Test {
 protected:
  RateLimiter::Clock clock() {
    return [this] { return now_; };
  }
  void advance(std::chrono::steady_clock::duration d) { now_ += d; }
  void fail(RateLimiter& limiter, const std::string& key, int times) {
    for (int i = 0; i < times; ++i) limiter.record_failure(key);
  }

  std::chrono::steady_clock::time_point now_ =
      std::chrono::steady_clock::time_point() + minutes(60);
};

TEST_F(RateLimiterTest, DefaultsAreFiveFailuresPerFifteenMinutes) {
  RateLimiter limiter;
  EXPECT_EQ(limiter.config().max_failures, 5);
  EXPECT_EQ(limiter.config().window, minutes(15));
  EXPECT_EQ(limiter.config().lockout, minutes(15));
  EXPECT_EQ(limiter.config().max_keys, 100'000u);
}

TEST_F(RateLimiterTest, AllowsUnderTheLimit) {
  RateLimiter limiter({}, clock());
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);
  fail(limiter, "user:ada", 4);
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);
}

TEST_F(RateLimiterTest, BlocksAtTheLimitWithRetryAfter) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 5);
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(900));

  advance(milliseconds(1500));
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(899));  // 898.5 s rounds up

  advance(seconds(898) - milliseconds(1));  // 1 ms left
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(1));
}

TEST_F(RateLimiterTest, UnblocksAfterTheLockoutAndStartsAfresh) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 5);
  advance(minutes(15) - milliseconds(1));
  EXPECT_TRUE(limiter.retry_after("user:ada").has_value());
  advance(milliseconds(1));
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);

  fail(limiter, "user:ada", 4);  // the failures before the lockout no longer count
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);
  fail(limiter, "user:ada", 1);
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(900));
}

TEST_F(RateLimiterTest, FailuresDuringALockoutDoNotExtendIt) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 5);
  advance(minutes(10));
  fail(limiter, "user:ada", 20);
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(300));
  advance(minutes(5));
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);
}

TEST_F(RateLimiterTest, SuccessClearsFailures) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 4);
  limiter.record_success("user:ada");
  fail(limiter, "user:ada", 4);
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);
  EXPECT_EQ(limiter.tracked_keys(), 1u);
  limiter.record_success("user:ada");
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST_F(RateLimiterTest, SuccessClearsALockout) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 5);
  limiter.record_success("user:ada");  // e.g. an admin reset
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);
}

TEST_F(RateLimiterTest, WindowExpiryForgetsOldFailures) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 1);  // t = 0
  advance(minutes(10));
  fail(limiter, "user:ada", 3);  // t = 10 min: 4 within the window
  advance(minutes(5));           // t = 15 min: the first failure has left the window
  fail(limiter, "user:ada", 1);
  EXPECT_EQ(limiter.retry_after("user:ada"), std::nullopt);
  fail(limiter, "user:ada", 1);  // 5 within the last 15 minutes
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(900));
}

TEST_F(RateLimiterTest, ForgetsKeysOnceNothingCounts) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 2);
  fail(limiter, "user:bob", 5);
  EXPECT_EQ(limiter.tracked_keys(), 2u);
  advance(minutes(15));
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST_F(RateLimiterTest, KeysAreIndependent) {
  RateLimiter limiter({}, clock());
  fail(limiter, "user:ada", 5);
  fail(limiter, "user:bob", 4);
  EXPECT_TRUE(limiter.retry_after("user:ada").has_value());
  EXPECT_EQ(limiter.retry_after("user:bob"), std::nullopt);
  EXPECT_EQ(limiter.retry_after("ip:203.0.113.7"), std::nullopt);
  limiter.record_success("user:bob");
  EXPECT_TRUE(limiter.retry_after("user:ada").has_value());
}

TEST_F(RateLimiterTest, HonoursItsConfig) {
  RateLimiter limiter({.max_failures = 2, .window = seconds(10), .lockout = seconds(30)}, clock());
  fail(limiter, "k", 1);
  advance(seconds(10));
  fail(limiter, "k", 1);
  EXPECT_EQ(limiter.retry_after("k"), std::nullopt);
  fail(limiter, "k", 1);
  EXPECT_EQ(limiter.retry_after("k"), seconds(30));
}

TEST_F(RateLimiterTest, RaisesNonsenseConfigToMinimums) {
  RateLimiter limiter(
      {.max_failures = 0, .window = seconds(0), .lockout = seconds(-5), .max_keys = 0}, clock());
  EXPECT_EQ(limiter.config().max_failures, 1);
  EXPECT_EQ(limiter.config().window, seconds(1));
  EXPECT_EQ(limiter.config().lockout, seconds(1));
  EXPECT_EQ(limiter.config().max_keys, 1u);
  fail(limiter, "k", 1);
  EXPECT_EQ(limiter.retry_after("k"), seconds(1));
}

TEST_F(RateLimiterTest, MemoryCapHolds) {
  RateLimiter limiter({.max_keys = 100}, clock());
  for (int i = 0; i < 10'000; ++i) {
    fail(limiter, "ip:" + std::to_string(i), 1);
    ASSERT_LE(limiter.tracked_keys(), 100u);
  }
  EXPECT_EQ(limiter.tracked_keys(), 100u);
  // The newest keys are the ones kept.
  fail(limiter, "ip:9999", 4);
  EXPECT_TRUE(limiter.retry_after("ip:9999").has_value());
}

TEST_F(RateLimiterTest, EvictsTheEntryClosestToExpiring) {
  RateLimiter limiter({.max_keys = 3}, clock());
  fail(limiter, "a", 4);  // expires at t + 15 min
  advance(seconds(1));
  fail(limiter, "b", 4);
  advance(seconds(1));
  fail(limiter, "c", 4);
  advance(seconds(1));
  fail(limiter, "d", 1);  // full: "a" goes

  fail(limiter, "a", 1);  // a fresh start for "a", evicting "b" in turn
  EXPECT_EQ(limiter.retry_after("a"), std::nullopt);
  fail(limiter, "c", 1);
  EXPECT_EQ(limiter.retry_after("c"), seconds(900));
  EXPECT_EQ(limiter.tracked_keys(), 3u);
}

TEST_F(RateLimiterTest, LockedEntriesStayUntilTheirLockoutEnds) {
  // A lockout longer than the window keeps the entry past the window.
  RateLimiter limiter({.max_failures = 1, .window = minutes(1), .lockout = minutes(60)}, clock());
  fail(limiter, "k", 1);
  advance(minutes(30));
  EXPECT_EQ(limiter.tracked_keys(), 1u);
  EXPECT_EQ(limiter.retry_after("k"), minutes(30));
}

TEST(RateLimiterConcurrencyTest, CountsEveryFailureAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  RateLimiter limiter({.max_failures = kThreads * kPerThread + 1});
  std::latch start(kThreads);  // so that the threads really overlap
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&limiter, &start, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        limiter.record_failure("shared");
        limiter.record_failure("own:" + std::to_string(t) + ":" + std::to_string(i));
        (void)limiter.retry_after("shared");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(limiter.tracked_keys(), kThreads * kPerThread + 1u);
  EXPECT_EQ(limiter.retry_after("shared"), std::nullopt);  // one short of the limit...
  limiter.record_failure("shared");
  EXPECT_TRUE(limiter.retry_after("shared").has_value());  // ...so no failure was lost
}

TEST(RateLimiterConcurrencyTest, CapHoldsAcrossThreads) {
  RateLimiter limiter({.max_keys = 50});
  std::latch start(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&limiter, &start, t] {
      start.arrive_and_wait();
      for (int i = 0; i < 5000; ++i) {
        limiter.record_failure(std::to_string(t) + ":" + std::to_string(i));
        if (limiter.tracked_keys() > 50) ADD_FAILURE() << "cap exceeded";
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(limiter.tracked_keys(), 50u);
}

}  // namespace
}  // namespace atelier::auth
