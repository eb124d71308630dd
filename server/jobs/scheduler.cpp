#include "server/jobs/scheduler.h"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace atelier::jobs {
namespace {

constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kMinI64 = std::numeric_limits<int64_t>::min();

// The jobs of one (project, user, priority) level, ordered by (enqueued_at, id). Within a level
// the oldest job has the largest ageing bonus, but jobs whose waits round down to the same
// bonus tie, and a tie goes to the lowest id, which need not be the oldest (a re-queued job
// keeps its old id). So besides "oldest" the level answers "lowest id among the jobs enqueued
// at or before t": a treap whose nodes point at the lowest-id node of their subtree. Nodes live in
// a vector and link by index, so copying a level (position() copies everything) is one memcpy.
class LevelQueue {
 public:
  bool empty() const { return root_ == kNil; }

  void insert(SysTime enqueued_at, int64_t id) {
    int32_t node;
    if (free_.empty()) {
      node = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
    } else {
      node = free_.back();
      free_.pop_back();
    }
    nodes_[node] = Node{.enqueued_at = enqueued_at,
                        .id = id,
                        .heap = mix(static_cast<uint64_t>(id)),
                        .min_node = node};
    int32_t less, rest;
    split(root_, {enqueued_at, id}, less, rest);
    root_ = merge(merge(less, node), rest);
  }

  void erase(SysTime enqueued_at, int64_t id) { root_ = erase(root_, {enqueued_at, id}); }

  // Precondition: !empty().
  SysTime oldest_enqueued_at() const {
    int32_t t = root_;
    while (nodes_[t].left != kNil) t = nodes_[t].left;
    return nodes_[t].enqueued_at;
  }

  struct Entry {
    int64_t id = 0;
    SysTime enqueued_at;
  };
  // The job with the lowest id among those with enqueued_at <= cutoff; nullopt when none.
  std::optional<Entry> min_id_enqueued_by(SysTime cutoff) const {
    int32_t best = kNil;
    for (int32_t t = root_; t != kNil;) {
      const Node& n = nodes_[t];
      if (n.enqueued_at <= cutoff) {
        // Everything to the left sorts earlier, so it was enqueued by the cutoff as well.
        best = lower_id(best, lower_id(t, subtree_min(n.left)));
        t = n.right;
      } else {
        t = n.left;
      }
    }
    if (best == kNil) return std::nullopt;
    return Entry{.id = nodes_[best].id, .enqueued_at = nodes_[best].enqueued_at};
  }

 private:
  using Key = std::pair<SysTime, int64_t>;  // tree order: (enqueued_at, id)
  static constexpr int32_t kNil = -1;
  struct Node {
    SysTime enqueued_at;
    int64_t id = 0;
    uint64_t heap = 0;        // treap priority: a hash of the id, so runs are reproducible
    int32_t min_node = kNil;  // the lowest-id node of this subtree
    int32_t left = kNil;
    int32_t right = kNil;
  };

  static uint64_t mix(uint64_t x) {  // splitmix64 finalizer
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  Key key(int32_t t) const { return {nodes_[t].enqueued_at, nodes_[t].id}; }
  int32_t subtree_min(int32_t t) const { return t == kNil ? kNil : nodes_[t].min_node; }
  int32_t lower_id(int32_t a, int32_t b) const {
    if (a == kNil) return b;
    if (b == kNil) return a;
    return nodes_[a].id < nodes_[b].id ? a : b;
  }
  void pull(int32_t t) {
    Node& n = nodes_[t];
    n.min_node = lower_id(t, lower_id(subtree_min(n.left), subtree_min(n.right)));
  }

  // Splits t into keys < k (less) and keys >= k (rest).
  void split(int32_t t, const Key& k, int32_t& less, int32_t& rest) {
    if (t == kNil) {
      less = rest = kNil;
      return;
    }
    if (key(t) < k) {
      split(nodes_[t].right, k, nodes_[t].right, rest);
      less = t;
    } else {
      split(nodes_[t].left, k, less, nodes_[t].left);
      rest = t;
    }
    pull(t);
  }

  // Every key in a sorts before every key in b.
  int32_t merge(int32_t a, int32_t b) {
    if (a == kNil) return b;
    if (b == kNil) return a;
    if (nodes_[a].heap > nodes_[b].heap) {
      nodes_[a].right = merge(nodes_[a].right, b);
      pull(a);
      return a;
    }
    nodes_[b].left = merge(a, nodes_[b].left);
    pull(b);
    return b;
  }

  int32_t erase(int32_t t, const Key& k) {
    if (t == kNil) return kNil;
    if (key(t) == k) {
      free_.push_back(t);
      return merge(nodes_[t].left, nodes_[t].right);
    }
    if (k < key(t)) {
      nodes_[t].left = erase(nodes_[t].left, k);
    } else {
      nodes_[t].right = erase(nodes_[t].right, k);
    }
    pull(t);
    return t;
  }

  std::vector<Node> nodes_;
  std::vector<int32_t> free_;
  int32_t root_ = kNil;
};

// A round-robin position: the next pick is the smallest key after `key` (at or after it when
// `inclusive`), wrapping around to the smallest key. The default picks the smallest key.
struct Cursor {
  int64_t key = kMinI64;
  bool inclusive = true;
};

template <typename Map>
typename Map::iterator next_in_turn(Map& map, const Cursor& cursor) {
  auto it = cursor.inclusive ? map.lower_bound(cursor.key) : map.upper_bound(cursor.key);
  return it == map.end() ? map.begin() : it;
}

struct UserQueue {
  std::map<int, LevelQueue> levels;  // by priority
};
struct ProjectQueue {
  std::map<int64_t, UserQueue> users;  // only users with queued jobs
};

// Everything pop_next() reads and writes, and nothing else, so position() copies only this.
struct Queues {
  std::map<int64_t, ProjectQueue> projects;  // only projects with queued jobs
  Cursor project_cursor;
  // Per project, kept while the project has nothing queued (see rule 2 in the header).
  std::unordered_map<int64_t, Cursor> user_cursors;

