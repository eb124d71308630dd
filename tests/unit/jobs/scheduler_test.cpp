#include "server/jobs/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <vector>

namespace atelier::jobs {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kNoAgeing = milliseconds::max();

// Test times: `ms` milliseconds after the epoch.
SysTime at(int64_t ms) {
  return from_unix_ms(ms);
}

QueuedJob job(int64_t id, int64_t project, int64_t user, int priority = 0, int64_t enqueued = 0) {
  return QueuedJob{.id = id,
                   .project_id = project,
                   .user_id = user,
                   .priority = priority,
                   .enqueued_at = at(enqueued)};
}

// Pops everything at `now` and returns the ids in pick order.
std::vector<int64_t> drain(FairScheduler& s, int64_t now = 0) {
  std::vector<int64_t> ids;
  while (auto j = s.pop_next(at(now))) ids.push_back(j->id);
  return ids;
}

void expect_same_job(const QueuedJob& a, const QueuedJob& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.project_id, b.project_id);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.enqueued_at, b.enqueued_at);
}

TEST(FairSchedulerTest, EmptyScheduler) {
  FairScheduler s;
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.pop_next(at(0)).has_value());
  EXPECT_FALSE(s.position(1, at(0)).has_value());
  EXPECT_FALSE(s.contains(1));
  EXPECT_FALSE(s.remove(1));
  EXPECT_TRUE(s.job_ids().empty());
  EXPECT_EQ(s.queued_for_user(1), 0u);
}

