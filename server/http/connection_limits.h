// ConnectionLimits: caps on open connections (HTTP and WebSocket), in total and per peer
// address, so one client cannot hold every socket and every buffer. Pure: no sockets, no Beast.
//
// Rules:
//   * try_admit() gives a Slot when the connection fits under both caps, else nullopt (and why).
//     A Slot frees its place when destroyed or moved from (RAII); a connection that changes
//     hands (an HTTP session becoming a WebSocket) moves its Slot along.
//   * Peers in `exempt` (trusted reverse proxies, which carry many clients) and peers whose
//     address is unknown count towards the total only.
//   * The limits object must outlive its slots.
// Costs: one short lock and a map lookup per admission and per release.
// Threads: thread-safe; one Slot is used by one thread at a time.
#pragma once

#include <cstddef>
#include <map>
#include <optional>

#include "common/cidr.h"
#include "common/mutex.h"

namespace atelier::http {

class ConnectionLimits {
 public:
  enum class Refusal { kTotal, kPerAddress };

  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }

   private:
    friend class ConnectionLimits;
    Slot(ConnectionLimits* limits, std::optional<IpBytes> counted_ip)
        : limits_(limits), ip_(counted_ip) {}
    void release();
    ConnectionLimits* limits_ = nullptr;
    std::optional<IpBytes> ip_;  // set when counted per address
  };

  ConnectionLimits(size_t max_total, size_t max_per_address, CidrSet exempt)
      : max_total_(max_total), max_per_address_(max_per_address), exempt_(std::move(exempt)) {}
  ConnectionLimits(const ConnectionLimits&) = delete;
  ConnectionLimits& operator=(const ConnectionLimits&) = delete;

  // A place for a connection from `peer` (nullopt when its address is unknown), or nullopt with
  // `why` set when a cap is reached.
  std::optional<Slot> try_admit(const std::optional<IpBytes>& peer, Refusal* why = nullptr);

  size_t total() const;
  size_t from_address(const IpBytes& ip) const;

 private:
  void release(const std::optional<IpBytes>& ip);

  const size_t max_total_;
  const size_t max_per_address_;
  const CidrSet exempt_;
  mutable Mutex mu_;
  size_t total_ ATELIER_GUARDED_BY(mu_) = 0;
  std::map<IpBytes, size_t> per_address_ ATELIER_GUARDED_BY(mu_);  // entries above zero only
};

}  // namespace atelier::http
