#include "server/api/query_params.h"

#include <gtest/gtest.h>

namespace atelier::api {
namespace {

http::Request with_query(std::string query) {
  http::Request r;
  r.query = std::move(query);
  return r;
}

TEST(QueryParamsTest, AbsentOrEmptyGivesTheFallback) {
  EXPECT_EQ(*query_int(with_query(""), "limit", 50, 1, 200), 50);
  EXPECT_EQ(*query_int(with_query("limit="), "limit", 50, 1, 200), 50);
  EXPECT_EQ(*query_int(with_query("other=3"), "limit", 50, 1, 200), 50);
}

TEST(QueryParamsTest, ValuesAboveTheMaximumAreCappedOrRefused) {
  EXPECT_EQ(*query_int(with_query("limit=7"), "limit", 50, 1, 200), 7);
  EXPECT_EQ(*query_int(with_query("limit=100000"), "limit", 50, 1, 200), 200);
  auto refused = query_int(with_query("size=5000"), "size", 256, 16, 1024, AboveMax::kRefuse);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().field(), "size");
  EXPECT_NE(refused.status().message().find("from 16 to 1024"), std::string::npos);
  EXPECT_EQ(*query_int(with_query("size=1024"), "size", 256, 16, 1024, AboveMax::kRefuse), 1024);
}

TEST(QueryParamsTest, NonIntegersAndValuesBelowTheMinimumNameTheParameter) {
  for (const char* q :
       {"limit=x", "limit=0", "limit=-3", "limit=5x", "limit=1.5", "limit=99999999999999999999"}) {
    auto r = query_int(with_query(q), "limit", 50, 1, 200);
    ASSERT_FALSE(r.is_ok()) << q;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << q;
    EXPECT_EQ(r.status().field(), "limit") << q;
  }
}

TEST(QueryParamsTest, BeforeIsAnOptionalPositiveId) {
  EXPECT_FALSE(query_before(with_query(""))->has_value());
  EXPECT_FALSE(query_before(with_query("before="))->has_value());
  EXPECT_EQ(**query_before(with_query("before=42")), 42);
  auto bad = query_before(with_query("before=0"));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "before");
}

// Cursors are ids: "before=042" is not id 42 but a mistake, and so are signs and spaces.
TEST(QueryParamsTest, OnlyCanonicalDecimalsAreAccepted) {
  for (const char* q : {"before=042", "before=+42", "before=%2042", "before=42%20", "before=00"}) {
    auto r = query_before(with_query(q));
    ASSERT_FALSE(r.is_ok()) << q;
    EXPECT_EQ(r.status().field(), "before") << q;
  }
  for (const char* q : {"limit=07", "limit=+7"}) {
    auto r = query_int(with_query(q), "limit", 50, 1, 200);
    ASSERT_FALSE(r.is_ok()) << q;
    EXPECT_EQ(r.status().field(), "limit") << q;
  }
  EXPECT_EQ(*query_int(with_query("after=0"), "after", 5, 0, 100), 0);
}

}  // namespace
}  // namespace atelier::api
