#include "common/readiness.h"

#include <gtest/gtest.h>

namespace atelier {
namespace {

TEST(ReadinessTest, NotReadyUntilEveryCheckIsOk) {
  Readiness r;
  EXPECT_FALSE(r.snapshot().ready);  // nothing registered yet
  r.set_pending("store", "migrating");
  r.set_pending("workers", "");
  EXPECT_FALSE(r.snapshot().ready);
  EXPECT_EQ(r.snapshot().checks.at("workers"), "starting");
  r.set_ready("store");
  EXPECT_FALSE(r.snapshot().ready);
  r.set_ready("workers");
  EXPECT_TRUE(r.snapshot().ready);
}

TEST(ReadinessTest, ShuttingDownWinsOverChecks) {
  Readiness r;
  r.set_ready("store");
  ASSERT_TRUE(r.snapshot().ready);
  r.set_shutting_down();
  auto s = r.snapshot();
  EXPECT_FALSE(s.ready);
  EXPECT_TRUE(s.shutting_down);
  EXPECT_EQ(s.checks.at("store"), "ok");
}

}  // namespace
}  // namespace atelier
