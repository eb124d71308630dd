#include "server/http/body_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace atelier::http {
namespace {

TEST(BodyBudgetTest, ChargesWhatFitsAndRefusesTheRest) {
  BodyBudget budget(100);
  auto a = budget.try_charge(60);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->bytes(), 60u);
  EXPECT_EQ(budget.in_use(), 60u);
  EXPECT_FALSE(budget.try_charge(41));  // 60 + 41 > 100
  EXPECT_EQ(budget.in_use(), 60u);      // a refusal takes nothing
  auto b = budget.try_charge(40);
  ASSERT_TRUE(b);
  EXPECT_EQ(budget.in_use(), 100u);
  EXPECT_FALSE(budget.try_charge(1));
  EXPECT_TRUE(budget.try_charge(0));  // zero always fits
  EXPECT_FALSE(budget.try_charge(101));
}

TEST(BodyBudgetTest, ChargesAreReleasedByResetMoveAndDestruction) {
  BodyBudget budget(100);
  {
    auto a = budget.try_charge(30);
    ASSERT_TRUE(a);
    BodyBudget::Charge moved = std::move(*a);
    EXPECT_EQ(a->bytes(), 0u);  // moved from: holds nothing
    EXPECT_EQ(moved.bytes(), 30u);
    EXPECT_EQ(budget.in_use(), 30u);
    moved.reset();
    EXPECT_EQ(budget.in_use(), 0u);
    EXPECT_TRUE(moved.grow_to(50));  // a reset charge stays bound and may grow again
    EXPECT_EQ(budget.in_use(), 50u);
  }
  EXPECT_EQ(budget.in_use(), 0u);

  auto a = budget.try_charge(70);
  auto b = budget.try_charge(20);
  ASSERT_TRUE(a && b);
  *b = std::move(*a);  // b's 20 go back, a's 70 move over
  EXPECT_EQ(budget.in_use(), 70u);
  EXPECT_EQ(b->bytes(), 70u);
}

TEST(BodyBudgetTest, GrowsOnlyWhenTheExtraFits) {
  BodyBudget budget(100);
  auto other = budget.try_charge(50);
  auto c = budget.try_charge(10);
  ASSERT_TRUE(other && c);
  EXPECT_TRUE(c->grow_to(50));
  EXPECT_EQ(budget.in_use(), 100u);
  EXPECT_FALSE(c->grow_to(51));
  EXPECT_EQ(c->bytes(), 50u);   // unchanged by the refusal
  EXPECT_TRUE(c->grow_to(20));  // never shrinks
  EXPECT_EQ(c->bytes(), 50u);
  BodyBudget::Charge unbound;
  EXPECT_FALSE(unbound.grow_to(1));  // not from any budget
  EXPECT_TRUE(unbound.grow_to(0));
}

TEST(BodyBudgetTest, DrainedHookRunsOnceAfterHighThenLow) {
  BodyBudget budget(800);
  int drained = 0;
  budget.set_on_drained([&] { ++drained; });
  {
    auto low = budget.try_charge(300);  // under half: no high mark
  }
  EXPECT_EQ(drained, 0);
  auto a = budget.try_charge(300);
  auto b = budget.try_charge(200);  // 500: past half
  ASSERT_TRUE(a && b);
  a->reset();  // 200 left: above an eighth
  EXPECT_EQ(drained, 0);
  b->reset();  // 0: at or below an eighth
  EXPECT_EQ(drained, 1);
  auto c = budget.try_charge(50);
  c->reset();
  EXPECT_EQ(drained, 1);  // not high since
  auto d = budget.try_charge(400);
  d->reset();
  EXPECT_EQ(drained, 2);
}

TEST(BodyBudgetTest, ConcurrentChargesNeverExceedTheCapacity) {
  constexpr uint64_t kCapacity = 1000;
  BodyBudget budget(kCapacity);
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20'000; ++i) {
        auto c = budget.try_charge(static_cast<uint64_t>(10 + (i + t) % 90));
        if (budget.in_use() > kCapacity) over = true;
        if (c && !c->grow_to(c->bytes() + 50) && budget.in_use() > kCapacity) over = true;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(over.load());
  EXPECT_EQ(budget.in_use(), 0u);
}

}  // namespace
}  // namespace atelier::http
