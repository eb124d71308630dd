#include "server/auth/rate_limiter.h"

#include <algorithm>

namespace atelier::auth {
namespace {

using std::chrono::seconds;

RateLimiterConfig with_minimums(RateLimiterConfig config) {
  config.max_failures = std::max(config.max_failures, 1);
  config.window = std::max(config.window, seconds(1));
  config.lockout = std::max(config.lockout, seconds(1));
  config.max_keys = std::max<std::size_t>(config.max_keys, 1);
  return config;
}

// What a refusal advertises while it waits on attempts in flight rather than on a lockout: they
// end within about a hash, and then the key is either locked (a later retry learns for how long)
// or free again.
constexpr seconds kInFlightWait{1};

}  // namespace

RateLimiter::Reservation::Reservation(Reservation&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), keys_(std::move(other.keys_)) {}

RateLimiter::Reservation& RateLimiter::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    keys_ = std::move(other.keys_);
  }
  return *this;
}

RateLimiter::Reservation::~Reservation() {
  release();
}

void RateLimiter::Reservation::commit() {
  if (RateLimiter* limiter = std::exchange(limiter_, nullptr)) {
    limiter->end_reservation(keys_, /*counts=*/true);
  }
}

void RateLimiter::Reservation::release() {
  if (RateLimiter* limiter = std::exchange(limiter_, nullptr)) {
    limiter->end_reservation(keys_, /*counts=*/false);
  }
}

RateLimiter::RateLimiter(RateLimiterConfig config, Clock clock)
    : config_(with_minimums(config)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

RateLimiter::Attempt RateLimiter::try_acquire(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

  MutexLock lock(mu_);
  const TimePoint now = clock_();
  drop_expired(now);

  // All or nothing: look at every key before taking any.
  seconds wait{0};
  for (const std::string& key : keys) {
    const auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    settle(it->second, now);
    if (auto w = wait_locked(it->second, now)) wait = std::max(wait, *w);
  }
  if (wait > seconds(0)) return Attempt{.retry_after = wait};

  // Entries with an attempt in flight are never evicted, so the keys taken first stay put while
  // the later ones are created.
  std::size_t taken = 0;
  for (; taken < keys.size(); ++taken) {
    const auto it = find_or_create_locked(keys[taken]);
    if (it == entries_.end()) break;
    ++it->second.in_flight;
    refresh_locked(it);
  }
  if (taken < keys.size()) {  // the table is full of attempts in flight: undo
    for (std::size_t i = 0; i < taken; ++i) {
      const auto it = entries_.find(keys[i]);
      --it->second.in_flight;
      refresh_locked(it);
    }
    return Attempt{.retry_after = kInFlightWait};
  }
  return Attempt{.reservation = Reservation(this, std::move(keys))};
}

std::optional<seconds> RateLimiter::retry_after(const std::string& key) {
  MutexLock lock(mu_);
  const TimePoint now = clock_();
  drop_expired(now);
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  settle(it->second, now);
  return wait_locked(it->second, now);
}

void RateLimiter::record_failure(const std::string& key) {
  MutexLock lock(mu_);
  const TimePoint now = clock_();
  drop_expired(now);
  const auto it = find_or_create_locked(key);
  // Only when max_keys entries all have attempts in flight; those attempts are throttled anyway.
  if (it == entries_.end()) return;
  count_failure_locked(it, now);
  refresh_locked(it);
}

void RateLimiter::record_success(const std::string& key) {
  MutexLock lock(mu_);
  drop_expired(clock_());
  const auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.failures = {};
  it->second.locked_until.reset();
  refresh_locked(it);  // erases it unless attempts are in flight
}

std::size_t RateLimiter::tracked_keys() {
  MutexLock lock(mu_);
  drop_expired(clock_());
  return entries_.size();
}

std::optional<seconds> RateLimiter::wait_locked(const Entry& entry, TimePoint now) const {
  if (entry.locked_until) {
    // settle() guarantees the lock ends after `now`; round up so that a client waiting the
    // advertised time never arrives early, and never advertise 0.
    const auto wait = std::chrono::ceil<seconds>(*entry.locked_until - now);
    return std::max(wait, seconds(1));
  }
  const std::size_t taken = entry.failures.size() + static_cast<std::size_t>(entry.in_flight);
  if (taken >= static_cast<std::size_t>(config_.max_failures)) return kInFlightWait;
  return std::nullopt;
}

void RateLimiter::settle(Entry& entry, TimePoint now) const {
  if (entry.locked_until && *entry.locked_until <= now) entry.locked_until.reset();
  // A failure counts while it is less than `window` old; an entry survives drop_expired() while
  // its newest failure does (or while attempts are in flight), but older ones may have left.
  const TimePoint cutoff = now - config_.window;
  const auto still_counting =
      std::find_if(entry.failures.begin(), entry.failures.end(),
                   [cutoff](TimePoint failure) { return failure > cutoff; });
  entry.failures.erase(entry.failures.begin(), still_counting);
}

RateLimiter::EntryMap::iterator RateLimiter::find_or_create_locked(const std::string& key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) return it;
  if (entries_.size() >= config_.max_keys) {
    const auto victim = by_expiry_.begin();  // non-empty: every entry is filed
    if (victim->first == TimePoint::max()) return entries_.end();
    erase(entries_.find(victim->second));
  }
  // Not filed in by_expiry_ until the caller's refresh_locked().
  return entries_.emplace(key, Entry{}).first;
}

void RateLimiter::count_failure_locked(EntryMap::iterator it, TimePoint now) {
  Entry& entry = it->second;
  settle(entry, now);
  if (entry.locked_until) return;  // locked: see the header on why it is ignored
  entry.failures.push_back(now);
  if (entry.failures.size() >= static_cast<std::size_t>(config_.max_failures)) {
    entry.failures = {};  // release the memory too: a locked entry needs only its deadline
    entry.locked_until = now + config_.lockout;
  }
}

void RateLimiter::end_reservation(const std::vector<std::string>& keys, bool counts) {
  MutexLock lock(mu_);
  const TimePoint now = clock_();
  drop_expired(now);
  for (const std::string& key : keys) {
    // Present: an entry with an attempt in flight is neither dropped, evicted nor erased.
    const auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    --it->second.in_flight;
    if (counts) {
      count_failure_locked(it, now);
    } else {
      settle(it->second, now);
    }
    refresh_locked(it);
  }
}

void RateLimiter::refresh_locked(EntryMap::iterator it) {
  Entry& entry = it->second;
  by_expiry_.erase({entry.expires_at, it->first});
  if (entry.in_flight > 0) {
    entry.expires_at = TimePoint::max();
  } else if (entry.locked_until) {
    entry.expires_at = *entry.locked_until;
  } else if (!entry.failures.empty()) {
    entry.expires_at = entry.failures.back() + config_.window;
  } else {
    entries_.erase(it);  // nothing left to remember
    return;
  }
  by_expiry_.emplace(entry.expires_at, it->first);
}

void RateLimiter::drop_expired(TimePoint now) {
  // An entry whose expiry has come is exactly an entry that no longer affects any answer: its
  // lockout is over, or its newest failure left the window (and no attempt is in flight).
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    erase(entries_.find(by_expiry_.begin()->second));
  }
}

void RateLimiter::erase(EntryMap::iterator it) {
  // The set's string_view points into the map's key: remove it from the set first.
  by_expiry_.erase({it->second.expires_at, it->first});
  entries_.erase(it);
}

}  // namespace atelier::auth
