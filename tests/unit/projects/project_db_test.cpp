#include "server/projects/project_db.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/auth/account_db.h"
#include "server/store/store.h"
#include "tests/support/store_fixture.h"

namespace atelier::projects {
namespace {

// A whole newest-first list (one page large enough) put back in ascending id order.
template <typename T>
Result<std::vector<T>> ascending(Result<std::vector<T>> list) {
  if (list.is_ok()) std::reverse(list->begin(), list->end());
  return list;
}

using store::Db;
namespace pdb = project_db;
namespace adb = auth::account_db;
using namespace std::chrono_literals;

constexpr SysTime kNow{std::chrono::seconds{1'700'000'000}};

// Runs one statement with integer parameters; for setting up states the API has no call for.
Status exec_with(Db& db, const std::string& sql, const std::vector<int64_t>& params) {
  auto stmt = db.prepare(sql);
  if (!stmt.is_ok()) return stmt.status();
  for (size_t i = 0; i < params.size(); ++i) {
    ATELIER_RETURN_IF_ERROR(stmt->bind_int64(static_cast<int>(i) + 1, params[i]));
  }
  return stmt->step().status();
}

Result<int64_t> count_with(Db& db, const std::string& sql, const std::vector<int64_t>& params) {
  auto stmt = db.prepare(sql);
  if (!stmt.is_ok()) return stmt.status();
  for (size_t i = 0; i < params.size(); ++i) {
    ATELIER_RETURN_IF_ERROR(stmt->bind_int64(static_cast<int>(i) + 1, params[i]));
  }
  auto row = stmt->step();
  if (!row.is_ok()) return row.status();
  return stmt->column_int64(0);
}

// The fixture's Store with three users.
class ProjectDbTest : public testing::StoreFixture {
 protected:
  ProjectDbTest() : StoreFixture("atelier-project-db-test") {}

  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    alice_ = add_user("alice");
    bob_ = add_user("bob");
    carol_ = add_user("carol");
  }

  int64_t add_user(const std::string& name) {
    auto user = in_write([&](Db& db) { return adb::insert_user(db, name, "h", false, kNow); });
    EXPECT_TRUE(user.is_ok()) << user.status().to_string();
    return user.is_ok() ? user->id : 0;
  }

  Project add_project(const std::string& name, int64_t owner, const std::string& description = "",
                      SysTime now = kNow) {
    auto p =
        in_write([&](Db& db) { return pdb::insert_project(db, name, description, owner, now); });
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    return p.is_ok() ? *p : Project{};
  }

  std::optional<Role> role_of(int64_t project_id, int64_t user_id) {
    auto r = in_read([&](Db& db) { return pdb::member_role(db, project_id, user_id); });
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : std::nullopt;
  }

  Status set_member(int64_t project_id, int64_t user_id, Role role, SysTime now = kNow) {
    return in_write([&](Db& db) { return pdb::upsert_member(db, project_id, user_id, role, now); });
  }

  int64_t append(int64_t project_id, const std::string& type, const std::string& data = "{}") {
    auto seq = in_write(
        [&](Db& db) { return pdb::append_event(db, project_id, type, alice_, data, kNow); });
    EXPECT_TRUE(seq.is_ok()) << seq.status().to_string();
    return seq.is_ok() ? *seq : -1;
  }

  int64_t count(const std::string& sql, const std::vector<int64_t>& params) {
    auto n = in_read([&](Db& db) { return count_with(db, sql, params); });
    EXPECT_TRUE(n.is_ok()) << n.status().to_string();
    return n.is_ok() ? *n : -1;
  }

  int64_t alice_ = 0;
  int64_t bob_ = 0;
  int64_t carol_ = 0;
};

TEST(RoleNameTest, RoundTripsAndRejectsUnknown) {
  for (Role r : {Role::kViewer, Role::kEditor, Role::kOwner}) {
    EXPECT_EQ(parse_role(role_name(r)), r);
  }
  EXPECT_EQ(role_name(Role::kEditor), "editor");
  EXPECT_EQ(parse_role("Owner"), std::nullopt);
  EXPECT_EQ(parse_role("admin"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Projects

TEST_F(ProjectDbTest, InsertMakesTheCreatorOwner) {
  Project p = add_project("Murals", alice_, "walls");
  EXPECT_GT(p.id, 0);
  EXPECT_EQ(p.name, "Murals");
  EXPECT_EQ(p.description, "walls");
  EXPECT_EQ(p.created_by, alice_);
  EXPECT_EQ(p.created_at, kNow);
  EXPECT_EQ(p.updated_at, kNow);

  auto found = in_read([&](Db& db) { return pdb::find_project(db, p.id); });
  ASSERT_TRUE(found.is_ok());
  EXPECT_EQ(found->name, "Murals");
  EXPECT_EQ(found->description, "walls");
  EXPECT_EQ(found->created_by, alice_);

  EXPECT_EQ(role_of(p.id, alice_), Role::kOwner);
  auto members = in_read(
      [&](Db& db) { return ascending(pdb::list_members_page(db, p.id, 1000, std::nullopt)); });
  ASSERT_TRUE(members.is_ok());
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].user_id, alice_);
  EXPECT_EQ((*members)[0].username, "alice");
  EXPECT_EQ((*members)[0].role, Role::kOwner);
  EXPECT_EQ((*members)[0].added_at, kNow);
  EXPECT_EQ(*in_read([&](Db& db) { return pdb::count_owners(db, p.id); }), 1);
}

TEST_F(ProjectDbTest, UnknownProjectIsNotFound) {
  auto found = in_read([](Db& db) { return pdb::find_project(db, 9999); });
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
}

TEST_F(ProjectDbTest, ProjectForUnknownOwnerIsRefused) {
  auto p = in_write([](Db& db) { return pdb::insert_project(db, "x", "", 9999, kNow); });
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(count("SELECT count(*) FROM projects", {}), 0);
}

TEST_F(ProjectDbTest, ListsOnlyMemberProjectsWithRoles) {
  Project p1 = add_project("one", alice_);
  Project p2 = add_project("two", bob_);
  Project p3 = add_project("three", alice_);
  ASSERT_TRUE(set_member(p3.id, bob_, Role::kEditor).is_ok());

  auto bobs = in_read(
      [&](Db& db) { return ascending(pdb::list_projects_page(db, bob_, 1000, std::nullopt)); });
  ASSERT_TRUE(bobs.is_ok()) << bobs.status().to_string();
  ASSERT_EQ(bobs->size(), 2u);
  EXPECT_EQ((*bobs)[0].project.id, p2.id);
  EXPECT_EQ((*bobs)[0].project.name, "two");
  EXPECT_EQ((*bobs)[0].role, Role::kOwner);
  EXPECT_EQ((*bobs)[1].project.id, p3.id);
  EXPECT_EQ((*bobs)[1].role, Role::kEditor);

  auto alices = in_read(
      [&](Db& db) { return ascending(pdb::list_projects_page(db, alice_, 1000, std::nullopt)); });
  ASSERT_TRUE(alices.is_ok());
  ASSERT_EQ(alices->size(), 2u);
  EXPECT_EQ((*alices)[0].project.id, p1.id);
  EXPECT_EQ((*alices)[1].project.id, p3.id);

  auto carols = in_read(
      [&](Db& db) { return ascending(pdb::list_projects_page(db, carol_, 1000, std::nullopt)); });
  ASSERT_TRUE(carols.is_ok());
  EXPECT_TRUE(carols->empty());
}

TEST_F(ProjectDbTest, PartialUpdateKeepsWhatIsNotGiven) {
  Project p = add_project("old name", alice_, "the description");
  Status st = in_write([&](Db& db) {
    return pdb::update_project(db, p.id, std::string("new name"), std::nullopt, kNow + 5s);
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  auto found = in_read([&](Db& db) { return pdb::find_project(db, p.id); });
  ASSERT_TRUE(found.is_ok());
  EXPECT_EQ(found->name, "new name");
  EXPECT_EQ(found->description, "the description");
  EXPECT_EQ(found->created_at, kNow);
  EXPECT_EQ(found->updated_at, kNow + 5s);

  st = in_write([&](Db& db) {
    return pdb::update_project(db, p.id, std::nullopt, std::string(""), kNow + 9s);
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  found = in_read([&](Db& db) { return pdb::find_project(db, p.id); });
  ASSERT_TRUE(found.is_ok());
  EXPECT_EQ(found->name, "new name");
  EXPECT_EQ(found->description, "");
  EXPECT_EQ(found->updated_at, kNow + 9s);

  st = in_write(
      [](Db& db) { return pdb::update_project(db, 9999, std::string("x"), std::nullopt, kNow); });
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
}

TEST_F(ProjectDbTest, DeleteCascadesMembersInvitesAndEvents) {
  Project doomed = add_project("doomed", alice_);
  Project kept = add_project("kept", alice_);
  for (const Project& p : {doomed, kept}) {
    ASSERT_TRUE(set_member(p.id, bob_, Role::kViewer).is_ok());
    ASSERT_TRUE(in_write([&](Db& db) {
                  return pdb::insert_invite(db, p.id, "code-" + std::to_string(p.id), Role::kEditor,
                                            3, kNow + 60s, alice_, kNow);
                }).is_ok());
    append(p.id, "project.created");
  }
  ASSERT_TRUE(in_write([&](Db& db) { return pdb::delete_project(db, doomed.id); }).is_ok());

  auto gone = in_read([&](Db& db) { return pdb::find_project(db, doomed.id); });
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  for (const char* table : {"members", "invites", "events"}) {
    const std::string sql = std::string("SELECT count(*) FROM ") + table + " WHERE project_id = ?";
    EXPECT_EQ(count(sql, {doomed.id}), 0) << table;
    EXPECT_GT(count(sql, {kept.id}), 0) << table;
  }
  EXPECT_EQ(role_of(doomed.id, bob_), std::nullopt);
  EXPECT_EQ(in_write([&](Db& db) { return pdb::delete_project(db, doomed.id); }).code(),
            StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// Members

TEST_F(ProjectDbTest, MemberRoleIsNulloptForNonMembers) {
  Project p = add_project("p", alice_);
  EXPECT_EQ(role_of(p.id, bob_), std::nullopt);
  EXPECT_EQ(role_of(9999, alice_), std::nullopt);
}

TEST_F(ProjectDbTest, UpsertAddsThenChangesRoleKeepingAddedAt) {
  Project p = add_project("p", alice_);
  ASSERT_TRUE(set_member(p.id, bob_, Role::kViewer, kNow + 1s).is_ok());
  EXPECT_EQ(role_of(p.id, bob_), Role::kViewer);
  ASSERT_TRUE(set_member(p.id, bob_, Role::kEditor, kNow + 2s).is_ok());
  EXPECT_EQ(role_of(p.id, bob_), Role::kEditor);

  auto members = in_read(
      [&](Db& db) { return ascending(pdb::list_members_page(db, p.id, 1000, std::nullopt)); });
  ASSERT_TRUE(members.is_ok());
  ASSERT_EQ(members->size(), 2u);  // ordered by user id: alice, bob
  EXPECT_EQ((*members)[0].user_id, alice_);
  EXPECT_EQ((*members)[1].user_id, bob_);
  EXPECT_EQ((*members)[1].username, "bob");
  EXPECT_EQ((*members)[1].role, Role::kEditor);
  EXPECT_EQ((*members)[1].added_at, kNow + 1s);
}

TEST_F(ProjectDbTest, UpsertOfUnknownUserOrProjectIsRefused) {
  Project p = add_project("p", alice_);
  EXPECT_EQ(set_member(p.id, 9999, Role::kViewer).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(set_member(9999, bob_, Role::kViewer).code(), StatusCode::kFailedPrecondition);
}

TEST_F(ProjectDbTest, RemoveMemberThenNotFound) {
  Project p = add_project("p", alice_);
  ASSERT_TRUE(set_member(p.id, bob_, Role::kViewer).is_ok());
  ASSERT_TRUE(in_write([&](Db& db) { return pdb::remove_member(db, p.id, bob_); }).is_ok());
  EXPECT_EQ(role_of(p.id, bob_), std::nullopt);
  EXPECT_EQ(in_write([&](Db& db) { return pdb::remove_member(db, p.id, bob_); }).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(in_write([&](Db& db) { return pdb::remove_member(db, p.id, carol_); }).code(),
            StatusCode::kNotFound);
}

TEST_F(ProjectDbTest, CountsOwners) {
  Project p = add_project("p", alice_);
  ASSERT_TRUE(set_member(p.id, bob_, Role::kOwner).is_ok());
  ASSERT_TRUE(set_member(p.id, carol_, Role::kEditor).is_ok());
  EXPECT_EQ(*in_read([&](Db& db) { return pdb::count_owners(db, p.id); }), 2);
  ASSERT_TRUE(set_member(p.id, alice_, Role::kViewer).is_ok());
  EXPECT_EQ(*in_read([&](Db& db) { return pdb::count_owners(db, p.id); }), 1);
  EXPECT_EQ(*in_read([](Db& db) { return pdb::count_owners(db, 9999); }), 0);
}

TEST_F(ProjectDbTest, DeletingAUserCascadesMembershipsAndCredentials) {
  Project p = add_project("p", bob_);
  ASSERT_TRUE(set_member(p.id, alice_, Role::kEditor).is_ok());
  ASSERT_TRUE(in_write([&](Db& db) {
                return adb::insert_credential(db, bob_, auth::CredentialKind::kSession, "s",
                                              auth::Scope::kAdmin, "bob-session", kNow,
                                              std::nullopt);
              }).is_ok());
  ASSERT_TRUE(in_write([&](Db& db) {
                return exec_with(db, "DELETE FROM users WHERE id = ?", {bob_});
              }).is_ok());

  EXPECT_EQ(count("SELECT count(*) FROM members WHERE user_id = ?", {bob_}), 0);
  EXPECT_EQ(count("SELECT count(*) FROM credentials WHERE user_id = ?", {bob_}), 0);
  // The project itself stays (ownership lives in members); its creator reads as 0.
  auto found = in_read([&](Db& db) { return pdb::find_project(db, p.id); });
  ASSERT_TRUE(found.is_ok());
  EXPECT_EQ(found->created_by, 0);
  EXPECT_EQ(role_of(p.id, alice_), Role::kEditor);
}

// ---------------------------------------------------------------------------------------------
// Invites

TEST_F(ProjectDbTest, InsertsFindsAndCountsInviteUses) {
  Project p = add_project("p", alice_);
  auto id = in_write([&](Db& db) {
    return pdb::insert_invite(db, p.id, "hash-1", Role::kEditor, 2, kNow + 3600s, alice_, kNow);
  });
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();

  auto inv = in_read([](Db& db) { return pdb::find_invite(db, "hash-1"); });
  ASSERT_TRUE(inv.is_ok());
  EXPECT_EQ(inv->id, *id);
  EXPECT_EQ(inv->project_id, p.id);
  EXPECT_EQ(inv->role, Role::kEditor);
  EXPECT_EQ(inv->max_uses, 2);
  EXPECT_EQ(inv->uses, 0);
  EXPECT_EQ(inv->expires_at, kNow + 3600s);
  EXPECT_EQ(inv->created_by, alice_);
  EXPECT_FALSE(inv->revoked);

  ASSERT_TRUE(in_write([&](Db& db) { return pdb::record_invite_use(db, *id); }).is_ok());
  ASSERT_TRUE(in_write([&](Db& db) { return pdb::record_invite_use(db, *id); }).is_ok());
  inv = in_read([](Db& db) { return pdb::find_invite(db, "hash-1"); });
  ASSERT_TRUE(inv.is_ok());
  EXPECT_EQ(inv->uses, 2);
  // Used up: refused, and the count does not go past max_uses.
  EXPECT_EQ(in_write([&](Db& db) { return pdb::record_invite_use(db, *id); }).code(),
            StatusCode::kGone);
  inv = in_read([](Db& db) { return pdb::find_invite(db, "hash-1"); });
  ASSERT_TRUE(inv.is_ok());
  EXPECT_EQ(inv->uses, 2);

  EXPECT_EQ(in_write([](Db& db) { return pdb::record_invite_use(db, 9999); }).code(),
            StatusCode::kNotFound);
}

TEST_F(ProjectDbTest, UnknownInviteIsNotFound) {
  auto inv = in_read([](Db& db) { return pdb::find_invite(db, "no-such-hash"); });
  EXPECT_EQ(inv.status().code(), StatusCode::kNotFound);
}

TEST_F(ProjectDbTest, InviteReportsRevocation) {
  Project p = add_project("p", alice_);
  auto id = in_write([&](Db& db) {
    return pdb::insert_invite(db, p.id, "h", Role::kViewer, 1, kNow + 60s, alice_, kNow);
  });
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(in_write([&](Db& db) {
                return exec_with(db, "UPDATE invites SET revoked_at = ? WHERE id = ?",
                                 {to_unix_s(kNow), *id});
              }).is_ok());
  auto inv = in_read([](Db& db) { return pdb::find_invite(db, "h"); });
  ASSERT_TRUE(inv.is_ok());
  EXPECT_TRUE(inv->revoked);
}

TEST_F(ProjectDbTest, InvalidInvitesAreRefused) {
  Project p = add_project("p", alice_);
  auto zero = in_write([&](Db& db) {
    return pdb::insert_invite(db, p.id, "h0", Role::kViewer, 0, kNow + 60s, alice_, kNow);
  });
  EXPECT_EQ(zero.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(in_write([&](Db& db) {
                return pdb::insert_invite(db, p.id, "h1", Role::kViewer, 1, kNow + 60s, alice_,
                                          kNow);
              }).is_ok());
  auto dup = in_write([&](Db& db) {
    return pdb::insert_invite(db, p.id, "h1", Role::kViewer, 1, kNow + 60s, alice_, kNow);
  });
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
}

// ---------------------------------------------------------------------------------------------
// Events

TEST_F(ProjectDbTest, EventSeqsAreGapFreePerProject) {
  Project a = add_project("a", alice_);
  Project b = add_project("b", alice_);
  EXPECT_EQ(*in_read([&](Db& db) { return pdb::head_seq(db, a.id); }), 0);
  EXPECT_EQ(append(a.id, "x"), 1);
  EXPECT_EQ(append(b.id, "x"), 1);
  EXPECT_EQ(append(a.id, "x"), 2);
  EXPECT_EQ(append(a.id, "x"), 3);
  EXPECT_EQ(append(b.id, "x"), 2);

  // Several appends in one transaction continue the sequence.
  auto last = in_write([&](Db& db) -> Result<int64_t> {
    auto first = pdb::append_event(db, a.id, "y", alice_, "{}", kNow);
    if (!first.is_ok()) return first.status();
    EXPECT_EQ(*first, 4);
    return pdb::append_event(db, a.id, "y", alice_, "{}", kNow);
  });
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ(*last, 5);

  // A rolled-back transaction leaves no gap: its seq is handed out again.
  Status rolled_back = in_write([&](Db& db) -> Status {
    auto seq = pdb::append_event(db, a.id, "z", alice_, "{}", kNow);
    EXPECT_TRUE(seq.is_ok());
    return Status::internal("roll back");
  });
  EXPECT_EQ(rolled_back.code(), StatusCode::kInternal);
  EXPECT_EQ(append(a.id, "x"), 6);

  EXPECT_EQ(*in_read([&](Db& db) { return pdb::head_seq(db, a.id); }), 6);
  EXPECT_EQ(*in_read([&](Db& db) { return pdb::head_seq(db, b.id); }), 2);
  EXPECT_EQ(*in_read([](Db& db) { return pdb::head_seq(db, 9999); }), 0);
}

TEST_F(ProjectDbTest, ListsEventsAfterWithLimit) {
  Project p = add_project("p", alice_);
  append(p.id, "project.created", R"({"name":"p"})");
  append(p.id, "member.joined", R"({"user_id":2})");
  append(p.id, "project.updated", R"({})");

  auto all = in_read([&](Db& db) { return pdb::list_events(db, p.id, 0, 100); });
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 3u);
  const Event& first = (*all)[0];
  EXPECT_EQ(first.project_id, p.id);
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.type, "project.created");
  EXPECT_EQ(first.actor, alice_);
  EXPECT_EQ(first.data_json, R"({"name":"p"})");
  EXPECT_EQ(first.ts, kNow);
  EXPECT_EQ((*all)[1].seq, 2);
  EXPECT_EQ((*all)[2].seq, 3);

  auto page = in_read([&](Db& db) { return pdb::list_events(db, p.id, 1, 1); });
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].seq, 2);
  EXPECT_EQ((*page)[0].type, "member.joined");

  auto tail = in_read([&](Db& db) { return pdb::list_events(db, p.id, 3, 10); });
  ASSERT_TRUE(tail.is_ok());
  EXPECT_TRUE(tail->empty());
  auto none = in_read([&](Db& db) { return pdb::list_events(db, p.id, 0, 0); });
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(ProjectDbTest, EventDataMustBeAJsonObject) {
  Project p = add_project("p", alice_);
  for (const char* bad : {"not json", "[1,2]", "\"s\""}) {
    auto seq =
        in_write([&](Db& db) { return pdb::append_event(db, p.id, "x", alice_, bad, kNow); });
    EXPECT_EQ(seq.status().code(), StatusCode::kFailedPrecondition) << bad;
  }
  EXPECT_EQ(*in_read([&](Db& db) { return pdb::head_seq(db, p.id); }), 0);
}

TEST_F(ProjectDbTest, AppendOutsideATransactionIsRefused) {
  Project p = add_project("p", alice_);
  auto db = Db::open(tmp_ / "atelier.db", store::OpenMode::kReadOnly);
  ASSERT_TRUE(db.is_ok()) << db.status().to_string();
  auto seq = pdb::append_event(*db, p.id, "x", alice_, "{}", kNow);
  EXPECT_EQ(seq.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace atelier::projects
