#include "server/http/body_budget.h"

#include <utility>

namespace atelier::http {

BodyBudget::Charge::Charge(Charge&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

BodyBudget::Charge& BodyBudget::Charge::operator=(Charge&& other) noexcept {
  if (this != &other) {
    reset();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool BodyBudget::Charge::grow_to(uint64_t total) {
  if (total <= bytes_) return true;
  if (!budget_ || !budget_->reserve(total - bytes_)) return false;
  bytes_ = total;
  return true;
}

void BodyBudget::Charge::reset() {
  if (budget_ && bytes_ > 0) budget_->release(bytes_);
  bytes_ = 0;
}

std::optional<BodyBudget::Charge> BodyBudget::try_charge(uint64_t bytes) {
  if (!reserve(bytes)) return std::nullopt;
  return Charge(this, bytes);
}

bool BodyBudget::reserve(uint64_t bytes) {
  uint64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > capacity_ || used > capacity_ - bytes) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  if (used + bytes >= capacity_ / 2 && !was_high_.load(std::memory_order_relaxed)) {
    was_high_.store(true, std::memory_order_relaxed);
  }
  return true;
}

void BodyBudget::release(uint64_t bytes) {
  const uint64_t after = used_.fetch_sub(bytes, std::memory_order_relaxed) - bytes;
  // Only the thread that clears the flag runs the hook, so it runs once per high-low cycle.
  if (after <= capacity_ / 8 && was_high_.load(std::memory_order_relaxed) &&
      was_high_.exchange(false, std::memory_order_relaxed) && on_drained_) {
    on_drained_();
  }
}

}  // namespace atelier::http
