// Who the client is behind reverse proxies: X-Forwarded-For and X-Forwarded-Proto, believed only
// from trusted proxies (ServerConfig::trusted_proxies). Pure: no sockets.
//
// Rules:
//   * The TCP peer is not a trusted proxy (or none is configured): the peer is the client, and
//     both headers are ignored, whatever they say.
//   * The peer is a trusted proxy: X-Forwarded-For (all fields, in order, as one comma list) is
//     walked from the right; each trusted address is another proxy of ours, and the first
//     address that is not trusted is the client. Entries to its left were written by the client
//     or by proxies we do not know, so they are never read. When every entry is trusted, the
//     left-most is the client. An entry that is not an address ("unknown", "_hidden") ends the
//     walk: the client is then the trusted hop that wrote it, never the text.
//   * Entries may be "203.0.113.7", "203.0.113.7:4711", "2001:db8::1" or "[2001:db8::1]:4711";
//     forwarded addresses are re-spelled canonically (RFC 5952, IPv4-mapped as dotted quad), so
//     one client is always one rate-limit key.
//   * secure: the peer is a trusted proxy and the last value of X-Forwarded-Proto (the one the
//     nearest proxy set) is "https" (any case).
// Costs: nothing beyond a copy of the peer address when no proxy is trusted; otherwise one pass
// over the forwarding headers, no allocation per entry.
#pragma once

#include <string>
#include <string_view>

#include "common/cidr.h"
#include "server/http/message.h"

namespace atelier::http {

struct ClientAddress {
  std::string address;  // "ip:port" as in Request::remote_address (port 0 when unknown)
  bool secure = false;  // https, said by a trusted proxy
};

// The client of a request from `peer_address` ("ip:port", IPv6 unbracketed) with `headers`.
ClientAddress resolve_client(const CidrSet& trusted, std::string_view peer_address,
                             const Headers& headers);

// Sets request.remote_address and request.secure from request.peer_address and its headers.
void apply_forwarding(Request& request, const CidrSet& trusted);

// Exposed for tests: `ip` written as RFC 5952 text (IPv4-mapped as plain dotted quad).
std::string format_ip(const IpBytes& ip);

}  // namespace atelier::http
