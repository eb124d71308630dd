#include "common/thread_name.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <future>
#include <string>
#include <thread>

#include "common/thread_pool.h"

namespace atelier {
namespace {

std::string current_name() {
  char buf[32] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

TEST(ThreadNameTest, NamesTheCallingThreadAndCutsLongNames) {
  std::string short_name, long_name;
  std::thread([&] {
    set_current_thread_name("db-writer");
    short_name = current_name();
    set_current_thread_name("a-name-longer-than-fifteen-bytes");
    long_name = current_name();
  }).join();
  EXPECT_EQ(short_name, "db-writer");
  EXPECT_EQ(long_name, "a-name-longer-t");
}

TEST(ThreadNameTest, PoolThreadsCarryThePoolName) {
  std::string seen;
  {
    ThreadPool pool(1, 4, "thumbs");
    std::promise<std::string> name;
    ASSERT_TRUE(pool.try_submit([&] { name.set_value(current_name()); }));
    seen = name.get_future().get();
  }
  EXPECT_EQ(seen, "thumbs-0");
}

}  // namespace
}  // namespace atelier
