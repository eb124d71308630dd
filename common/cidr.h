// IP address ranges (CIDR blocks) for trusted_proxies. Pure: no sockets, no Asio.
//
// Addresses are kept as 16 bytes; IPv4 ones as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that a v4
// block also matches the mapped form a dual-stack socket reports. A bare address is a /32
// (v4) or /128 (v6) block.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace atelier {

using IpBytes = std::array<uint8_t, 16>;

// The address in `text` ("203.0.113.7", "2001:db8::1", "::ffff:203.0.113.7"; no brackets or
// port), or nullopt when it is not one.
std::optional<IpBytes> parse_ip(std::string_view text);

struct Cidr {
  IpBytes base{};  // the network address (host bits zero)
  int prefix = 0;  // in IPv6 bits (a v4 /24 is 96 + 24)

  bool contains(const IpBytes& ip) const;
};

// "10.0.0.0/8", "2001:db8::/32", "192.0.2.1". Errors name the text (not a field).
Result<Cidr> parse_cidr(std::string_view text);

class CidrSet {
 public:
  CidrSet() = default;
  // Fails on the first entry that is not a CIDR or address.
  static Result<CidrSet> parse(const std::vector<std::string>& texts);

  bool empty() const { return blocks_.empty(); }
  bool contains(const IpBytes& ip) const;
  // False for text that is not an address.
  bool contains(std::string_view ip_text) const;

 private:
  std::vector<Cidr> blocks_;
};

}  // namespace atelier
