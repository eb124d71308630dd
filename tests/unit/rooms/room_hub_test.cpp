// RoomHub with fake sessions: events reach the project's room in commit order through the feed
// thread, removals and deletions end subscriptions, previews are wanted only when someone
// watches and are encoded once for everyone.
#include "server/rooms/room_hub.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "server/api/live_wire_json.h"

namespace atelier::rooms {
namespace {

using nlohmann::json;

class SafeMember : public RoomMember {
 public:
  SafeMember(int64_t user, std::string name) : user_(user), name_(std::move(name)) {}
  int64_t user_id() const override { return user_; }
  const std::string& username() const override { return name_; }
  void deliver(const OutMessage& m) override {
    std::lock_guard lock(mu_);
    got_.push_back(m);
  }
  std::vector<OutMessage> got() const {
    std::lock_guard lock(mu_);
    return got_;
  }
  std::vector<json> of_type(const std::string& type) const {
    std::vector<json> out;
    for (const auto& m : got()) {
      if (m.binary) continue;
      auto j = json::parse(*m.payload);
      if (j["type"] == type) out.push_back(j);
    }
    return out;
  }

 private:
  int64_t user_;
  std::string name_;
  mutable std::mutex mu_;
  std::vector<OutMessage> got_;
};

events::CommittedEvent committed(int64_t project, int64_t seq, events::DomainEvent e) {
  return events::CommittedEvent{project, seq, 1, from_unix_s(100), std::move(e), nullptr};
}
// Any durable event (the hub treats them alike).
events::CommittedEvent event(int64_t project, int64_t seq) {
  return committed(project, seq, events::ProjectUpdated{"name", std::nullopt});
}
jobs::Job job(int64_t project, int64_t id, jobs::JobState state = jobs::JobState::kRunning) {
  jobs::Job j;
  j.project_id = project;
  j.id = id;
  j.state = state;
  return j;
}
events::CommittedEvent job_event(int64_t project, int64_t seq, int64_t id, jobs::JobState state) {
  return committed(project, seq, events::JobChanged{job(project, id, state)});
}
events::CommittedEvent member_removed(int64_t project, int64_t seq, int64_t user) {
  return committed(project, seq,
                   events::MemberChanged{events::MemberChanged::Kind::kRemoved, user});
}

class RoomHubTest : public ::testing::Test {
 protected:
  RoomHubTest()
      : hub_(
            {.preview_interval = std::chrono::milliseconds(100)},
            std::make_shared<api::LiveWireJson>(),
            [](const events::CommittedEvent& e) {
              return json{{"seq", e.seq}, {"type", events::event_type(e.event)}}.dump();
            },
            [this] { return now_; }) {
    hub_.start();
  }
  // A step of job `id` of `project`, with or without a preview.
  void step(int64_t project, int64_t id, int n, int steps, const image::Image* preview = nullptr) {
    const jobs::Job j = job(project, id);
    hub_.on_progress(events::JobProgress{&j, n, steps, std::chrono::system_clock::now(), preview});
  }
  SteadyTime now_ = SteadyTime(std::chrono::seconds(1));
  RoomHub hub_;
};

TEST_F(RoomHubTest, EventsReachTheirProjectsRoomInCommitOrder) {
  auto a = std::make_shared<SafeMember>(1, "ann");
  auto b = std::make_shared<SafeMember>(2, "bob");
  auto elsewhere = std::make_shared<SafeMember>(3, "cat");
  hub_.join(10, a);
  hub_.join(10, b);
  hub_.join(11, elsewhere);
  for (int64_t seq = 1; seq <= 50; ++seq) hub_.on_committed(event(10, seq));
  hub_.on_committed(event(12, 1));  // nobody watches project 12
  hub_.flush();
  for (const auto& m : {a, b}) {
    auto events = m->of_type("event");
    ASSERT_EQ(events.size(), 50u);
    for (int64_t i = 0; i < 50; ++i) {
      EXPECT_EQ(events[i]["project"], 10);
      EXPECT_EQ(events[i]["event"]["seq"], i + 1);
    }
  }
  // Carried as durable messages with their seq, the same payload object for both.
  auto got_a = a->got();
  auto got_b = b->got();
  EXPECT_EQ(got_a.back().seq, 50);
  EXPECT_EQ(got_a.back().kind, OutMessage::Kind::kDurable);
  EXPECT_EQ(got_a.back().payload.get(), got_b.back().payload.get());
  EXPECT_TRUE(elsewhere->of_type("event").empty());
  EXPECT_EQ(hub_.stats().events_broadcast, 50u);
}

TEST_F(RoomHubTest, RemovalEndsThatUsersSubscriptionsAndDeletionEndsAll) {
  auto a = std::make_shared<SafeMember>(1, "ann");
  auto b = std::make_shared<SafeMember>(2, "bob");
  hub_.join(10, a);
  hub_.join(10, b);
  hub_.on_committed(member_removed(10, 1, 2));
  hub_.on_committed(event(10, 2));
  hub_.flush();
  auto gone = b->of_type("unsubscribed");
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0]["reason"], "removed");
  EXPECT_EQ(b->of_type("event").size(), 1u) << "bob sees his removal, then nothing";
  EXPECT_EQ(a->of_type("event").size(), 2u);

