// Failed-login throttling per key.
//
// A key is whatever the caller wants to throttle on, typically one per username ("user:ada") and
// one per client address ("ip:203.0.113.7"); a login is refused while either is locked. The
// policy is a sliding window: once `max_failures` failures of one key fall within `window` of
// each other, the key is locked for `lockout`, then starts afresh. Success clears the key.
//
// Intended use, per login attempt:
//   if (auto wait = limiter.retry_after(key)) -> 429 with Retry-After: wait->count(), and do not
//                                               check the password at all
//   check the password; then record_failure(key) or record_success(key)
// A failure recorded while the key is locked is ignored: it neither counts nor extends the lock,
// so the lockout someone else's guesses can impose on an account is bounded.
//
// Memory is bounded by `max_keys`. Each tracked key costs roughly 250 bytes (more for keys over
// 15 bytes, and 8-16 bytes per remembered failure beyond the default 5), so the default 100,000
// keys stay around 25 MB. Entries are kept in order of the time they stop mattering (the end of
// their lockout, or the moment their newest failure leaves the window). Every call first drops the
// entries whose time has passed; when a new key arrives and the table is still full, the entry
// closest to expiring is evicted. An attacker spraying more than max_keys distinct keys within
// one window can therefore make the limiter forget the oldest ones; that is the price of the
// bound, and per-address keys keep such a spray itself throttled.
//
// Thread-safe: every call takes one internal mutex (and reads the clock under it), so calls are
// O(log n) and never block on anything else. Keys should be short and bounded by the caller
// (normalized usernames, IP addresses); they are stored verbatim.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace atelier::auth {

struct RateLimiterConfig {
  int max_failures = 5;  // failures within `window` that lock the key
  std::chrono::seconds window = std::chrono::minutes(15);
  std::chrono::seconds lockout = std::chrono::minutes(15);
  std::size_t max_keys = 100'000;  // keys tracked at once (see the memory note)
};

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // Values below 1 (max_failures, max_keys) or below 1 s (window, lockout) are raised to those
  // minimums, so any config gives a working limiter. `clock` defaults to steady_clock::now; tests
  // inject a fake one.
  explicit RateLimiter(RateLimiterConfig config = {}, Clock clock = {});

  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // nullopt when `key` may try now; otherwise the whole seconds until its lockout ends, rounded
  // up and at least 1 (suitable for a Retry-After header).
  std::optional<std::chrono::seconds> retry_after(const std::string& key);

  // Counts one failed attempt for `key`; the max_failures-th within the window locks it.
  void record_failure(const std::string& key);

  // Forgets everything about `key` (its failures, and a lockout if one is running).
  void record_success(const std::string& key);

  // Keys currently tracked, after dropping expired ones. For tests and metrics.
  std::size_t tracked_keys();

  const RateLimiterConfig& config() const { return config_; }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  struct Entry {
    std::vector<TimePoint> failures;        // within the window, oldest first; empty while locked
    std::optional<TimePoint> locked_until;  // set while locked
    TimePoint expires_at;                   // when this entry stops mattering; key in by_expiry_
  };

  // Lets entries_ be searched by the string_views held in by_expiry_ without copying the key.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const {
      return std::hash<std::string_view>{}(key);
    }
  };
  using EntryMap = std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>>;

  void drop_expired(TimePoint now);
  void erase(EntryMap::iterator it);
  void set_expiry(const std::string& key, Entry& entry, TimePoint expires_at);

  const RateLimiterConfig config_;
  const Clock clock_;

  std::mutex mu_;
  EntryMap entries_;
  // (expires_at, key) for every entry, soonest first. The string_views point at the keys inside
  // entries_, which unordered_map keeps at a stable address until the element is erased.
  std::set<std::pair<TimePoint, std::string_view>> by_expiry_;
};

}  // namespace atelier::auth
