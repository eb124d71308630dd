// Attempt throttling per key: failed logins, registrations.
//
// A key is whatever the caller wants to throttle on, typically one per username ("user:ada") and
// one per client address ("ip:203.0.113.7"); an attempt is refused while any of its keys is
// locked or full. The policy is a sliding window: once `max_failures` counted attempts of one key
// fall within `window` of each other, the key is locked for `lockout`, then starts afresh.
//
// Attempts are reserved before the expensive work they guard (an Argon2 hash) and count while
// they are in flight, so concurrency cannot overshoot the limit: a key admits an attempt only
// while its counted attempts in the window plus those in flight stay below max_failures. Per
// attempt:
//   auto attempt = limiter.try_acquire({user_key, ip_key});
//   if (!attempt.admitted()) -> 429 with Retry-After: attempt.retry_after.count(); do no work
//   do the work; then attempt.reservation.commit()   (it counts: a wrong password)
//                 or attempt.reservation.release()  (it does not: success, or no work was done)
// A reservation that is destroyed undecided is released. A refusal because attempts are in flight
// (not locked yet) advertises 1 s: their outcome decides whether the key locks.
// The older non-reserving calls remain: retry_after() asks, record_failure() counts an attempt at
// once, record_success() forgets a key's failures and lockout (not its attempts in flight).
// A failure counted while the key is locked is ignored: it neither counts nor extends the lock,
// so the lockout someone else's guesses can impose on an account is bounded.
//
// Memory is bounded by `max_keys`. Each tracked key costs roughly 250 bytes (more for keys over
// 15 bytes, and 8-16 bytes per remembered failure beyond the default 5), so the default 100,000
// keys stay around 25 MB. Entries are kept in order of the time they stop mattering (the end of
// their lockout, or the moment their newest failure leaves the window; never while an attempt is
// in flight). Every call first drops the entries whose time has passed; when a new key arrives and
// the table is still full, the entry closest to expiring is evicted, and when every entry has an
// attempt in flight the new attempt is refused (1 s) instead. An attacker spraying more than
// max_keys distinct keys within one window can therefore make the limiter forget the oldest ones;
// that is the price of the bound, and per-address keys keep such a spray itself throttled.
//
// Thread-safe: every call (the Reservation's too) takes one internal mutex and reads the clock
// under it, so calls are O(k log n) for k keys and never block on anything else. Keys should be
// short and bounded by the caller (normalized usernames, IP addresses); they are stored verbatim.
// A Reservation may end on another thread than the one that acquired it; the limiter must outlive
// its reservations.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace atelier::auth {

struct RateLimiterConfig {
  int max_failures = 5;  // counted attempts within `window` that lock the key
  std::chrono::seconds window = std::chrono::minutes(15);
  std::chrono::seconds lockout = std::chrono::minutes(15);
  std::size_t max_keys = 100'000;  // keys tracked at once (see the memory note)
};

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // One admitted attempt's hold on each of its keys. Move-only; ends once, by commit(), release()
  // or destruction (= release()). An empty (default or moved-from) one does nothing.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation();

    // The attempt counts (a wrong password, a registration that was hashed): each key records
    // one failure, and the one that reaches max_failures locks.
    void commit();
    // The attempt does not count: its keys are freed and nothing is recorded.
    void release();
    bool held() const { return limiter_ != nullptr; }

   private:
    friend class RateLimiter;
    Reservation(RateLimiter* limiter, std::vector<std::string> keys)
        : limiter_(limiter), keys_(std::move(keys)) {}

    RateLimiter* limiter_ = nullptr;
    std::vector<std::string> keys_;
  };

  struct Attempt {
    Reservation reservation;  // held when admitted
    // When refused: whole seconds until a retry can succeed, rounded up and at least 1 (the
    // longest over the refusing keys; suitable for a Retry-After header). Zero when admitted.
    std::chrono::seconds retry_after{0};
    bool admitted() const { return reservation.held(); }
  };

  // Values below 1 (max_failures, max_keys) or below 1 s (window, lockout) are raised to those
  // minimums, so any config gives a working limiter. `clock` defaults to steady_clock::now; tests
  // inject a fake one.
  explicit RateLimiter(RateLimiterConfig config = {}, Clock clock = {});

  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Admits one attempt on all of `keys` at once, or on none: refused when any key is locked or
  // already has max_failures attempts counted or in flight. Duplicate keys count once.
  Attempt try_acquire(std::vector<std::string> keys);

  // nullopt when try_acquire({key}) would admit an attempt now; otherwise its retry_after.
  std::optional<std::chrono::seconds> retry_after(const std::string& key);

  // Counts one failed attempt for `key` that holds no reservation.
  void record_failure(const std::string& key);

  // Forgets the failures of `key` and a lockout if one is running. Attempts still in flight keep
  // their hold and count if they commit.
  void record_success(const std::string& key);

  // Keys currently tracked, after dropping expired ones. For tests and metrics.
  std::size_t tracked_keys();

  const RateLimiterConfig& config() const { return config_; }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  struct Entry {
    std::vector<TimePoint> failures;        // within the window, oldest first; empty while locked
    std::optional<TimePoint> locked_until;  // set while locked
    int in_flight = 0;                      // reservations holding this key
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

  // How long an attempt on `entry` must wait, or nullopt when it may go now (after settle()).
  std::optional<std::chrono::seconds> wait_locked(const Entry& entry, TimePoint now) const
      ATELIER_REQUIRES(mu_);
  // Drops a lockout that has ended and failures that have left the window.
  void settle(Entry& entry, TimePoint now) const ATELIER_REQUIRES(mu_);
  // The entry for `key`, created (evicting if full) when absent; end() when the table is full of
  // entries with attempts in flight.
  EntryMap::iterator find_or_create_locked(const std::string& key) ATELIER_REQUIRES(mu_);
  void count_failure_locked(EntryMap::iterator it, TimePoint now) ATELIER_REQUIRES(mu_);
  void end_reservation(const std::vector<std::string>& keys, bool counts) ATELIER_EXCLUDES(mu_);
  // Re-files the entry under the time it stops mattering, or erases it if nothing is left.
  void refresh_locked(EntryMap::iterator it) ATELIER_REQUIRES(mu_);
  void drop_expired(TimePoint now) ATELIER_REQUIRES(mu_);
  void erase(EntryMap::iterator it) ATELIER_REQUIRES(mu_);

  const RateLimiterConfig config_;
  const Clock clock_;

  Mutex mu_;
  EntryMap entries_ ATELIER_GUARDED_BY(mu_);
  // (expires_at, key) for every entry, soonest first. The string_views point at the keys inside
  // entries_, which unordered_map keeps at a stable address until the element is erased.
  std::set<std::pair<TimePoint, std::string_view>> by_expiry_ ATELIER_GUARDED_BY(mu_);
};

}  // namespace atelier::auth
