#include "server/auth/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
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

// --- Reservations: attempts count while in flight -------------------------------------------

TEST_F(RateLimiterTest, AttemptsInFlightCountAgainstTheLimit) {
  RateLimiter limiter({}, clock());
  std::vector<RateLimiter::Reservation> held;
  for (int i = 0; i < 5; ++i) {
    auto attempt = limiter.try_acquire({"user:ada"});
    ASSERT_TRUE(attempt.admitted()) << "attempt " << i + 1;
    EXPECT_EQ(attempt.retry_after, seconds(0));
    held.push_back(std::move(attempt.reservation));
  }
  // Nothing has failed yet, but five attempts are in flight: the sixth waits on their outcome.
  auto sixth = limiter.try_acquire({"user:ada"});
  EXPECT_FALSE(sixth.admitted());
  EXPECT_EQ(sixth.retry_after, seconds(1));
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(1));

  for (auto& r : held) r.commit();  // all five were wrong: the fifth locks
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(900));
  auto after = limiter.try_acquire({"user:ada"});
  EXPECT_FALSE(after.admitted());
  EXPECT_EQ(after.retry_after, seconds(900));
}

TEST_F(RateLimiterTest, ReleaseFreesTheSlotWithoutCounting) {
  RateLimiter limiter({.max_failures = 2}, clock());
  for (int i = 0; i < 10; ++i) {
    auto attempt = limiter.try_acquire({"user:ada"});
    ASSERT_TRUE(attempt.admitted()) << i;
    attempt.reservation.release();
  }
  EXPECT_EQ(limiter.tracked_keys(), 0u);  // nothing counted, nothing kept
  {
    auto dropped = limiter.try_acquire({"user:ada"});  // destroyed undecided: released
    ASSERT_TRUE(dropped.admitted());
    EXPECT_EQ(limiter.tracked_keys(), 1u);
  }
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST_F(RateLimiterTest, EndingAReservationTwiceOrAfterAMoveDoesNothing) {
  RateLimiter limiter({.max_failures = 2}, clock());
  auto attempt = limiter.try_acquire({"k"});
  RateLimiter::Reservation moved = std::move(attempt.reservation);
  EXPECT_FALSE(attempt.reservation.held());
  attempt.reservation.commit();  // empty: no effect
  ASSERT_TRUE(moved.held());
  moved.commit();
  moved.commit();
  moved.release();
  EXPECT_FALSE(moved.held());
  EXPECT_EQ(limiter.retry_after("k"), std::nullopt);  // one failure counted, not two
  limiter.record_failure("k");
  EXPECT_EQ(limiter.retry_after("k"), seconds(900));
}

TEST_F(RateLimiterTest, MoveAssignmentReleasesWhatItReplaces) {
  RateLimiter limiter({.max_failures = 1}, clock());
  auto a = limiter.try_acquire({"a"});
  auto b = limiter.try_acquire({"b"});
  a.reservation = std::move(b.reservation);  // "a" is released
  EXPECT_EQ(limiter.retry_after("a"), std::nullopt);
  EXPECT_EQ(limiter.retry_after("b"), seconds(1));
  a.reservation.commit();
  EXPECT_EQ(limiter.retry_after("b"), seconds(900));
}

// The spread attack of the issue: one username guessed from many addresses, all at once. Each
// address is far from its own limit; the username admits five attempts in all.
TEST_F(RateLimiterTest, ManyAddressesShareOneUsernameLimit) {
  RateLimiter limiter({}, clock());
  std::vector<RateLimiter::Reservation> in_flight;
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    auto attempt = limiter.try_acquire({"user:ada", "ip:10.0.0." + std::to_string(i % 40)});
    if (attempt.admitted()) {
      in_flight.push_back(std::move(attempt.reservation));
    } else {
      EXPECT_GE(attempt.retry_after, seconds(1));
      ++refused;
    }
  }
  EXPECT_EQ(in_flight.size(), 5u);
  EXPECT_EQ(refused, 195);
  for (auto& r : in_flight) r.commit();
  for (int i = 0; i < 40; ++i) {
    EXPECT_FALSE(limiter.try_acquire({"user:ada", "ip:10.0.0." + std::to_string(i)}).admitted());
  }
  // Each address has at most one failure: other usernames from them are fine.
  EXPECT_TRUE(limiter.try_acquire({"user:bob", "ip:10.0.0.0"}).admitted());
}

TEST_F(RateLimiterTest, AnAttemptTakesAllItsKeysOrNone) {
  RateLimiter limiter({.max_failures = 2}, clock());
  limiter.record_failure("ip:1");
  limiter.record_failure("ip:1");  // locked
  auto refused = limiter.try_acquire({"user:ada", "ip:1"});
  EXPECT_FALSE(refused.admitted());
  EXPECT_EQ(refused.retry_after, seconds(900));
  // The refusal took nothing from the username.
  auto one = limiter.try_acquire({"user:ada", "ip:2"});
  auto two = limiter.try_acquire({"user:ada", "ip:3"});
  EXPECT_TRUE(one.admitted());
  EXPECT_TRUE(two.admitted());
  EXPECT_FALSE(limiter.try_acquire({"user:ada", "ip:4"}).admitted());
}

