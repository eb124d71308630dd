// Project membership over REST against a real in-process server: the last-owner rule, invites
// (used up, unknown, expired) and the durable, gap-free event log that membership changes write.
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "server/api/api_context.h"
#include "server/api/event_json.h"
#include "server/api/invites.h"
#include "server/events/event_log.h"
#include "server/projects/project_db.h"
#include "server/store/store.h"
#include "tests/integration/api_test_helpers.h"

namespace atelier::apitest {
namespace {

using testing::TempDir;

class ProjectMembershipTest : public ::testing::Test {
 protected:
  uint16_t start() {
    server_ = std::make_unique<TestServer>(test_config(dir_));
    return server_->port();
  }
  // The server's database, opened by the test after the server has shut down (one writer).
  std::unique_ptr<store::Store> open_store() {
    server_->stop();
    auto store = store::Store::open({.path = dir_ / "data" / "atelier.db", .reader_count = 1});
    if (!store.is_ok()) throw std::runtime_error(store.status().to_string());
    return std::move(*store);
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

std::vector<std::pair<std::string, int64_t>> members_of(uint16_t port, const std::string& token,
                                                        int64_t project) {
  auto r = expect_status(call(port, "GET", project_path(project, "/members"), "", bearer(token)),
                         200, "list members");
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& m : r.json["members"]) {
    out.emplace_back(m["username"].get<std::string>() + ":" + m["role"].get<std::string>(),
                     m["user_id"].get<int64_t>());
  }
  return out;
}

TEST_F(ProjectMembershipTest, TheLastOwnerCanNeitherLeaveNorBeDemoted) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  int64_t project = create_project(port, ada.token);
  set_member(port, ada.token, project, bob.id, "editor");

  auto demote =
      call(port, "PUT", member_path(project, ada.id), R"({"role":"editor"})", bearer(ada.token));
  EXPECT_EQ(demote.status, 409) << demote.body;
  EXPECT_EQ(demote.error_code(), "failed_precondition");
  auto leave = call(port, "DELETE", member_path(project, ada.id), "", bearer(ada.token));
  EXPECT_EQ(leave.status, 409) << leave.body;
  // Re-stating the owner role is no demotion.
  EXPECT_EQ(
      call(port, "PUT", member_path(project, ada.id), R"({"role":"owner"})", bearer(ada.token))
          .status,
      200);

  // With a second owner, either may step down.
  set_member(port, ada.token, project, bob.id, "owner");
  auto step_down =
      call(port, "PUT", member_path(project, ada.id), R"({"role":"editor"})", bearer(ada.token));
  EXPECT_EQ(step_down.status, 200) << step_down.body;
  EXPECT_EQ(step_down.json["role"], "editor");
  // Now bob is the only owner, and the rule protects him in turn.
  EXPECT_EQ(call(port, "DELETE", member_path(project, bob.id), "", bearer(bob.token)).status, 409);
  EXPECT_EQ(
      call(port, "PUT", member_path(project, bob.id), R"({"role":"viewer"})", bearer(bob.token))
          .status,
      409);
  EXPECT_EQ(call(port, "DELETE", member_path(project, ada.id), "", bearer(bob.token)).status, 204);
  auto members = members_of(port, bob.token, project);
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].first, "bob:owner");
}

TEST_F(ProjectMembershipTest, InvitesAreUsedUpAfterMaxUses) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  Account carol = register_account(port, "carol");
  int64_t project = create_project(port, ada.token);
  std::string code = create_invite(port, ada.token, project, "viewer", {{"max_uses", 1}});

  auto joined = accept_invite_call(port, bob.token, code);
  ASSERT_EQ(joined.status, 200) << joined.body;
  EXPECT_EQ(joined.json["project"]["id"], project);
  EXPECT_EQ(joined.json["project"]["role"], "viewer");

  auto used_up = accept_invite_call(port, carol.token, code);
  EXPECT_EQ(used_up.status, 410) << used_up.body;
  EXPECT_EQ(used_up.error_code(), "gone");
  EXPECT_EQ(call(port, "GET", project_path(project), "", bearer(carol.token)).status, 404);

  EXPECT_EQ(accept_invite_call(port, carol.token, "atl_i_no-such-code").status, 404);
  // The owner's own invite never lowers the owner's role.
  std::string again = create_invite(port, ada.token, project, "viewer", {{"max_uses", 2}});
  auto owner = accept_invite_call(port, ada.token, again);
  ASSERT_EQ(owner.status, 200) << owner.body;
  EXPECT_EQ(owner.json["project"]["role"], "owner");
  // ...and, changing nothing, did not count as a use: two people can still join with it.
  EXPECT_EQ(accept_invite_call(port, carol.token, again).status, 200);
  Account dave = register_account(port, "dave");
  EXPECT_EQ(accept_invite_call(port, dave.token, again).status, 200);
}

