// PeriodicThread: calls its task every interval on its own thread, not before the first interval,
// and never after stop() returns.
#include "common/periodic_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace atelier {
namespace {

using namespace std::chrono_literals;

TEST(PeriodicThreadTest, CallsTheTaskEveryIntervalUntilStopped) {
  std::atomic<int> calls{0};
  std::atomic<bool> on_other_thread{true};
  const auto owner = std::this_thread::get_id();
  PeriodicThread t("test-tick", 10ms, [&] {
    if (std::this_thread::get_id() == owner) on_other_thread = false;
    ++calls;
  });
  t.start();
  for (int i = 0; i < 500 && calls.load() < 3; ++i) std::this_thread::sleep_for(5ms);
  t.stop();
  const int at_stop = calls.load();
  EXPECT_GE(at_stop, 3);
  EXPECT_TRUE(on_other_thread.load());
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls.load(), at_stop) << "no call after stop()";
  t.stop();  // idempotent
}

TEST(PeriodicThreadTest, StopBeforeTheFirstIntervalCallsNothing) {
  std::atomic<int> calls{0};
  PeriodicThread t("test-tick", std::chrono::hours(1), [&] { ++calls; });
  t.start();
  t.stop();
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace atelier