  hub_.on_committed(committed(10, 0, events::ProjectDeleted{}));
  hub_.flush();
  auto ended = a->of_type("unsubscribed");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["reason"], "project_deleted");
  EXPECT_EQ(hub_.find(10)->size(), 0u);
}

TEST_F(RoomHubTest, PresenceIsAnnouncedByTheFeedThreadForAllJoinsAtOnce) {
  auto a = std::make_shared<SafeMember>(1, "ann");
  auto b = std::make_shared<SafeMember>(2, "bob");
  hub_.join(10, a);
  hub_.join(10, b);
  // The feed thread's next tick (every 100 ms here) announces the joins: one message for both
  // (two, should a tick fall between the two joins), never one per join per member.
  std::vector<json> seen;
  for (int i = 0; i < 300; ++i) {
    seen = a->of_type("presence");
    if (!seen.empty() && seen.back()["members"].size() == 2u) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(seen.empty()) << "no presence announced";
  EXPECT_EQ(seen.back()["members"].size(), 2u);
  EXPECT_LE(seen.size(), 2u);
}

TEST_F(RoomHubTest, ProgressIsStampedWhenReportedAndTheNewestStepReplacesAWaitingOne) {
  auto a = std::make_shared<SafeMember>(1, "ann");
  hub_.join(10, a);
  const int64_t before = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (int n = 1; n <= 200; ++n) step(10, 5, n, 200);
  step(10, 6, 1, 10);  // another job's progress is never replaced by job 5's
  hub_.flush();
  const auto progress = a->of_type("progress");
  ASSERT_GE(progress.size(), 2u);
  int last_step = 0;
  bool saw_job6 = false;
  for (const auto& p : progress) {
    EXPECT_GE(p["at_us"].get<int64_t>(), before) << "stamped when the worker reported it";
    if (p["job"] == 6) {
      saw_job6 = true;
      continue;
    }
    EXPECT_GT(p["step"].get<int>(), last_step) << "in order, never repeated";
    last_step = p["step"];
  }
  EXPECT_EQ(last_step, 200) << "the newest step always arrives";
  EXPECT_TRUE(saw_job6);
}

// Records what each feed pass hands it; the first pass blocks until released, so that the test
// can queue work behind it.
class BatchMember : public SafeMember {
 public:
  using SafeMember::SafeMember;
  void deliver_batch(std::span<const OutMessage> messages) override {
    std::unique_lock lock(gate_mu_);
    if (hold_) {
      held_ = true;
      gate_cv_.notify_all();
      gate_cv_.wait(lock, [&] { return !hold_; });
    }
    passes_.emplace_back(messages.begin(), messages.end());
    lock.unlock();
    for (const auto& m : messages) deliver(m);
  }
  void wait_held() {
    std::unique_lock lock(gate_mu_);
    ASSERT_TRUE(gate_cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_; }));
  }
  void release() {
    std::lock_guard lock(gate_mu_);
    hold_ = false;
    gate_cv_.notify_all();
  }
  std::vector<std::vector<OutMessage>> passes() {
    std::lock_guard lock(gate_mu_);
    return passes_;
  }

 private:
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool hold_ = true;
  bool held_ = false;
  std::vector<std::vector<OutMessage>> passes_;
};