TEST(FairSchedulerTest, FifoWithinUser) {
  FairScheduler s;
  for (int64_t id = 1; id <= 5; ++id) s.add(job(id, 1, 1, 0, id * 10));
  EXPECT_EQ(drain(s, 100), (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST(FairSchedulerTest, LateUserIsNotStarvedByBacklog) {
  FairScheduler s;
  for (int64_t id = 1; id <= 100; ++id) s.add(job(id, 1, /*user=*/1));
  s.add(job(101, 1, /*user=*/2));
  std::vector<int64_t> first_two = {s.pop_next(at(0))->id, s.pop_next(at(0))->id};
  EXPECT_NE(std::find(first_two.begin(), first_two.end(), 101), first_two.end());
}

TEST(FairSchedulerTest, TwoProjectsAlternate) {
  FairScheduler s;
  for (int64_t id = 1; id <= 3; ++id) s.add(job(id, /*project=*/1, 1));
  for (int64_t id = 4; id <= 6; ++id) s.add(job(id, /*project=*/2, 2));
  EXPECT_EQ(drain(s), (std::vector<int64_t>{1, 4, 2, 5, 3, 6}));
}

TEST(FairSchedulerTest, ThreeUsersAlternateWithinProject) {
  FairScheduler s;
  // Submitted user by user; served one job per user per round.
  for (int64_t id = 1; id <= 2; ++id) s.add(job(id, 1, /*user=*/30));
  for (int64_t id = 3; id <= 4; ++id) s.add(job(id, 1, /*user=*/10));
  for (int64_t id = 5; id <= 6; ++id) s.add(job(id, 1, /*user=*/20));
  EXPECT_EQ(drain(s), (std::vector<int64_t>{3, 5, 1, 4, 6, 2}));
}

TEST(FairSchedulerTest, HigherPriorityFirstWithinUser) {
  FairScheduler s;
  s.add(job(1, 1, 1, /*priority=*/0));
  s.add(job(2, 1, 1, /*priority=*/5));
  s.add(job(3, 1, 1, /*priority=*/-3));
  s.add(job(4, 1, 1, /*priority=*/5));
  s.add(job(5, 1, 1, /*priority=*/10));
  EXPECT_EQ(drain(s), (std::vector<int64_t>{5, 2, 4, 1, 3}));
}

TEST(FairSchedulerTest, AgeingLetsOldLowPriorityJobOvertake) {
  // Job 1 (priority 0) waits from t=0; job 2 (priority 2) arrives at t=arrival. Both age at the
  // same rate, so job 1 overtakes once it has waited two full ageing periods longer.
  auto first_pick = [](int64_t arrival) {
    FairScheduler s(FairScheduler::Options{.ageing = milliseconds(60'000)});
    s.add(job(1, 1, 1, /*priority=*/0, /*enqueued=*/0));
    s.add(job(2, 1, 1, /*priority=*/2, /*enqueued=*/arrival));
    return s.pop_next(at(arrival))->id;
  };
  EXPECT_EQ(first_pick(60'000), 2);   // effective 1 vs 2
  EXPECT_EQ(first_pick(119'999), 2);  // still 1 vs 2: only full periods count
  EXPECT_EQ(first_pick(120'000), 1);  // 2 vs 2: the tie goes to the lower id
  EXPECT_EQ(first_pick(180'000), 1);  // 3 vs 2
}

TEST(FairSchedulerTest, AgeingIsOffWhenDisabledAndNegativeWaitsCountAsZero) {
  FairScheduler off(FairScheduler::Options{.ageing = milliseconds(0)});
  off.add(job(1, 1, 1, 0, 0));
  off.add(job(2, 1, 1, 1, 1'000'000'000));
  EXPECT_EQ(off.pop_next(at(2'000'000'000))->id, 2);

  // Job 2 claims to be enqueued in the future; its wait is 0, not negative, so it keeps its
  // priority 1 and beats job 1's priority 0.
  FairScheduler s(FairScheduler::Options{.ageing = milliseconds(1000)});
  s.add(job(1, 1, 1, 0, 0));
  s.add(job(2, 1, 1, 1, 50'000));
  EXPECT_EQ(s.pop_next(at(500))->id, 2);
}

TEST(FairSchedulerTest, TiesGoToLowestIdEvenWhenRequeuedLater) {
  FairScheduler s(FairScheduler::Options{.ageing = milliseconds(60'000)});
  s.add(job(5, 1, 1, 0, /*enqueued=*/1'000));
  s.add(job(3, 1, 1, 0, /*enqueued=*/2'000));  // re-queued: old id, newer timestamp
  s.add(job(9, 1, 1, 0, /*enqueued=*/70'000));
  // At t=70,000 jobs 5 and 3 have both waited one full period (effective 1); job 9 has not.
  EXPECT_EQ(drain(s, 70'000), (std::vector<int64_t>{3, 5, 9}));
}

TEST(FairSchedulerTest, RemoveQueuedAndUnknown) {
  FairScheduler s;
  s.add(job(1, 1, 1));
  s.add(job(2, 1, 2));
  s.add(job(3, 2, 1));
  EXPECT_TRUE(s.remove(2));
  EXPECT_FALSE(s.remove(2));
  EXPECT_FALSE(s.remove(42));
  EXPECT_FALSE(s.contains(2));
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.queued_for_user(2), 0u);
  EXPECT_EQ(drain(s), (std::vector<int64_t>{1, 3}));
}

TEST(FairSchedulerTest, ReAddingSameIdReplaces) {
  FairScheduler s;
  s.add(job(1, 1, 1, 0, 0));
  s.add(job(2, 1, 1, 0, 0));
  s.add(job(1, 2, 7, 3, 500));
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.queued_for_user(1), 1u);
  EXPECT_EQ(s.queued_for_user(7), 1u);
  auto first = s.pop_next(at(1000));  // project 1 (job 2) goes first, then project 2
  auto second = s.pop_next(at(1000));
  EXPECT_EQ(first->id, 2);
  expect_same_job(*second, job(1, 2, 7, 3, 500));
}

TEST(FairSchedulerTest, UndoPopRestoresJobAndTurnOrder) {
  FairScheduler s(FairScheduler::Options{.ageing = milliseconds(1000)});
  int64_t id = 0;
  for (int64_t project = 1; project <= 3; ++project) {
    for (int64_t user = 1; user <= 3; ++user) {
      for (int k = 0; k < 3; ++k) {
        ++id;
        s.add(job(id, project, user, k % 2, id * 100));
      }
    }
  }
  s.pop_next(at(5000));
  s.pop_next(at(5000));  // move the cursors off their starting points
  const FairScheduler untouched = s;

  auto popped = s.pop_next(at(5000));
  ASSERT_TRUE(popped.has_value());
  s.undo_pop(*popped);
  EXPECT_EQ(s.size(), untouched.size());
  EXPECT_EQ(s.pop_next(at(5000))->id, popped->id);
  s.undo_pop(*popped);

  FairScheduler reference = untouched;
  EXPECT_EQ(drain(s, 5000), drain(reference, 5000));
}

TEST(FairSchedulerTest, UndoingSeveralPopsInReverseRestoresOrder) {
  FairScheduler s;
  for (int64_t id = 1; id <= 12; ++id) s.add(job(id, id % 3, id % 2));
  s.pop_next(at(0));
  FairScheduler reference = s;
  auto a = s.pop_next(at(0));
  auto b = s.pop_next(at(0));
  auto c = s.pop_next(at(0));
  s.undo_pop(*c);
  s.undo_pop(*b);
  s.undo_pop(*a);
  EXPECT_EQ(drain(s), drain(reference));
}

TEST(FairSchedulerTest, UndoingAnOlderPopGivesItsTurnBack) {
  FairScheduler s;
  for (int64_t id = 1; id <= 4; ++id) s.add(job(id, /*project=*/id % 2 + 1, 1));
  auto a = s.pop_next(at(0));  // job 2, project 1
  auto b = s.pop_next(at(0));  // job 1, project 2
  ASSERT_EQ(a->id, 2);
  ASSERT_EQ(b->id, 1);
  s.undo_pop(*a);  // b's pop stands; a gets the next turn
  EXPECT_EQ(drain(s), (std::vector<int64_t>{2, 3, 4}));
}

TEST(FairSchedulerTest, PositionMatchesDrainOrder) {
  FairScheduler s(FairScheduler::Options{.ageing = milliseconds(1000)});
  int64_t id = 0;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    const int64_t project = static_cast<int64_t>(rng() % 4) + 1;
    const int64_t user = static_cast<int64_t>(rng() % 3) + 10;
    const int priority = static_cast<int>(rng() % 5) - 2;
    s.add(job(++id, project, user, priority, static_cast<int64_t>(rng() % 8000)));
  }
  for (int i = 0; i < 7; ++i) s.pop_next(at(6000));  // cursors mid-way
  s.remove(id);                                      // and a hole

  const int64_t now = 9000;
  std::map<int64_t, int64_t> positions;
  for (int64_t queued : s.job_ids()) positions[queued] = *s.position(queued, at(now));
  // positions() answers the same for many jobs at once, and skips ids that are not queued.
  std::vector<int64_t> some = s.job_ids();
  some.resize(some.size() / 2);
  some.push_back(id);  // removed above
  auto many = s.positions(some, at(now));
  EXPECT_EQ(many.size(), some.size() - 1);
  for (const auto& [job_id, place] : many) EXPECT_EQ(place, positions[job_id]) << job_id;
  const std::vector<int64_t> order = drain(s, now);
  ASSERT_EQ(order.size(), positions.size());
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(positions[order[i]], static_cast<int64_t>(i) + 1) << "job " << order[i];
  }
}

TEST(FairSchedulerTest, PositionHandlesTenThousandJobs) {
  // 100 projects with 100 jobs each: job k (0-based) of project p is served in round k, after
  // the p projects with lower ids. A sanity run of position() at scale, without timing.
  FairScheduler s;
  for (int64_t p = 0; p < 100; ++p) {
    for (int64_t k = 0; k < 100; ++k) s.add(job(p * 100 + k + 1, p + 1, p + 1));
  }
  ASSERT_EQ(s.size(), 10'000u);
  for (int64_t p : {0, 37, 99}) {
    for (int64_t k : {0, 50, 99}) {
      EXPECT_EQ(s.position(p * 100 + k + 1, at(0)), k * 100 + p + 1);
    }
  }
  EXPECT_EQ(s.size(), 10'000u);  // position() leaves the queue alone
}

TEST(FairSchedulerTest, QueuedForUserCountsAcrossProjects) {
  FairScheduler s;
  s.add(job(1, 1, 5));
  s.add(job(2, 2, 5));
  s.add(job(3, 3, 5));
  s.add(job(4, 3, 6));
  EXPECT_EQ(s.queued_for_user(5), 3u);
  EXPECT_EQ(s.queued_for_user(6), 1u);
  s.remove(2);
  s.pop_next(at(0));  // project 1's job
  EXPECT_EQ(s.queued_for_user(5), 1u);
  std::vector<int64_t> ids = s.job_ids();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<int64_t>{3, 4}));
}

TEST(FairSchedulerTest, CursorWrapsAround) {
  FairScheduler s;
  s.add(job(1, /*project=*/5, 1));
  s.add(job(2, /*project=*/10, 1));
  s.add(job(3, /*project=*/10, 1));
  EXPECT_EQ(s.pop_next(at(0))->id, 1);  // project 5
  s.add(job(4, /*project=*/7, 1));      // lands between the cursor and project 10
  EXPECT_EQ(s.pop_next(at(0))->id, 4);  // project 7
  EXPECT_EQ(s.pop_next(at(0))->id, 2);  // project 10
  s.add(job(5, /*project=*/3, 1));
  EXPECT_EQ(s.pop_next(at(0))->id, 5);  // wrapped to the smallest id
  EXPECT_EQ(s.pop_next(at(0))->id, 3);

  // Users wrap the same way, and a project remembers its last user while it is empty.
  s.add(job(6, 1, /*user=*/2));
  s.add(job(7, 1, /*user=*/1));
  EXPECT_EQ(s.pop_next(at(0))->id, 7);  // user 1
  EXPECT_EQ(s.pop_next(at(0))->id, 6);  // user 2
  s.add(job(8, 1, /*user=*/1));
  EXPECT_EQ(s.pop_next(at(0))->id, 8);  // wrapped past user 2 back to user 1; project 1 is empty
  s.add(job(9, 1, /*user=*/1));
  s.add(job(10, 1, /*user=*/2));
  EXPECT_EQ(s.pop_next(at(0))->id, 10);  // user 1 was served last, so user 2 is next
  EXPECT_EQ(s.pop_next(at(0))->id, 9);
}

// A direct, slow transcription of the three rules, to check the scheduler against.
class ReferenceScheduler {
 public:
  explicit ReferenceScheduler(milliseconds ageing) : ageing_(ageing) {}
  void add(const QueuedJob& j) { jobs_[j.id] = j; }
  bool remove(int64_t id) { return jobs_.erase(id) > 0; }
  size_t size() const { return jobs_.size(); }

  std::optional<QueuedJob> pop_next(SysTime now) {
    if (jobs_.empty()) return std::nullopt;
    std::set<int64_t> projects;
    for (const auto& [id, j] : jobs_) projects.insert(j.project_id);
    const int64_t project = next_after(projects, last_project_);
    std::set<int64_t> users;
    for (const auto& [id, j] : jobs_) {
      if (j.project_id == project) users.insert(j.user_id);
    }
    const int64_t user = next_after(users, last_user_[project]);
    const QueuedJob* best = nullptr;
    for (const auto& [id, j] : jobs_) {
      if (j.project_id != project || j.user_id != user) continue;
      if (!best || effective(j, now) > effective(*best, now)) best = &j;  // ids ascend
    }
    last_project_ = project;
    last_user_[project] = user;
    QueuedJob picked = *best;
    jobs_.erase(picked.id);
    return picked;
  }

 private:
  static int64_t next_after(const std::set<int64_t>& keys, std::optional<int64_t> last) {
    if (!last) return *keys.begin();
    auto it = keys.upper_bound(*last);
    return it == keys.end() ? *keys.begin() : *it;
  }
  int64_t effective(const QueuedJob& j, SysTime now) const {
    return j.priority + std::max<int64_t>(0, (now - j.enqueued_at).count()) / ageing_.count();
  }

  milliseconds ageing_;
  std::map<int64_t, QueuedJob> jobs_;
  std::optional<int64_t> last_project_;
  std::map<int64_t, std::optional<int64_t>> last_user_;
};

TEST(FairSchedulerTest, RandomizedMatchesReferenceModel) {
  std::mt19937_64 rng(20240611);
  auto pick = [&](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  FairScheduler s(FairScheduler::Options{.ageing = milliseconds(1000)});
  ReferenceScheduler model(milliseconds(1000));
  int64_t now = 0;
  int64_t next_id = 1;
  for (int step = 0; step < 4000; ++step) {
    now += pick(200);
    const int64_t op = pick(100);
    if (op < 45) {
      // New jobs, or a re-add of an existing id; enqueued in the past or slightly ahead.
      const int64_t id = op < 40 || next_id == 1 ? next_id++ : pick(next_id - 1) + 1;
      const QueuedJob j =
          job(id, pick(5) + 1, pick(4) + 1, static_cast<int>(pick(5)) - 2, now - pick(6000) + 500);
      s.add(j);
      model.add(j);
    } else if (op < 55) {
      const int64_t id = pick(next_id + 2);
      ASSERT_EQ(s.remove(id), model.remove(id)) << "step " << step;
    } else {
      const bool undo = op >= 90;
      const ReferenceScheduler before = model;
      auto got = s.pop_next(at(now));
      auto want = model.pop_next(at(now));
      ASSERT_EQ(got.has_value(), want.has_value()) << "step " << step;
      if (got) {
        ASSERT_EQ(got->id, want->id) << "step " << step;
        expect_same_job(*got, *want);
        if (undo) {
          s.undo_pop(*got);
          model = before;
        }
      }
    }
    ASSERT_EQ(s.size(), model.size());
    if (step % 97 == 0 && s.size() > 0) {
      // position() agrees with draining a copy of the model.
      const std::vector<int64_t> ids = s.job_ids();
      const int64_t target = ids[static_cast<size_t>(pick(static_cast<int64_t>(ids.size())))];
      ReferenceScheduler copy = model;
      int64_t place = 1;
      while (copy.pop_next(at(now))->id != target) ++place;
      ASSERT_EQ(s.position(target, at(now)), place) << "step " << step;
    }
  }
}

TEST(FairSchedulerTest, RandomizedInvariantsWithoutAgeing) {
  std::mt19937_64 rng(99);
  auto pick = [&](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  FairScheduler s(FairScheduler::Options{.ageing = kNoAgeing});
  std::map<int64_t, QueuedJob> live;  // added and neither removed nor popped yet
  std::set<int64_t> popped;
  std::map<int64_t, size_t> per_user;
  int64_t next_id = 1;

  auto check_pop = [&](const QueuedJob& got) {
    ASSERT_TRUE(live.contains(got.id));
    ASSERT_TRUE(popped.insert(got.id).second) << "popped twice: " << got.id;
    // FIFO within equal priority for the same user in the same project.
    for (const auto& [id, other] : live) {
      if (id >= got.id) break;
      EXPECT_FALSE(other.project_id == got.project_id && other.user_id == got.user_id &&
                   other.priority == got.priority)
          << "job " << got.id << " overtook job " << id;
    }
    --per_user[got.user_id];
    live.erase(got.id);
  };

  for (int step = 0; step < 20000; ++step) {
    const int64_t op = pick(10);
    if (op < 5) {
      const QueuedJob j =
          job(next_id++, pick(6) + 1, pick(5) + 1, static_cast<int>(pick(3)), pick(1'000'000));
      s.add(j);
      live[j.id] = j;
      ++per_user[j.user_id];
    } else if (op < 6) {
      const int64_t id = pick(next_id) + 1;
      auto it = live.find(id);
      EXPECT_EQ(s.remove(id), it != live.end());
      if (it != live.end()) {
        --per_user[it->second.user_id];
        live.erase(it);
      }
    } else if (auto got = s.pop_next(at(pick(1'000'000)))) {
      check_pop(*got);
    } else {
      EXPECT_TRUE(live.empty());
    }
    ASSERT_EQ(s.size(), live.size());
    if (step % 1000 == 0) {
      for (const auto& [user, count] : per_user) EXPECT_EQ(s.queued_for_user(user), count);
    }
  }
  while (auto got = s.pop_next(at(0))) check_pop(*got);
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(s.size(), 0u);
}

}  // namespace
}  // namespace atelier::jobs
