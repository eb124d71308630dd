#include "server/http/forwarded.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <utility>

namespace atelier::http {
namespace {

CidrSet cidrs(const std::vector<std::string>& texts) {
  auto set = CidrSet::parse(texts);
  EXPECT_TRUE(set.is_ok()) << set.status().to_string();
  return set.is_ok() ? *set : CidrSet();
}

Headers headers(std::initializer_list<std::pair<std::string, std::string>> fields) {
  Headers h;
  for (const auto& [name, value] : fields) h.add(name, value);
  return h;
}

// The proxies of a typical set-up: the load balancer's subnet and a local sidecar.
const CidrSet& proxies() {
  static const CidrSet set = cidrs({"10.0.0.0/8", "127.0.0.1", "2001:db8:1::/48"});
  return set;
}

TEST(ForwardedTest, WithoutTrustedProxiesThePeerIsTheClient) {
  ClientAddress c =
      resolve_client(CidrSet(), "10.1.2.3:4000",
                     headers({{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}}));
  EXPECT_EQ(c.address, "10.1.2.3:4000");
  EXPECT_FALSE(c.secure);
}

TEST(ForwardedTest, AnUntrustedPeerIsTheClientWhateverItSays) {
  ClientAddress c = resolve_client(
      proxies(), "198.51.100.9:5555",
      headers({{"X-Forwarded-For", "203.0.113.7, 10.0.0.1"}, {"X-Forwarded-Proto", "https"}}));
  EXPECT_EQ(c.address, "198.51.100.9:5555");
  EXPECT_FALSE(c.secure);
}

TEST(ForwardedTest, ATrustedPeerForwardsTheClient) {
  ClientAddress c =
      resolve_client(proxies(), "10.0.0.5:40000", headers({{"X-Forwarded-For", "203.0.113.7"}}));
  EXPECT_EQ(c.address, "203.0.113.7:0");
  EXPECT_FALSE(c.secure);
  // Without the header the proxy itself is all we know.
  EXPECT_EQ(resolve_client(proxies(), "10.0.0.5:40000", Headers()).address, "10.0.0.5:40000");
}

TEST(ForwardedTest, SpoofedLeftMostEntriesAreNeverRead) {
  // The client sent "X-Forwarded-For: 1.1.1.1, 10.9.9.9"; our proxy appended what it saw.
  ClientAddress c =
      resolve_client(proxies(), "10.0.0.5:40000",
                     headers({{"X-Forwarded-For", "1.1.1.1, 10.9.9.9, 203.0.113.7"}}));
  EXPECT_EQ(c.address, "203.0.113.7:0");
}

TEST(ForwardedTest, TrustedHopsAreWalkedFromTheRight) {
  // client -> edge proxy (10.0.0.2) -> sidecar (127.0.0.1) -> us; the edge proxy forwarded the
  // client, the sidecar forwarded the edge proxy.
  ClientAddress c =
      resolve_client(proxies(), "127.0.0.1:1234",
                     headers({{"X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.2"}}));
  EXPECT_EQ(c.address, "203.0.113.7:0");
  // Several fields are one list, in order.
  c = resolve_client(proxies(), "127.0.0.1:1234",
                     headers({{"X-Forwarded-For", "6.6.6.6"},
                              {"Accept", "*/*"},
                              {"x-forwarded-for", "203.0.113.7 ,, 10.0.0.2"}}));
  EXPECT_EQ(c.address, "203.0.113.7:0");
}

TEST(ForwardedTest, WhenEveryEntryIsTrustedTheLeftMostIsTheClient) {
  ClientAddress c =
      resolve_client(proxies(), "10.0.0.5:1", headers({{"X-Forwarded-For", "10.7.7.7, 10.0.0.2"}}));
  EXPECT_EQ(c.address, "10.7.7.7:0");
}

TEST(ForwardedTest, GarbageEndsTheWalkAtTheHopThatWroteIt) {
  EXPECT_EQ(resolve_client(proxies(), "10.0.0.5:1",
                           headers({{"X-Forwarded-For", "203.0.113.7, unknown"}}))
                .address,
            "10.0.0.5:1");
  EXPECT_EQ(
      resolve_client(proxies(), "10.0.0.5:1", headers({{"X-Forwarded-For", "evil, 10.0.0.2"}}))
          .address,
      "10.0.0.2:0");
  for (const char* bad : {"1.2.3.4:99999", "1.2.3.4:", "[2001:db8::1", "[2001:db8::1]x",
                          "1.2.3.4.5", "_hidden", "1.2.3.4 5.6.7.8"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(resolve_client(proxies(), "10.0.0.5:1", headers({{"X-Forwarded-For", bad}})).address,
              "10.0.0.5:1");
  }
}

TEST(ForwardedTest, PortsAndIpv6) {
  EXPECT_EQ(
      resolve_client(proxies(), "10.0.0.5:1", headers({{"X-Forwarded-For", "203.0.113.7:4711"}}))
          .address,
      "203.0.113.7:4711");
  // Re-spelled canonically: one client is one rate-limit key however its proxy wrote it.
  EXPECT_EQ(resolve_client(proxies(), "10.0.0.5:1",
                           headers({{"X-Forwarded-For", "2001:DB8:0:0:0:0:0:0042"}}))
                .address,
            "2001:db8::42:0");
  EXPECT_EQ(
      resolve_client(proxies(), "10.0.0.5:1", headers({{"X-Forwarded-For", "[2001:db8::42]:8443"}}))
          .address,
      "2001:db8::42:8443");
  EXPECT_EQ(
      resolve_client(proxies(), "10.0.0.5:1", headers({{"X-Forwarded-For", "::ffff:203.0.113.7"}}))
          .address,
      "203.0.113.7:0");
  // An IPv6 peer inside a trusted v6 block; a trusted v6 hop is skipped like a v4 one.
  EXPECT_EQ(resolve_client(proxies(), "2001:db8:1::9:443",
                           headers({{"X-Forwarded-For", "2001:db8:2::1, 2001:db8:1::77"}}))
                .address,
            "2001:db8:2::1:0");
  // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6; the v4 block still matches.
  EXPECT_EQ(
      resolve_client(proxies(), "::ffff:10.0.0.5:1", headers({{"X-Forwarded-For", "::1"}})).address,
      "::1:0");
  // An untrusted IPv6 peer is left as it is.
  EXPECT_EQ(resolve_client(proxies(), "2001:db8:9::1:80", headers({{"X-Forwarded-For", "1.2.3.4"}}))
                .address,
            "2001:db8:9::1:80");
}

TEST(ForwardedTest, ForwardedProtoFromATrustedPeerOnly) {
  auto secure = [](std::string_view peer, Headers h) {
    return resolve_client(proxies(), peer, h).secure;
  };
  EXPECT_TRUE(secure("10.0.0.5:1", headers({{"X-Forwarded-Proto", "https"}})));
  EXPECT_TRUE(secure("10.0.0.5:1", headers({{"X-Forwarded-Proto", " HTTPS "}})));
  EXPECT_FALSE(secure("10.0.0.5:1", headers({{"X-Forwarded-Proto", "http"}})));
  EXPECT_FALSE(secure("10.0.0.5:1", Headers()));
  // The nearest proxy's word is the last one.
  EXPECT_FALSE(secure("10.0.0.5:1", headers({{"X-Forwarded-Proto", "https, http"}})));
  EXPECT_TRUE(secure("10.0.0.5:1",
                     headers({{"X-Forwarded-Proto", "http"}, {"X-Forwarded-Proto", "https"}})));
  EXPECT_FALSE(secure("192.0.2.1:1", headers({{"X-Forwarded-Proto", "https"}})));
}

TEST(ForwardedTest, ApplyForwardingSetsTheRequestFields) {
  Request req;
  req.peer_address = "10.0.0.5:40000";
  req.headers = headers({{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}});
  apply_forwarding(req, proxies());
  EXPECT_EQ(req.remote_address, "203.0.113.7:0");
  EXPECT_EQ(address_ip(req.remote_address), "203.0.113.7");
  EXPECT_EQ(req.peer_address, "10.0.0.5:40000");
  EXPECT_TRUE(req.secure);
}

TEST(ForwardedTest, FormatIp) {
  auto fmt = [](std::string_view text) {
    auto ip = parse_ip(text);
    EXPECT_TRUE(ip.has_value()) << text;
    return ip ? format_ip(*ip) : std::string();
  };
  EXPECT_EQ(fmt("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(fmt("::"), "::");
  EXPECT_EQ(fmt("::1"), "::1");
  EXPECT_EQ(fmt("1::"), "1::");
  EXPECT_EQ(fmt("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");     // the first of equal runs
  EXPECT_EQ(fmt("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");  // one zero group stays
  EXPECT_EQ(fmt("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");           // the longest run
  EXPECT_EQ(fmt("FE80::ABCD"), "fe80::abcd");
}

TEST(AddressIp, SplitsAtTheLastColon) {
  EXPECT_EQ(address_ip("127.0.0.1:80"), "127.0.0.1");
  EXPECT_EQ(address_ip("2001:db8::1:443"), "2001:db8::1");
  EXPECT_EQ(address_ip("nothing"), "nothing");
}

}  // namespace
}  // namespace atelier::http
