#include "common/status.h"

#include <gtest/gtest.h>

namespace atelier {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.to_string(), "OK");
}

TEST(StatusTest, CarriesCodeMessageAndField) {
  Status s = Status::invalid_argument("port must be 0-65535", "port");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.field(), "port");
  EXPECT_EQ(s.to_string(), "InvalidArgument: port must be 0-65535 (field: port)");
}

TEST(StatusTest, WithContextKeepsCodeAndField) {
  Status s = Status::invalid_argument("bad", "host").with_context("flag --host");
  EXPECT_EQ(s.message(), "flag --host: bad");
  EXPECT_EQ(s.field(), "host");
  EXPECT_TRUE(Status::ok().with_context("x").is_ok());
}

Result<int> half(int v) {
  if (v % 2) return Status::invalid_argument("odd", "v");
  return v / 2;
}

Status chain(int v, int* out) {
  auto r = half(v);
  ATELIER_RETURN_IF_ERROR(r.status());
  *out = *r;
  return Status::ok();
}

TEST(ResultTest, ValueOrStatus) {
  auto ok = half(8);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(*ok, 4);
  EXPECT_TRUE(ok.status().is_ok());
  auto bad = half(3);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "v");
}

TEST(ResultTest, ReturnIfErrorStopsEarly) {
  int out = -1;
  EXPECT_FALSE(chain(3, &out).is_ok());
  EXPECT_EQ(out, -1);
  EXPECT_TRUE(chain(6, &out).is_ok());
  EXPECT_EQ(out, 3);
}

}  // namespace
}  // namespace atelier

namespace {

atelier::Result<int> half(int n) {
  if (n % 2 != 0) return atelier::Status::invalid_argument("odd", "n");
  return n / 2;
}

// Two assignments in one function: the macro's temporaries must not collide.
atelier::Result<int> quarter(int n) {
  ATELIER_ASSIGN_OR_RETURN(int h, half(n));
  int q = 0;
  ATELIER_ASSIGN_OR_RETURN(q, half(h));
  return q;
}

}  // namespace

TEST(StatusTest, AssignOrReturnPassesValuesAndErrors) {
  EXPECT_EQ(*quarter(8), 2);
  atelier::Result<int> odd = quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(odd.is_ok());
  EXPECT_EQ(odd.status().field(), "n");
  EXPECT_FALSE(quarter(5).is_ok());
}
