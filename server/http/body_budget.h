// BodyBudget: one server-wide cap on the bytes of request bodies (and WebSocket messages) that
// are being received, so that many clients sending slowly cannot make the server buffer without
// bound. Pure: no sockets, no Beast.
//
// Rules:
//   * try_charge(n) reserves n bytes when they fit under the capacity, else refuses (nullopt);
//     Charge::grow_to() reserves more for the same body under the same rule. Nothing waits.
//   * A Charge gives its bytes back when it is reset, moved from or destroyed (RAII), so every
//     way a body ends (handed off, refused, connection gone) releases it. The budget must
//     outlive its charges.
//   * on_drained (optional, set before use): after the bytes in use have reached half the
//     capacity, it runs once when they fall back to an eighth, on the thread whose release made
//     them fall; then it is armed again. The server trims the allocator there (freed buffers go
//     back to the system instead of staying in the allocator's arenas).
// Costs: a compare-and-swap per charge or growth, an atomic subtraction per release.
// Threads: every BodyBudget method is thread-safe; one Charge is used by one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

namespace atelier::http {

class BodyBudget {
 public:
  class Charge {
   public:
    Charge() = default;
    Charge(Charge&& other) noexcept;
    Charge& operator=(Charge&& other) noexcept;
    Charge(const Charge&) = delete;
    Charge& operator=(const Charge&) = delete;
    ~Charge() { reset(); }

    uint64_t bytes() const { return bytes_; }
    // Grows the charge to `total` bytes if the extra fits; false (the charge unchanged) if not.
    // Never shrinks; true when `total` is not more than what is already charged.
    bool grow_to(uint64_t total);
    // Gives the bytes back; the charge stays bound to its budget and may grow again.
    void reset();

   private:
    friend class BodyBudget;
    Charge(BodyBudget* budget, uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    BodyBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  explicit BodyBudget(uint64_t capacity) : capacity_(capacity) {}
  BodyBudget(const BodyBudget&) = delete;
  BodyBudget& operator=(const BodyBudget&) = delete;

  // `bytes` reserved, or nullopt when they do not fit. Zero bytes always fit (a charge to grow).
  std::optional<Charge> try_charge(uint64_t bytes);

  uint64_t capacity() const { return capacity_; }
  uint64_t in_use() const { return used_.load(std::memory_order_relaxed); }
  // See the header comment. Not thread-safe: call before the budget is shared.
  void set_on_drained(std::function<void()> fn) { on_drained_ = std::move(fn); }

 private:
  bool reserve(uint64_t bytes);
  void release(uint64_t bytes);

  const uint64_t capacity_;
  std::atomic<uint64_t> used_{0};
  std::atomic<bool> was_high_{false};  // reached the high mark since on_drained last ran
  std::function<void()> on_drained_;
};

}  // namespace atelier::http
