#include "server/http/connection_limits.h"

#include <gtest/gtest.h>

#include <vector>

namespace atelier::http {
namespace {

IpBytes ip(const char* text) {
  auto parsed = parse_ip(text);
  EXPECT_TRUE(parsed) << text;
  return parsed.value_or(IpBytes{});
}

TEST(ConnectionLimitsTest, CapsEachAddress) {
  ConnectionLimits limits(100, 2, CidrSet());
  ConnectionLimits::Refusal why{};
  auto a1 = limits.try_admit(ip("192.0.2.1"));
  auto a2 = limits.try_admit(ip("192.0.2.1"));
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(limits.try_admit(ip("192.0.2.1"), &why));
  EXPECT_EQ(why, ConnectionLimits::Refusal::kPerAddress);
  // Another address has its own count; the v4-mapped form is the same address.
  EXPECT_TRUE(limits.try_admit(ip("192.0.2.2")));
  EXPECT_FALSE(limits.try_admit(ip("::ffff:192.0.2.1")));
  EXPECT_EQ(limits.from_address(ip("192.0.2.1")), 2u);
  a1.reset();  // a closed connection frees its place
  EXPECT_EQ(limits.from_address(ip("192.0.2.1")), 1u);
  EXPECT_TRUE(limits.try_admit(ip("192.0.2.1")));
}

TEST(ConnectionLimitsTest, CapsTheTotalAcrossAddresses) {
  ConnectionLimits limits(3, 10, CidrSet());
  std::vector<ConnectionLimits::Slot> slots;
  for (const char* a : {"192.0.2.1", "192.0.2.2", "2001:db8::1"}) {
    auto s = limits.try_admit(ip(a));
    ASSERT_TRUE(s) << a;
    slots.push_back(std::move(*s));
  }
  ConnectionLimits::Refusal why{};
  EXPECT_FALSE(limits.try_admit(ip("192.0.2.9"), &why));
  EXPECT_EQ(why, ConnectionLimits::Refusal::kTotal);
  EXPECT_FALSE(limits.try_admit(std::nullopt));  // an unknown address counts too
  EXPECT_EQ(limits.total(), 3u);
  slots.pop_back();
  EXPECT_EQ(limits.total(), 2u);
  EXPECT_TRUE(limits.try_admit(std::nullopt));
}

TEST(ConnectionLimitsTest, TrustedProxiesAreExemptFromThePerAddressCap) {
  auto proxies = CidrSet::parse({"10.0.0.0/8"});
  ASSERT_TRUE(proxies.is_ok());
  ConnectionLimits limits(5, 1, *proxies);
  std::vector<ConnectionLimits::Slot> slots;
  for (int i = 0; i < 5; ++i) {
    auto s = limits.try_admit(ip("10.1.2.3"));
    ASSERT_TRUE(s) << i;
    slots.push_back(std::move(*s));
  }
  EXPECT_EQ(limits.from_address(ip("10.1.2.3")), 0u);  // not counted per address
  ConnectionLimits::Refusal why{};
  EXPECT_FALSE(limits.try_admit(ip("10.1.2.3"), &why));  // but the total still holds
  EXPECT_EQ(why, ConnectionLimits::Refusal::kTotal);
}

TEST(ConnectionLimitsTest, MovedSlotsReleaseOnce) {
  ConnectionLimits limits(10, 10, CidrSet());
  {
    auto s = limits.try_admit(ip("192.0.2.1"));
    ASSERT_TRUE(s);
    ConnectionLimits::Slot moved = std::move(*s);  // an HTTP session becoming a WebSocket
    s.reset();
    EXPECT_EQ(limits.total(), 1u);
    ConnectionLimits::Slot other;
    other = std::move(moved);
    EXPECT_EQ(limits.total(), 1u);
  }
  EXPECT_EQ(limits.total(), 0u);
  EXPECT_EQ(limits.from_address(ip("192.0.2.1")), 0u);
}

}  // namespace
}  // namespace atelier::http
