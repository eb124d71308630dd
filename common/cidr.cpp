#include "common/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace atelier {

std::optional<IpBytes> parse_ip(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  IpBytes out{};
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

bool Cidr::contains(const IpBytes& ip) const {
  int bits = prefix;
  for (size_t i = 0; i < ip.size() && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((ip[i] & mask) != base[i]) return false;
  }
  return true;
}

Result<Cidr> parse_cidr(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  auto ip = parse_ip(addr_text);
  if (!ip) return Status::invalid_argument("'" + std::string(text) + "' is not an IP address");
  const bool v4 = addr_text.find(':') == std::string_view::npos;
  const int max_bits = v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), bits);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || bits < 0 ||
        bits > max_bits) {
      return Status::invalid_argument("'" + std::string(text) + "' has an invalid prefix length");
    }
  }
  Cidr c;
  c.prefix = v4 ? 96 + bits : bits;
  int left = c.prefix;
  for (size_t i = 0; i < c.base.size(); ++i, left -= 8) {
    const uint8_t mask = left >= 8   ? 0xff
                         : left <= 0 ? 0
                                     : static_cast<uint8_t>(0xff << (8 - left));
    c.base[i] = (*ip)[i] & mask;
  }
  return c;
}

Result<CidrSet> CidrSet::parse(const std::vector<std::string>& texts) {
  CidrSet set;
  for (const auto& t : texts) {
    ATELIER_ASSIGN_OR_RETURN(Cidr c, parse_cidr(t));
    set.blocks_.push_back(c);
  }
  return set;
}

bool CidrSet::contains(const IpBytes& ip) const {
  for (const auto& b : blocks_) {
    if (b.contains(ip)) return true;
  }
  return false;
}

bool CidrSet::contains(std::string_view ip_text) const {
  auto ip = parse_ip(ip_text);
  return ip && contains(*ip);
}

}  // namespace atelier