TEST_F(RoomHubTest, APassHandsEachSessionEverythingWaitingAtOnceAndEventsHoldProgressUpOnePass) {
  auto a = std::make_shared<BatchMember>(1, "ann");
  auto b = std::make_shared<SafeMember>(2, "bob");
  hub_.join(10, a);
  hub_.join(10, b);
  hub_.on_committed(event(10, 1));
  a->wait_held();  // the feed thread is inside its first pass
  // Queued behind it: 150 events (bob's removal in the middle), then a step and its preview.
  for (int64_t seq = 2; seq <= 151; ++seq) {
    hub_.on_committed(seq == 70 ? member_removed(10, seq, 2) : event(10, seq));
  }
  step(10, 5, 3, 20);
  a->release();
  hub_.flush();

  const auto passes = a->passes();
  ASSERT_GE(passes.size(), 4u) << "the first, then at least three for 150 events";
  // The second pass carried the step first, then the first kMaxEventsPerPass events at most.
  const auto& second = passes[1];
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(json::parse(*second[0].payload)["type"], "progress")
      << "a burst of events holds progress up by one pass, no more";
  EXPECT_LE(second.size(), 1u + 64u);
  EXPECT_GT(second.size(), 2u) << "many messages in one hand-over, not one each";
  // Every event, once, in order, across the passes.
  const auto events = a->of_type("event");
  ASSERT_EQ(events.size(), 151u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]["event"]["seq"], i + 1);
  // Bob heard of his removal (seq 70), was told he is unsubscribed, and heard nothing after.
  const auto bobs = b->of_type("event");
  ASSERT_FALSE(bobs.empty());
  EXPECT_EQ(bobs.back()["event"]["seq"], 70);
  EXPECT_EQ(bobs.size(), 70u);
  EXPECT_EQ(b->of_type("unsubscribed").size(), 1u);
}

TEST_F(RoomHubTest, RoomsComeAndGoWithTheirMembers) {
  auto a = std::make_shared<SafeMember>(1, "ann");
  EXPECT_EQ(hub_.find(10), nullptr);
  hub_.join(10, a);
  ASSERT_NE(hub_.find(10), nullptr);
  EXPECT_EQ(hub_.stats().rooms, 1u);
  hub_.leave(10, a.get());
  EXPECT_EQ(hub_.find(10), nullptr);
  EXPECT_EQ(hub_.stats().rooms, 0u);
}

