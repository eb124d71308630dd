#include "server/auth/rate_limiter.h"

#include <algorithm>

namespace atelier::auth {
namespace {

RateLimiterConfig with_minimums(RateLimiterConfig config) {
  using std::chrono::seconds;
  config.max_failures = std::max(config.max_failures, 1);
  config.window = std::max(config.window, seconds(1));
  config.lockout = std::max(config.lockout, seconds(1));
  config.max_keys = std::max<std::size_t>(config.max_keys, 1);
  return config;
}

}  // namespace

RateLimiter::RateLimiter(RateLimiterConfig config, Clock clock)
    : config_(with_minimums(config)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

std::optional<std::chrono::seconds> RateLimiter::retry_after(const std::string& key) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_();
  drop_expired(now);
  const auto it = entries_.find(key);
  if (it == entries_.end() || !it->second.locked_until) return std::nullopt;
  // drop_expired() guarantees the lock ends after `now`; round up so that a client waiting the
  // advertised time never arrives early, and never advertise 0.
  const auto wait = std::chrono::ceil<std::chrono::seconds>(*it->second.locked_until - now);
  return std::max(wait, std::chrono::seconds(1));
}

void RateLimiter::record_failure(const std::string& key) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_();
  drop_expired(now);

  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= config_.max_keys) {
      erase(entries_.find(by_expiry_.begin()->second));
    }
    // The new entry's expires_at is the epoch, which is not in by_expiry_ yet; set_expiry below
    // inserts it.
    it = entries_.emplace(key, Entry{}).first;
  }
  Entry& entry = it->second;
  if (entry.locked_until) return;  // locked (and not expired): see the header on why it is ignored

  // A failure counts while it is less than `window` old; this entry survived drop_expired()
  // because its newest failure does, but older ones may have left the window.
  const TimePoint cutoff = now - config_.window;
  const auto still_counting =
      std::find_if(entry.failures.begin(), entry.failures.end(),
                   [cutoff](TimePoint failure) { return failure > cutoff; });
  entry.failures.erase(entry.failures.begin(), still_counting);
  entry.failures.push_back(now);

  if (entry.failures.size() >= static_cast<std::size_t>(config_.max_failures)) {
    entry.failures = {};  // release the memory too: a locked entry needs only its deadline
    entry.locked_until = now + config_.lockout;
    set_expiry(it->first, entry, *entry.locked_until);
  } else {
    set_expiry(it->first, entry, now + config_.window);
  }
}

void RateLimiter::record_success(const std::string& key) {
  std::lock_guard lock(mu_);
  drop_expired(clock_());
  const auto it = entries_.find(key);
  if (it != entries_.end()) erase(it);
}

std::size_t RateLimiter::tracked_keys() {
  std::lock_guard lock(mu_);
  drop_expired(clock_());
  return entries_.size();
}

void RateLimiter::drop_expired(TimePoint now) {
  // An entry whose expiry has come is exactly an entry that no longer affects any answer: its
  // lockout is over, or its newest failure left the window.
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    erase(entries_.find(by_expiry_.begin()->second));
  }
}

void RateLimiter::erase(EntryMap::iterator it) {
  // The set's string_view points into the map's key: remove it from the set first.
  by_expiry_.erase({it->second.expires_at, it->first});
  entries_.erase(it);
}

void RateLimiter::set_expiry(const std::string& key, Entry& entry, TimePoint expires_at) {
  by_expiry_.erase({entry.expires_at, key});
  entry.expires_at = expires_at;
  by_expiry_.emplace(expires_at, key);
}

}  // namespace atelier::auth