  void insert(const QueuedJob& job) {
    projects[job.project_id].users[job.user_id].levels[job.priority].insert(job.enqueued_at,
                                                                            job.id);
  }

  // Precondition: `job` is queued. Drops containers that become empty, so that round-robin
  // lookups only ever land on projects and users that have something to run.
  void erase(const QueuedJob& job) {
    auto project = projects.find(job.project_id);
    auto user = project->second.users.find(job.user_id);
    auto level = user->second.levels.find(job.priority);
    level->second.erase(job.enqueued_at, job.id);
    if (!level->second.empty()) return;
    user->second.levels.erase(level);
    if (!user->second.levels.empty()) return;
    project->second.users.erase(user);
    if (project->second.users.empty()) projects.erase(project);
  }

  std::optional<QueuedJob> pop(SysTime now, std::chrono::milliseconds ageing) {
    if (projects.empty()) return std::nullopt;
    auto project = next_in_turn(projects, project_cursor);
    Cursor& user_cursor = user_cursors[project->first];
    auto user = next_in_turn(project->second.users, user_cursor);

    // The wait in whole ms, saturated: times far apart must not overflow it.
    const int64_t now_ms = now.time_since_epoch().count();
    const int64_t ageing_ms = ageing.count();
    QueuedJob best{.id = kMaxI64};
    int64_t best_effective = kMinI64;
    for (const auto& [priority, level] : user->second.levels) {
      const int64_t oldest = level.oldest_enqueued_at().time_since_epoch().count();
      int64_t wait = 0;
      if (__builtin_sub_overflow(now_ms, oldest, &wait)) wait = now_ms > oldest ? kMaxI64 : 0;
      wait = std::max<int64_t>(wait, 0);
      const int64_t bonus = ageing_ms > 0 ? wait / ageing_ms : 0;
      // Jobs of this level that share the oldest job's bonus are those enqueued by `cutoff`;
      // with no bonus every job of the level shares it, including ones enqueued "after" now.
      // (bonus * ageing is at most the wait, so the subtraction cannot overflow.)
      const SysTime cutoff = bonus == 0 ? SysTime::max() : now - bonus * ageing;
      int64_t effective = 0;
      if (__builtin_add_overflow(static_cast<int64_t>(priority), bonus, &effective)) {
        effective = kMaxI64;
      }
      if (effective < best_effective) continue;
      // The oldest job itself is enqueued by the cutoff, so there is a candidate.
      const auto [id, enqueued_at] = *level.min_id_enqueued_by(cutoff);
      if (effective > best_effective || id < best.id) {
        best_effective = effective;
        best = QueuedJob{.id = id,
                         .project_id = project->first,
                         .user_id = user->first,
                         .priority = priority,
                         .enqueued_at = enqueued_at};
      }
    }

    project_cursor = {project->first, false};
    user_cursor = {user->first, false};
    erase(best);
    return best;
  }
};

// Cursors as they were just before one pop_next(), for undo_pop().
struct PopRecord {
  int64_t job_id = 0;
  Cursor project_cursor;
  Cursor user_cursor;
};
constexpr size_t kMaxPopRecords = 16;

}  // namespace

struct FairScheduler::State {
  Options options;
  Queues queues;
  std::unordered_map<int64_t, QueuedJob> jobs;      // every queued job, by id
  std::unordered_map<int64_t, size_t> user_counts;  // queued jobs per user, all projects
  std::vector<PopRecord> pops;                      // latest last, at most kMaxPopRecords