TEST_F(RoomHubTest, PreviewsAreWantedWhenWatchedAndThrottledPerJob) {
  image::Image img{64, 32, 3, std::vector<uint8_t>(64 * 32 * 3, 90)};
  hub_.on_committed(job_event(10, 1, 5, jobs::JobState::kRunning));
  hub_.on_committed(job_event(10, 2, 6, jobs::JobState::kRunning));
  now_ += std::chrono::milliseconds(100);
  EXPECT_FALSE(hub_.wants_preview(job(10, 5))) << "nobody watches project 10";
  auto a = std::make_shared<SafeMember>(1, "ann");
  auto b = std::make_shared<SafeMember>(2, "bob");
  hub_.join(10, a);
  hub_.join(10, b);
  ASSERT_TRUE(hub_.wants_preview(job(10, 5)));
  step(10, 5, 1, 4, &img);
  EXPECT_FALSE(hub_.wants_preview(job(10, 5))) << "within the interval";
  EXPECT_TRUE(hub_.wants_preview(job(10, 6))) << "per job";
  step(10, 5, 2, 4);  // progress only
  now_ += std::chrono::milliseconds(100);
  EXPECT_TRUE(hub_.wants_preview(job(10, 5)));
  step(10, 5, 3, 4, &img);
  EXPECT_EQ(hub_.stats().previews_encoded, 2u);
  hub_.flush();  // progress and previews go out through the feed thread

  std::vector<OutMessage> frames;
  for (const auto& m : a->got()) {
    if (m.binary) frames.push_back(m);
  }
  ASSERT_EQ(frames.size(), 2u);
  auto header = parse_preview_header(*frames[1].payload);
  ASSERT_TRUE(header.is_ok());
  EXPECT_EQ(header->job, 5);
  EXPECT_EQ(header->step, 3u);
  // Encoded once: bob got the very same buffer.
  std::vector<const std::string*> b_frames;
  for (const auto& m : b->got()) {
    if (m.binary) b_frames.push_back(m.payload.get());
  }
  ASSERT_EQ(b_frames.size(), 2u);
  EXPECT_EQ(b_frames[1], frames[1].payload.get());
  // Progress goes out on the feed thread; a step still waiting there when the next one
  // comes is replaced by it, so at least the latest arrives, and nothing arrives twice.
  const auto progress = a->of_type("progress");
  ASSERT_GE(progress.size(), 1u);
  EXPECT_LE(progress.size(), 3u);
  EXPECT_EQ(progress.back()["step"], 3);
}

// The throttle follows the jobs' own events, as the bus delivers them (issue 18: the hub used
// to look for the job id where job events do not carry it, so none of this happened).
TEST_F(RoomHubTest, TheFirstPreviewComesOneIntervalAfterTheStartAndNoneAfterTheEnd) {
  image::Image img{16, 16, 3, std::vector<uint8_t>(16 * 16 * 3, 90)};
  auto a = std::make_shared<SafeMember>(1, "ann");
  hub_.join(10, a);
  EXPECT_FALSE(hub_.wants_preview(job(10, 8))) << "not started: no preview";
  hub_.on_committed(job_event(10, 1, 8, jobs::JobState::kRunning));
  EXPECT_EQ(hub_.stats().throttled_jobs, 1u);
  EXPECT_FALSE(hub_.wants_preview(job(10, 8))) << "the first preview waits one interval";
  step(10, 8, 1, 10, &img);
  EXPECT_EQ(hub_.stats().previews_encoded, 0u);
  now_ += std::chrono::milliseconds(99);
  EXPECT_FALSE(hub_.wants_preview(job(10, 8)));
  now_ += std::chrono::milliseconds(1);
  EXPECT_TRUE(hub_.wants_preview(job(10, 8)));
  step(10, 8, 2, 10, &img);
  EXPECT_EQ(hub_.stats().previews_encoded, 1u);

  hub_.on_committed(job_event(10, 2, 8, jobs::JobState::kDone));
  EXPECT_EQ(hub_.stats().throttled_jobs, 0u) << "a finished job leaves no entry";
  now_ += std::chrono::seconds(5);
  EXPECT_FALSE(hub_.wants_preview(job(10, 8))) << "previews stop at the job's end";
  step(10, 8, 10, 10, &img);  // a late step of the finished job
  EXPECT_EQ(hub_.stats().previews_encoded, 1u);
  EXPECT_EQ(hub_.stats().throttled_jobs, 0u) << "and it does not bring the entry back";

  // Back in the queue (lease lost) is an end too; a restart starts the interval again.
  hub_.on_committed(job_event(10, 3, 9, jobs::JobState::kRunning));
  hub_.on_committed(job_event(10, 4, 9, jobs::JobState::kQueued));
  EXPECT_EQ(hub_.stats().throttled_jobs, 0u);
  hub_.flush();
}

}  // namespace
}  // namespace atelier::rooms