TEST_F(RateLimiterTest, RetryAfterIsTheLongestOverTheRefusingKeys) {
  RateLimiter limiter({.max_failures = 1, .lockout = seconds(100)}, clock());
  limiter.record_failure("a");
  advance(seconds(40));
  limiter.record_failure("b");
  EXPECT_EQ(limiter.try_acquire({"a", "b"}).retry_after, seconds(100));
  EXPECT_EQ(limiter.try_acquire({"a"}).retry_after, seconds(60));
}

TEST_F(RateLimiterTest, DuplicateKeysCountOnce) {
  RateLimiter limiter({.max_failures = 2}, clock());
  auto attempt = limiter.try_acquire({"k", "k"});
  ASSERT_TRUE(attempt.admitted());
  attempt.reservation.commit();
  EXPECT_EQ(limiter.retry_after("k"), std::nullopt);
}

TEST_F(RateLimiterTest, SuccessClearsFailuresButNotAttemptsInFlight) {
  RateLimiter limiter({.max_failures = 3}, clock());
  limiter.record_failure("user:ada");
  auto guess1 = limiter.try_acquire({"user:ada"});
  auto guess2 = limiter.try_acquire({"user:ada"});
  ASSERT_TRUE(guess1.admitted() && guess2.admitted());
  limiter.record_success("user:ada");  // the owner logs in meanwhile
  // The failure is forgotten, the two guesses in flight still hold their places.
  EXPECT_TRUE(limiter.try_acquire({"user:ada"}).admitted());  // released at once
  auto third = limiter.try_acquire({"user:ada"});
  ASSERT_TRUE(third.admitted());
  EXPECT_FALSE(limiter.try_acquire({"user:ada"}).admitted());
  guess1.reservation.commit();
  guess2.reservation.commit();
  third.reservation.commit();
  EXPECT_EQ(limiter.retry_after("user:ada"), seconds(900));
}

TEST_F(RateLimiterTest, AnAttemptInFlightKeepsItsEntryPastTheWindow) {
  RateLimiter limiter({.max_failures = 2, .window = seconds(10), .lockout = seconds(10)}, clock());
  limiter.record_failure("k");
  auto attempt = limiter.try_acquire({"k"});
  ASSERT_TRUE(attempt.admitted());
  advance(minutes(5));  // far past the window: the entry stays while the attempt is out
  EXPECT_EQ(limiter.tracked_keys(), 1u);
  EXPECT_EQ(limiter.retry_after("k"), std::nullopt);  // the old failure left the window
  attempt.reservation.commit();                       // one failure in the window now
  EXPECT_EQ(limiter.retry_after("k"), std::nullopt);
  advance(seconds(10));
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST_F(RateLimiterTest, EntriesWithAttemptsInFlightAreNeverEvicted) {
  RateLimiter limiter({.max_failures = 1, .max_keys = 2}, clock());
  auto a = limiter.try_acquire({"a"});
  auto b = limiter.try_acquire({"b"});
  ASSERT_TRUE(a.admitted() && b.admitted());
  // Full of attempts in flight: a new key is refused rather than forgetting "a" or "b".
  auto c = limiter.try_acquire({"c"});
  EXPECT_FALSE(c.admitted());
  EXPECT_EQ(c.retry_after, seconds(1));
  EXPECT_FALSE(limiter.try_acquire({"a"}).admitted());
  a.reservation.commit();  // "a" is now locked, an ordinary entry again: evictable
  EXPECT_TRUE(limiter.try_acquire({"c"}).admitted());
  EXPECT_FALSE(limiter.try_acquire({"b"}).admitted());  // still in flight, still there
  EXPECT_EQ(limiter.tracked_keys(), 1u);                // "b"; "c" was released and "a" evicted
}

TEST_F(RateLimiterTest, AFailedMultiKeyAcquireLeavesNoTrace) {
  RateLimiter limiter({.max_keys = 2}, clock());
  auto a = limiter.try_acquire({"a"});
  ASSERT_TRUE(a.admitted());
  // "b" fits, "c" does not: "b" must not stay behind with a phantom attempt.
  EXPECT_FALSE(limiter.try_acquire({"b", "c"}).admitted());
  EXPECT_EQ(limiter.tracked_keys(), 1u);
  a.reservation.release();
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST(RateLimiterConcurrencyTest, ConcurrentAttemptsNeverExceedTheLimit) {
  // Threads racing on one key, each holding its reservation across a yield (the "hash"), then
  // failing: exactly max_failures attempts are ever admitted.
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  RateLimiter limiter({.max_failures = 5});
  std::atomic<int> admitted{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&limiter, &start, &admitted, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        auto attempt = limiter.try_acquire({"user:ada", "ip:" + std::to_string(t)});
        if (!attempt.admitted()) continue;
        admitted.fetch_add(1);
        std::this_thread::yield();
        attempt.reservation.commit();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), 5);
  EXPECT_TRUE(limiter.retry_after("user:ada").has_value());
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
