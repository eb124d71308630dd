#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace atelier {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskAndDrainsOnStop) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(2, 1000);
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(pool.try_submit([&] { done++; }));
  }  // destructor drains
  EXPECT_EQ(done.load(), 500);
}

TEST(ThreadPoolTest, RefusesWhenQueueIsFull) {
  ThreadPool pool(1, 2);
  std::promise<void> gate;
  auto opened = gate.get_future().share();
  ASSERT_TRUE(pool.try_submit([opened] { opened.wait(); }));  // occupies the only worker
  // Give the worker time to take the blocking task off the queue.
  for (int i = 0; i < 100; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(pool.try_submit([] {}));
  EXPECT_TRUE(pool.try_submit([] {}));
  EXPECT_FALSE(pool.try_submit([] {}));  // two waiting is the limit
  gate.set_value();
}

TEST(ThreadPoolTest, RefusesAfterStop) {
  ThreadPool pool(1, 10);
  pool.stop();
  EXPECT_FALSE(pool.try_submit([] {}));
  pool.stop();  // idempotent
}

}  // namespace
}  // namespace atelier
