#include "common/cidr.h"

#include <gtest/gtest.h>

namespace atelier {
namespace {

TEST(CidrTest, ParsesAddresses) {
  EXPECT_TRUE(parse_ip("203.0.113.7"));
  EXPECT_TRUE(parse_ip("2001:db8::1"));
  EXPECT_TRUE(parse_ip("::ffff:203.0.113.7"));
  EXPECT_FALSE(parse_ip(""));
  EXPECT_FALSE(parse_ip("203.0.113.7:80"));
  EXPECT_FALSE(parse_ip("[::1]"));
  EXPECT_FALSE(parse_ip("example.com"));
  EXPECT_FALSE(parse_ip("1.2.3.4.5"));
  // A v4 address and its mapped v6 form are the same address.
  EXPECT_EQ(*parse_ip("203.0.113.7"), *parse_ip("::ffff:203.0.113.7"));
}

TEST(CidrTest, V4BlocksMatchV4AndMappedAddresses) {
  auto c = parse_cidr("10.1.0.0/16");
  ASSERT_TRUE(c.is_ok());
  EXPECT_TRUE(c->contains(*parse_ip("10.1.2.3")));
  EXPECT_TRUE(c->contains(*parse_ip("::ffff:10.1.255.255")));
  EXPECT_FALSE(c->contains(*parse_ip("10.2.0.1")));
  EXPECT_FALSE(c->contains(*parse_ip("2001:db8::1")));
  // Host bits in the text are ignored.
  auto d = parse_cidr("10.1.2.3/16");
  ASSERT_TRUE(d.is_ok());
  EXPECT_TRUE(d->contains(*parse_ip("10.1.9.9")));
}

TEST(CidrTest, BareAddressesAndV6Blocks) {
  auto one = parse_cidr("192.0.2.1");
  ASSERT_TRUE(one.is_ok());
  EXPECT_TRUE(one->contains(*parse_ip("192.0.2.1")));
  EXPECT_FALSE(one->contains(*parse_ip("192.0.2.2")));
  auto v6 = parse_cidr("2001:db8::/33");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_TRUE(v6->contains(*parse_ip("2001:db8:7fff::1")));
  EXPECT_FALSE(v6->contains(*parse_ip("2001:db8:8000::1")));
  auto all = parse_cidr("0.0.0.0/0");
  ASSERT_TRUE(all.is_ok());
  EXPECT_TRUE(all->contains(*parse_ip("8.8.8.8")));
  EXPECT_FALSE(all->contains(*parse_ip("::1")));
}

TEST(CidrTest, RejectsBadBlocks) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129", "host/8", "",
                          "10.0.0.0/-1", "10.0.0.0/8/8"}) {
    EXPECT_FALSE(parse_cidr(bad).is_ok()) << bad;
  }
}

TEST(CidrTest, SetMatchesAnyBlockAndRejectsGarbage) {
  auto set = CidrSet::parse({"127.0.0.1", "10.0.0.0/8"});
  ASSERT_TRUE(set.is_ok());
  EXPECT_TRUE(set->contains("127.0.0.1"));
  EXPECT_TRUE(set->contains("10.9.9.9"));
  EXPECT_FALSE(set->contains("127.0.0.2"));
  EXPECT_FALSE(set->contains("not an ip"));
  EXPECT_FALSE(CidrSet::parse({"127.0.0.1", "nope"}).is_ok());
  EXPECT_TRUE(CidrSet().empty());
}

}  // namespace
}  // namespace atelier
