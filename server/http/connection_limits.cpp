#include "server/http/connection_limits.h"

#include <utility>

namespace atelier::http {

ConnectionLimits::Slot::Slot(Slot&& other) noexcept
    : limits_(std::exchange(other.limits_, nullptr)), ip_(std::exchange(other.ip_, std::nullopt)) {}

ConnectionLimits::Slot& ConnectionLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    limits_ = std::exchange(other.limits_, nullptr);
    ip_ = std::exchange(other.ip_, std::nullopt);
  }
  return *this;
}

void ConnectionLimits::Slot::release() {
  if (auto* limits = std::exchange(limits_, nullptr)) limits->release(ip_);
  ip_.reset();
}

std::optional<ConnectionLimits::Slot> ConnectionLimits::try_admit(
    const std::optional<IpBytes>& peer, Refusal* why) {
  const bool per_address = peer && !exempt_.contains(*peer);
  MutexLock lock(mu_);
  if (total_ >= max_total_) {
    if (why) *why = Refusal::kTotal;
    return std::nullopt;
  }
  if (per_address) {
    size_t& n = per_address_[*peer];
    if (n >= max_per_address_) {
      if (n == 0) per_address_.erase(*peer);
      if (why) *why = Refusal::kPerAddress;
      return std::nullopt;
    }
    ++n;
  }
  ++total_;
  return Slot(this, per_address ? peer : std::nullopt);
}

void ConnectionLimits::release(const std::optional<IpBytes>& ip) {
  MutexLock lock(mu_);
  --total_;
  if (!ip) return;
  auto it = per_address_.find(*ip);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

size_t ConnectionLimits::total() const {
  MutexLock lock(mu_);
  return total_;
}

size_t ConnectionLimits::from_address(const IpBytes& ip) const {
  MutexLock lock(mu_);
  auto it = per_address_.find(ip);
  return it == per_address_.end() ? 0 : it->second;
}

}  // namespace atelier::http