TEST_F(ProjectMembershipTest, InviteBodiesAreChecked) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  int64_t project = create_project(port, ada.token);
  struct Case {
    std::string body;
    std::string field;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"role":"viewer","expires_in_s":59})", "expires_in_s"},  // minimum is 60
           {R"({"role":"viewer","max_uses":0})", "max_uses"},
           {R"({"role":"viewer","max_uses":1001})", "max_uses"},
           {R"({"role":"admin"})", "role"},
           {R"({})", "role"},
           {R"({"role":"viewer","project_id":1})", "project_id"},
       }) {
    auto r = call(port, "POST", project_path(project, "/invites"), c.body, bearer(ada.token));
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_EQ(r.error_field(), c.field) << c.body;
  }
}

// "2026-11-26T06:33:19Z" -> Unix seconds.
int64_t parse_time(const std::string& text) {
  std::tm tm{};
  if (!strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
    throw std::runtime_error("bad time " + text);
  }
  return static_cast<int64_t>(timegm(&tm));
}

// Expiry needs a clock the test controls, and App's is the system clock (the shortest invite
// lives 60 s). So the invite is made over REST and then accepted through api::accept_invite,
// the function the accept route and registration call, with an ApiContext whose now() we set.
TEST_F(ProjectMembershipTest, InvitesExpireAtExpiresAt) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  int64_t project = create_project(port, ada.token);
  auto created =
      expect_status(call(port, "POST", project_path(project, "/invites"),
                         R"({"role":"editor","expires_in_s":60,"max_uses":3})", bearer(ada.token)),
                    201, "create invite");
  const std::string code = created.json["code"].get<std::string>();
  const int64_t expires_at = parse_time(created.json["expires_at"].get<std::string>());

  auto store = open_store();
  int64_t fake_now = 0;
  api::ApiContext ctx;
  ctx.store = store.get();
  ctx.now = [&fake_now] { return from_unix_s(fake_now); };
  events::EventBus bus;
  events::EventLog event_log(bus, api::event_data_json);
  ctx.events = &event_log;
  auto accept = [&](int64_t now, projects::Role* role, const std::string& with = {}) {
    fake_now = now;
    return store->write([&](store::Db& db) -> Status {
      auto joined = api::accept_invite(db, ctx, with.empty() ? code : with, bob.id);
      if (!joined.is_ok()) return joined.status();
      *role = joined->role;
      return Status::ok();
    });
  };

  projects::Role role = projects::Role::kViewer;
  Status at_expiry = accept(expires_at, &role);
  EXPECT_EQ(at_expiry.code(), StatusCode::kGone) << at_expiry.to_string();
  EXPECT_EQ(accept(expires_at + 3600, &role).code(), StatusCode::kGone);
  Status before = accept(expires_at - 1, &role);
  ASSERT_TRUE(before.is_ok()) << before.to_string();
  EXPECT_EQ(role, projects::Role::kEditor);

  std::optional<projects::Role> member;
  Status read = store->read([&](store::Db& db) -> Status {
    auto r = projects::project_db::member_role(db, project, bob.id);
    if (!r.is_ok()) return r.status();
    member = *r;
    return Status::ok();
  });
  ASSERT_TRUE(read.is_ok()) << read.to_string();
  EXPECT_EQ(member, projects::Role::kEditor);
  // Accepting again changes nothing and is no error; an unknown code is kNotFound (404).
  EXPECT_EQ(accept(expires_at - 1, &role).code(), StatusCode::kOk);
  EXPECT_EQ(accept(expires_at - 1, &role, "atl_i_no-such-code").code(), StatusCode::kNotFound);
  store->close();
}