  void erase_job(std::unordered_map<int64_t, QueuedJob>::iterator it) {
    queues.erase(it->second);
    auto count = user_counts.find(it->second.user_id);
    if (--count->second == 0) user_counts.erase(count);
    jobs.erase(it);
  }
};

FairScheduler::FairScheduler() : FairScheduler(Options{}) {}
FairScheduler::FairScheduler(Options options) : state_(std::make_unique<State>()) {
  state_->options = options;
}
FairScheduler::~FairScheduler() = default;
FairScheduler::FairScheduler(const FairScheduler& other)
    : state_(std::make_unique<State>(*other.state_)) {}
FairScheduler& FairScheduler::operator=(const FairScheduler& other) {
  if (this != &other) state_ = std::make_unique<State>(*other.state_);
  return *this;
}
FairScheduler::FairScheduler(FairScheduler&&) noexcept = default;
FairScheduler& FairScheduler::operator=(FairScheduler&&) noexcept = default;

void FairScheduler::add(const QueuedJob& job) {
  State& s = *state_;
  if (auto it = s.jobs.find(job.id); it != s.jobs.end()) s.erase_job(it);
  s.queues.insert(job);
  s.jobs.emplace(job.id, job);
  ++s.user_counts[job.user_id];
}

bool FairScheduler::remove(int64_t job_id) {
  auto it = state_->jobs.find(job_id);
  if (it == state_->jobs.end()) return false;
  state_->erase_job(it);
  return true;
}

std::optional<QueuedJob> FairScheduler::pop_next(SysTime now) {
  State& s = *state_;
  if (s.jobs.empty()) return std::nullopt;
  PopRecord record{.project_cursor = s.queues.project_cursor};
  // pop() is about to pick from the project after the cursor; remember that project's cursor.
  const int64_t project_id = next_in_turn(s.queues.projects, s.queues.project_cursor)->first;
  if (auto it = s.queues.user_cursors.find(project_id); it != s.queues.user_cursors.end()) {
    record.user_cursor = it->second;
  }
  const QueuedJob popped = *s.queues.pop(now, s.options.ageing);

  auto it = s.jobs.find(popped.id);
  auto count = s.user_counts.find(popped.user_id);
  if (--count->second == 0) s.user_counts.erase(count);
  s.jobs.erase(it);

  record.job_id = popped.id;
  if (s.pops.size() == kMaxPopRecords) s.pops.erase(s.pops.begin());
  s.pops.push_back(record);
  return popped;
}

void FairScheduler::undo_pop(const QueuedJob& job) {
  State& s = *state_;
  add(job);
  auto record = std::find_if(s.pops.rbegin(), s.pops.rend(),
                             [&](const PopRecord& r) { return r.job_id == job.id; });
  if (record != s.pops.rend() && record == s.pops.rbegin()) {
    // The latest pop: rewinding the cursors undoes exactly what it did to them.
    s.queues.project_cursor = record->project_cursor;
    s.queues.user_cursors[job.project_id] = record->user_cursor;
    s.pops.pop_back();
    return;
  }
  // Later pops moved the cursors on and stand; rewinding would repeat their turns. Give this
  // job's project and user the next turn instead, which is the turn they lost.
  if (record != s.pops.rend()) s.pops.erase(std::next(record).base());
  s.queues.project_cursor = {job.project_id, true};
  s.queues.user_cursors[job.project_id] = {job.user_id, true};
}

std::optional<int64_t> FairScheduler::position(int64_t job_id, SysTime now) const {
  auto found = positions({job_id}, now);
  if (found.empty()) return std::nullopt;
  return found.begin()->second;
}

std::unordered_map<int64_t, int64_t> FairScheduler::positions(const std::vector<int64_t>& job_ids,
                                                              SysTime now) const {
  std::unordered_map<int64_t, int64_t> out;
  std::unordered_set<int64_t> wanted;
  for (int64_t id : job_ids) {
    if (contains(id)) wanted.insert(id);
  }
  if (wanted.empty()) return out;
  // Simulate only as far as the last wanted job.
  Queues sim = state_->queues;
  for (int64_t place = 1; out.size() < wanted.size(); ++place) {
    int64_t id = sim.pop(now, state_->options.ageing)->id;
    if (wanted.contains(id)) out.emplace(id, place);
  }
  return out;
}

bool FairScheduler::contains(int64_t job_id) const {
  return state_->jobs.contains(job_id);
}

size_t FairScheduler::size() const {
  return state_->jobs.size();
}

size_t FairScheduler::queued_for_user(int64_t user_id) const {
  auto it = state_->user_counts.find(user_id);
  return it == state_->user_counts.end() ? 0 : it->second;
}

std::vector<int64_t> FairScheduler::job_ids() const {
  std::vector<int64_t> ids;
  ids.reserve(state_->jobs.size());
  for (const auto& [id, job] : state_->jobs) ids.push_back(id);
  return ids;
}

}  // namespace atelier::jobs
