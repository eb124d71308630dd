// EventBus: every subscriber hears every event once, a throwing one does not stop the others,
// unsubscribing stops delivery, and the preview demand answers for workers.
#include "server/events/event_bus.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace atelier::events {
namespace {

CommittedEvent created(int64_t seq) {
  return CommittedEvent{1, seq, 0, from_unix_s(0), ProjectCreated{"p"}, nullptr};
}

TEST(EventBusTest, EverySubscriberHearsEachEventAndAThrowingOneIsSkipped) {
  EventBus bus;
  std::vector<int64_t> a, b;
  uint64_t sa = bus.subscribe({.committed = [&](const CommittedEvent& e) { a.push_back(e.seq); }});
  bus.subscribe({.committed = [](const CommittedEvent&) { throw std::runtime_error("boom"); }});
  bus.subscribe({.committed = [&](const CommittedEvent& e) { b.push_back(e.seq); }});
  bus.publish(created(1));
  bus.publish(created(2));
  bus.unsubscribe(sa);
  bus.publish(created(3));
  EXPECT_EQ(a, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(b, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(bus.subscribers(), 2u);
}

TEST(EventBusTest, ProgressGoesToProgressHandlersOnly) {
  EventBus bus;
  int committed = 0, progress = 0;
  bus.subscribe({.committed = [&](const CommittedEvent&) { ++committed; }});
  bus.subscribe({.progress = [&](const JobProgress& p) {
    ++progress;
    EXPECT_EQ(p.job->id, 9);
    EXPECT_EQ(p.step, 3);
  }});
  jobs::Job job;
  job.id = 9;
  bus.publish(JobProgress{&job, 3, 10, std::chrono::system_clock::now(), nullptr});
  EXPECT_EQ(progress, 1);
  EXPECT_EQ(committed, 0);
}

TEST(EventBusTest, PreviewDemandIsFalseUntilSet) {
  EventBus bus;
  jobs::Job job;
  job.id = 4;
  EXPECT_FALSE(bus.wants_preview(job));
  bus.set_preview_demand([](const jobs::Job& j) { return j.id == 4; });
  EXPECT_TRUE(bus.wants_preview(job));
}

TEST(EventBusTest, SubscribingWhilePublishingFromAnotherThreadIsSafe) {
  EventBus bus;
  std::atomic<int> heard{0};
  std::thread publisher([&] {
    for (int i = 0; i < 2000; ++i) bus.publish(created(i));
  });
  std::vector<uint64_t> subs;
  for (int i = 0; i < 200; ++i) {
    subs.push_back(bus.subscribe({.committed = [&](const CommittedEvent&) { ++heard; }}));
  }
  for (uint64_t s : subs) bus.unsubscribe(s);
  publisher.join();
  EXPECT_EQ(bus.subscribers(), 0u);
}

}  // namespace
}  // namespace atelier::events