TEST_F(ProjectMembershipTest, MembershipChangesAreRecordedWithGapFreeSeq) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  Account carol = register_account(port, "carol");
  int64_t project = create_project(port, ada.token);         // 1 project.created
  set_member(port, ada.token, project, carol.id, "editor");  // 2 member.added
  std::string code = create_invite(port, ada.token, project, "viewer");
  ASSERT_EQ(accept_invite_call(port, bob.token, code).status, 200);  // 3 member.joined
  set_member(port, ada.token, project, carol.id, "viewer");          // 4 member.role_changed
  // Refused changes roll back whole: they must not use up a seq.
  EXPECT_EQ(
      call(port, "PUT", member_path(project, ada.id), R"({"role":"viewer"})", bearer(ada.token))
          .status,
      409);
  EXPECT_EQ(call(port, "DELETE", member_path(project, ada.id), "", bearer(carol.token)).status,
            403);
  EXPECT_EQ(call(port, "DELETE", member_path(project, carol.id), "", bearer(ada.token)).status,
            204);  // 5 member.removed
  EXPECT_EQ(call(port, "DELETE", member_path(project, bob.id), "", bearer(bob.token)).status,
            204);  // 6 member.left
  EXPECT_EQ(
      call(port, "PATCH", project_path(project), R"({"name":"Renamed"})", bearer(ada.token)).status,
      200);  // 7 project.updated
  // Another project's log is separate and starts at 1 too.
  int64_t other = create_project(port, bob.token, "Elsewhere");

  auto store = open_store();
  std::vector<projects::Event> events;
  std::vector<projects::Event> other_events;
  Status st = store->read([&](store::Db& db) -> Status {
    auto list = projects::project_db::list_events(db, project, 0, 1000);
    if (!list.is_ok()) return list.status();
    events = *list;
    auto second = projects::project_db::list_events(db, other, 0, 1000);
    if (!second.is_ok()) return second.status();
    other_events = *second;
    return Status::ok();
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  store->close();

  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"project.created", ada.id},     {"member.added", ada.id},   {"member.joined", bob.id},
      {"member.role_changed", ada.id}, {"member.removed", ada.id}, {"member.left", bob.id},
      {"project.updated", ada.id},
  };
  ASSERT_EQ(events.size(), expected.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq, static_cast<int64_t>(i + 1)) << "event " << i;
    EXPECT_EQ(events[i].project_id, project);
    EXPECT_EQ(events[i].type, expected[i].first) << "event " << i;
    EXPECT_EQ(events[i].actor, expected[i].second) << events[i].type;
    EXPECT_TRUE(nlohmann::json::parse(events[i].data_json, nullptr, false).is_object())
        << events[i].data_json;
  }
  auto data = [&](size_t i) { return nlohmann::json::parse(events[i].data_json); };
  EXPECT_EQ(data(1)["user_id"], carol.id);
  EXPECT_EQ(data(1)["role"], "editor");
  EXPECT_EQ(data(2)["user_id"], bob.id);
  EXPECT_EQ(data(2)["via"], "invite");
  EXPECT_EQ(data(3)["role"], "viewer");
  EXPECT_EQ(data(4)["user_id"], carol.id);
  EXPECT_EQ(data(5)["user_id"], bob.id);
  EXPECT_EQ(data(6)["name"], "Renamed");
  // Nothing secret goes into the log.
  for (const auto& e : events) EXPECT_EQ(e.data_json.find(code), std::string::npos);

  ASSERT_EQ(other_events.size(), 1u);
  EXPECT_EQ(other_events[0].seq, 1);
  EXPECT_EQ(other_events[0].type, "project.created");
}

}  // namespace
}  // namespace atelier::apitest
