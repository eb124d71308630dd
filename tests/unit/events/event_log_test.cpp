// EventLog over a real Store: an event is stored with the change it records and heard on the bus
// only once that transaction has committed, in commit order; a rolled-back one never; a deleted
// project is announced with seq 0 and nothing stored.
#include "server/events/event_log.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/auth/account_db.h"
#include "server/projects/project_db.h"
#include "tests/support/store_fixture.h"

namespace atelier::events {
namespace {

using store::Db;
namespace pdb = projects::project_db;

const SysTime kAt = from_unix_s(1'700'000'000);

class EventLogTest : public testing::StoreFixture {
 protected:
  EventLogTest()
      : StoreFixture("atelier-event-log-test"), log_(bus_, [](const DomainEvent& e) {
          return R"({"kind":")" + std::string(event_type(e)) + R"("})";
        }) {}

  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto user = in_write([&](Db& db) {
      return auth::account_db::insert_user(db, "alice", "h", false, from_unix_s(1'700'000'000));
    });
    ASSERT_TRUE(user.is_ok()) << user.status().to_string();
    alice_ = user->id;
    auto p =
        in_write([&](Db& db) { return pdb::insert_project(db, "A", "", alice_, from_unix_s(1)); });
    ASSERT_TRUE(p.is_ok());
    project_ = p->id;
    bus_.subscribe({.committed = [this](const CommittedEvent& e) {
      std::lock_guard lock(mu_);
      heard_.emplace_back(std::string(event_type(e.event)), e.seq);
      EXPECT_EQ(e.project_id, project_);
      EXPECT_EQ(e.actor, alice_);
      if (e.seq > 0) {
        EXPECT_EQ(*e.data_json, R"({"kind":")" + std::string(event_type(e.event)) + R"("})");
      }
    }});
  }

  std::vector<std::pair<std::string, int64_t>> heard() {
    std::lock_guard lock(mu_);
    return heard_;
  }

  EventBus bus_;
  EventLog log_;
  int64_t alice_ = 0;
  int64_t project_ = 0;
  std::mutex mu_;
  std::vector<std::pair<std::string, int64_t>> heard_;
};

TEST_F(EventLogTest, HeardAfterTheCommitInOrderAndNeverForARollback) {
  auto one = in_write([&](Db& db) {
    auto seq = log_.append(db, project_, alice_, ProjectCreated{"A"}, kAt);
    EXPECT_TRUE(heard().empty()) << "nothing is heard before the commit";
    return seq;
  });
  ASSERT_TRUE(one.is_ok());
  EXPECT_EQ(*one, 1);
  Status failed = store_->write([&](Db& db) -> Status {
    ATELIER_RETURN_IF_ERROR(
        log_.append(db, project_, alice_, ProjectUpdated{"ghost", {}}, kAt).status());
    return Status::invalid_argument("the change failed");
  });
  EXPECT_EQ(failed.code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(in_write([&](Db& db) {
                return log_.append(db, project_, alice_,
                                   MemberChanged{MemberChanged::Kind::kLeft, alice_}, kAt);
              }).is_ok());
  EXPECT_EQ(heard(), (std::vector<std::pair<std::string, int64_t>>{{"project.created", 1},
                                                                   {"member.left", 2}}));
  auto stored = in_read([&](Db& db) { return pdb::list_events(db, project_, 0, 10); });
  ASSERT_TRUE(stored.is_ok());
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[1].type, "member.left");
  EXPECT_EQ((*stored)[1].data_json, R"({"kind":"member.left"})");
  EXPECT_EQ((*stored)[1].ts, from_unix_s(1'700'000'000));
}

TEST_F(EventLogTest, ADeletedProjectIsAnnouncedNotLogged) {
  EXPECT_EQ(
      in_write([&](Db& db) { return log_.append(db, project_, alice_, ProjectDeleted{}, kAt); })
          .status()
          .code(),
      StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_
                  ->write([&](Db& db) -> Status {
                    ATELIER_RETURN_IF_ERROR(pdb::delete_project(db, project_));
                    log_.announce(db, project_, alice_, ProjectDeleted{}, kAt);
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(heard(), (std::vector<std::pair<std::string, int64_t>>{{"project.deleted", 0}}));
}

}  // namespace
}  // namespace atelier::events
