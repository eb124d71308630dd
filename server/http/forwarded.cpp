#include "server/http/forwarded.h"

#include <cstdint>
#include <cstdio>
#include <optional>

namespace atelier::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Hop {
  IpBytes ip{};
  uint16_t port = 0;
};

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

// One X-Forwarded-For entry: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]" or "[v6]:port".
std::optional<Hop> parse_hop(std::string_view entry) {
  std::string_view host = entry;
  std::optional<uint16_t> port = 0;
  if (entry.starts_with('[')) {
    size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = entry.substr(1, close - 1);
    std::string_view rest = entry.substr(close + 1);
    if (!rest.empty()) port = rest.front() == ':' ? parse_port(rest.substr(1)) : std::nullopt;
  } else if (size_t colon = entry.find(':'); colon != std::string_view::npos &&
                                             entry.find(':', colon + 1) == std::string_view::npos) {
    // Exactly one ':' is IPv4 with a port; two or more is a bare IPv6 address.
    host = entry.substr(0, colon);
    port = parse_port(entry.substr(colon + 1));
  }
  if (!port) return std::nullopt;
  auto ip = parse_ip(host);
  if (!ip) return std::nullopt;
  return Hop{*ip, *port};
}

std::string hop_address(const Hop& hop) {
  return format_ip(hop.ip) + ":" + std::to_string(hop.port);
}

// The last non-empty element of the last `name` field: what the nearest proxy wrote.
std::string_view last_value(const Headers& headers, std::string_view name) {
  const auto& fields = headers.fields();
  for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
    if (!iequals(it->name, name)) continue;
    std::string_view v = it->value;
    while (true) {
      size_t comma = v.rfind(',');
      std::string_view element = trim(comma == std::string_view::npos ? v : v.substr(comma + 1));
      if (!element.empty()) return element;
      if (comma == std::string_view::npos) break;
      v = v.substr(0, comma);
    }
  }
  return {};
}

}  // namespace

std::string format_ip(const IpBytes& ip) {
  char buf[64];
  bool mapped = true;
  for (int i = 0; i < 10; ++i) mapped = mapped && ip[i] == 0;
  if (mapped && ip[10] == 0xff && ip[11] == 0xff) {
    std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", ip[12], ip[13], ip[14], ip[15]);
    return buf;
  }
  uint16_t groups[8];
  for (int i = 0; i < 8; ++i) groups[i] = static_cast<uint16_t>(ip[2 * i] << 8 | ip[2 * i + 1]);
  // RFC 5952: the longest run of two or more zero groups (the first of equals) becomes "::".
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_len) best = i, best_len = j - i;
    i = j;
  }
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof(buf), "%x", groups[i]);
    out += buf;
  }
  return out;
}

ClientAddress resolve_client(const CidrSet& trusted, std::string_view peer_address,
                             const Headers& headers) {
  ClientAddress client{std::string(peer_address), false};
  if (trusted.empty()) return client;
  auto peer_ip = parse_ip(address_ip(peer_address));
  if (!peer_ip || !trusted.contains(*peer_ip)) return client;

  client.secure = iequals(last_value(headers, "X-Forwarded-Proto"), "https");
  const auto& fields = headers.fields();
  for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
    if (!iequals(it->name, "X-Forwarded-For")) continue;
    std::string_view v = it->value;
    while (true) {
      size_t comma = v.rfind(',');
      std::string_view entry = trim(comma == std::string_view::npos ? v : v.substr(comma + 1));
      if (!entry.empty()) {  // empty list elements are no entries (RFC 9110 5.6.1)
        auto hop = parse_hop(entry);
        if (!hop) return client;  // garbage: the hop that wrote it is as far as we can see
        client.address = hop_address(*hop);
        if (!trusted.contains(hop->ip)) return client;
      }
      if (comma == std::string_view::npos) break;
      v = v.substr(0, comma);
    }
  }
  return client;
}

void apply_forwarding(Request& request, const CidrSet& trusted) {
  ClientAddress client = resolve_client(trusted, request.peer_address, request.headers);
  request.remote_address = std::move(client.address);
  request.secure = client.secure;
}

}  // namespace atelier::http
