// CredentialWatch (which live connections a revocation ends) with an injected checker, and the
// queries behind the app's checker (credential_db) on a real store.
#include "server/api/credential_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server/api/credential_db.h"
#include "server/auth/account_db.h"
#include "tests/support/store_fixture.h"

namespace atelier::api {
namespace {

using namespace std::chrono_literals;

// A watch whose checker answers what the test sets and records what it was asked.
struct Fixture {
  std::vector<std::vector<int64_t>> asked;
  Result<std::vector<int64_t>> answer = std::vector<int64_t>{};
  CredentialWatch watch{[this](const std::vector<int64_t>& ids) -> Result<std::vector<int64_t>> {
                          asked.push_back(ids);
                          return answer;
                        },
                        1h};
};

// A registration that counts its close callbacks.
struct Watched {
  int closes = 0;
  std::unique_ptr<CredentialWatch::Handle> handle;
  Watched(CredentialWatch& watch, int64_t credential, int64_t user)
      : handle(watch.watch(credential, user, [this] { ++closes; })) {}
  // Whether a send would go out now.
  bool sends() {
    bool ran = false;
    const bool valid = handle->if_valid([&] { ran = true; });
    EXPECT_EQ(valid, ran);
    return ran;
  }
};

TEST(CredentialWatchTest, RevokingACredentialEndsEveryConnectionOfItAndNoOther) {
  Fixture f;
  Watched a1(f.watch, 1, 10), a2(f.watch, 1, 10), b(f.watch, 2, 10), c(f.watch, 3, 20);
  EXPECT_EQ(f.watch.watched(), 4u);
  f.watch.revoke_credential(1);
  EXPECT_TRUE(a1.handle->revoked());
  EXPECT_FALSE(a1.sends());
  EXPECT_FALSE(a2.sends());
  EXPECT_EQ(a1.closes, 1);
  EXPECT_EQ(a2.closes, 1);
  EXPECT_TRUE(b.sends());
  EXPECT_TRUE(c.sends());
  EXPECT_EQ(b.closes + c.closes, 0);
  // Once only: a second revocation finds nothing to close.
  f.watch.revoke_credential(1);
  EXPECT_EQ(a1.closes, 1);
  EXPECT_EQ(f.watch.watched(), 2u);
}

TEST(CredentialWatchTest, RevokingAUserKeepsOnlyTheCredentialNamed) {
  Fixture f;
  Watched kept(f.watch, 1, 10), other(f.watch, 2, 10), token(f.watch, 3, 10),
      someone(f.watch, 4, 20);
  f.watch.revoke_user(10, 1);
  EXPECT_TRUE(kept.sends());
  EXPECT_FALSE(other.sends());
  EXPECT_FALSE(token.sends());
  EXPECT_TRUE(someone.sends());
  EXPECT_EQ(other.closes + token.closes, 2);
  EXPECT_EQ(kept.closes, 0);

  f.watch.revoke_user(10);  // disabling: all of them
  EXPECT_FALSE(kept.sends());
  EXPECT_EQ(kept.closes, 1);
  EXPECT_TRUE(someone.sends());
}

TEST(CredentialWatchTest, CheckAsksOnceAboutEachWatchedCredentialAndRevokesTheUnusable) {
  Fixture f;
  EXPECT_TRUE(f.watch.check().is_ok());
  EXPECT_TRUE(f.asked.empty()) << "nothing watched: no query";

  Watched a(f.watch, 5, 10), a_again(f.watch, 5, 10), b(f.watch, 2, 11), c(f.watch, 9, 12);
  f.answer = std::vector<int64_t>{5, 9};
  ASSERT_TRUE(f.watch.check().is_ok());
  ASSERT_EQ(f.asked.size(), 1u);
  EXPECT_EQ(f.asked[0], (std::vector<int64_t>{2, 5, 9}));
  EXPECT_FALSE(a.sends());
  EXPECT_FALSE(a_again.sends());
  EXPECT_FALSE(c.sends());
  EXPECT_TRUE(b.sends());
  EXPECT_EQ(a.closes + a_again.closes + c.closes, 3);

  // Revoked connections are no longer asked about.
  f.answer = std::vector<int64_t>{};
  ASSERT_TRUE(f.watch.check().is_ok());
  EXPECT_EQ(f.asked.back(), (std::vector<int64_t>{2}));
}

TEST(CredentialWatchTest, AFailingCheckRevokesNothing) {
  Fixture f;
  Watched a(f.watch, 1, 10);
  f.answer = Status::unavailable("database busy");
  EXPECT_EQ(f.watch.check().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(a.sends());
  EXPECT_EQ(a.closes, 0);
}

TEST(CredentialWatchTest, AnEndedConnectionIsForgottenAndAHandleMayOutliveTheWatch) {
  std::unique_ptr<CredentialWatch::Handle> survivor;
  int closes = 0;
  {
    Fixture f;
    {
      Watched gone(f.watch, 1, 10);
      EXPECT_EQ(f.watch.watched(), 1u);
    }
    EXPECT_EQ(f.watch.watched(), 0u);
    f.watch.revoke_credential(1);  // nothing left to close
    survivor = f.watch.watch(2, 10, [&] { ++closes; });
  }
  EXPECT_TRUE(survivor->if_valid([] {}));
  survivor.reset();
  EXPECT_EQ(closes, 0);
}

TEST(CredentialWatchTest, NoSendStartsAfterTheRevocationReturns) {
  // Senders on other threads keep sending until they see the flag; the revocation, once
  // returned, must never be followed by a send that began after it.
  Fixture f;
  Watched w(f.watch, 1, 10);
  std::atomic<bool> revoked{false};
  std::atomic<int> late_sends{0};
  std::atomic<int> sends{0};
  std::vector<std::thread> senders;
  for (int i = 0; i < 4; ++i) {
    senders.emplace_back([&] {
      while (w.handle->if_valid([&] {
        if (revoked.load()) late_sends.fetch_add(1);
        sends.fetch_add(1);
      })) {
      }
    });
  }
  while (sends.load() < 1000) std::this_thread::yield();
  f.watch.revoke_credential(1);
  revoked.store(true);
  for (auto& t : senders) t.join();
  EXPECT_EQ(late_sends.load(), 0);
  EXPECT_EQ(w.closes, 1);
}

// ---------------------------------------------------------------------------------------------

class CredentialDbTest : public testing::StoreFixture {
 protected:
  CredentialDbTest() : StoreFixture("atelier-credential-db-test") {}

  int64_t user(const std::string& name) {
    auto u = in_write([&](store::Db& db) {
      return auth::account_db::insert_user(db, name, "hash", false, now_);
    });
    EXPECT_TRUE(u.is_ok()) << u.status().to_string();
    return u->id;
  }
  int64_t credential(int64_t user_id, std::optional<SysTime> expires = std::nullopt) {
    auto id = in_write([&](store::Db& db) {
      return auth::account_db::insert_credential(
          db, user_id, auth::CredentialKind::kSession, "s", auth::Scope::kAdmin,
          "secret" + std::to_string(++secrets_), now_, expires);
    });
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return *id;
  }
  std::vector<int64_t> unusable(const std::vector<int64_t>& ids) {
    auto out =
        in_read([&](store::Db& db) { return credential_db::unusable_credentials(db, ids, now_); });
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    return out.is_ok() ? *out : std::vector<int64_t>{};
  }

  const SysTime now_ = from_unix_s(1'800'000'000);
  int secrets_ = 0;
};

TEST_F(CredentialDbTest, UnusableAreTheRevokedExpiredMissingAndThoseOfDisabledUsers) {
  const int64_t ada = user("ada"), bob = user("bob");
  const int64_t fine = credential(ada);
  const int64_t later = credential(ada, now_ + 1s);
  const int64_t expired = credential(ada, now_);
  const int64_t revoked = credential(ada);
  const int64_t of_bob = credential(bob);
  ASSERT_TRUE(in_write([&](store::Db& db) {
                return auth::account_db::revoke_credential(db, ada, revoked, now_);
              }).is_ok());
  EXPECT_EQ(unusable({fine, later, expired, revoked, of_bob, 999}),
            (std::vector<int64_t>{expired, revoked, 999}));

  ASSERT_TRUE(in_write([&](store::Db& db) {
                return auth::account_db::set_disabled(db, bob, true);
              }).is_ok());
  EXPECT_EQ(unusable({of_bob, fine}), (std::vector<int64_t>{of_bob}));
}

TEST_F(CredentialDbTest, RevokingTheOthersKeepsOneCredentialAndTouchesNoOtherUser) {
  const int64_t ada = user("ada"), bob = user("bob");
  const int64_t keep = credential(ada), other = credential(ada), token = credential(ada);
  const int64_t of_bob = credential(bob);
  ASSERT_TRUE(in_write([&](store::Db& db) {
                return credential_db::revoke_other_credentials(db, ada, keep, now_);
              }).is_ok());
  EXPECT_EQ(unusable({keep, other, token, of_bob}), (std::vector<int64_t>{other, token}));
}

}  // namespace
}  // namespace atelier::api
