// Cursor pagination of the lists that grow without bound (projects, members, API tokens) and the
// per-user project limit, over REST against a real in-process server.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/api_test_helpers.h"

namespace atelier::apitest {
namespace {

using testing::TempDir;

class PaginationTest : public ::testing::Test {
 protected:
  uint16_t start(const std::function<void(ServerConfig&)>& tweak = {}) {
    ServerConfig c = test_config(dir_);
    c.registrations_per_ip_per_hour = 1000;  // every account here comes from 127.0.0.1
    c.registrations_per_hour = 1000;
    if (tweak) tweak(c);
    server_ = std::make_unique<TestServer>(c);
    return server_->port();
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

std::string with_query(const std::string& path, const std::string& query) {
  return path + (path.find('?') == std::string::npos ? "?" : "&") + query;
}

// Follows next_before from the first page of `path` at `limit` a page; returns the `id_key` of
// every item in the order served. Checks each page's shape on the way: a full page names the
// next cursor (its last id), a shorter one ends the list with null.
std::vector<int64_t> walk_pages(uint16_t port, const std::string& token, const std::string& path,
                                const std::string& list_key, const std::string& id_key, int limit,
                                int* pages = nullptr) {
  std::vector<int64_t> ids;
  std::string target = with_query(path, "limit=" + std::to_string(limit));
  for (int page = 1;; ++page) {
    if (page > 100) throw std::runtime_error("the pages of " + path + " never end");
    if (pages) *pages = page;
    auto r = expect_status(call(port, "GET", target, "", bearer(token)), 200, "GET " + target);
    const auto& items = r.json.at(list_key);
    EXPECT_LE(items.size(), static_cast<size_t>(limit)) << r.body;
    for (const auto& item : items) ids.push_back(item.at(id_key).get<int64_t>());
    const auto& next = r.json.at("next_before");
    if (items.size() < static_cast<size_t>(limit)) {
      EXPECT_TRUE(next.is_null()) << r.body;
      return ids;
    }
    EXPECT_EQ(next, items.back().at(id_key)) << r.body;
    if (next.is_null()) return ids;
    target = with_query(
        path, "limit=" + std::to_string(limit) + "&before=" + std::to_string(next.get<int64_t>()));
  }
}

std::vector<int64_t> descending(std::vector<int64_t> ids) {
  std::sort(ids.begin(), ids.end(), std::greater<>());
  return ids;
}

// limit below 1 or not an integer, and a cursor that is no id: 400 naming the parameter; a
// limit above the most a page holds is read as that most (like jobs and images).
void expect_page_parameters_checked(uint16_t port, const std::string& token,
                                    const std::string& path, const std::string& list_key) {
  SCOPED_TRACE(path);
  for (const std::string bad : {"0", "-1", "abc", "1.5", "2x"}) {
    auto r = call(port, "GET", with_query(path, "limit=" + bad), "", bearer(token));
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_EQ(r.error_field(), "limit") << r.body;
  }
  for (const std::string bad : {"0", "-3", "abc", "9x", "99999999999999999999"}) {
    auto r = call(port, "GET", with_query(path, "before=" + bad), "", bearer(token));
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_EQ(r.error_field(), "before") << r.body;
  }
  auto big = call(port, "GET", with_query(path, "limit=100000"), "", bearer(token));
  EXPECT_EQ(big.status, 200) << big.body;
  EXPECT_TRUE(big.json[list_key].is_array()) << big.body;
  // Without parameters: the first page (everything here, so no next page).
  auto plain = call(port, "GET", path, "", bearer(token));
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_TRUE(plain.json["next_before"].is_null()) << plain.body;
}

TEST_F(PaginationTest, ProjectPagesCoverEveryProjectOnceNewestFirst) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  std::vector<int64_t> adas;
  for (int i = 0; i < 7; ++i)
    adas.push_back(create_project(port, ada.token, "a" + std::to_string(i)));
  // Bob's own projects, one of which Ada joins: she sees that one and not the other.
  int64_t shared = create_project(port, bob.token, "shared");
  create_project(port, bob.token, "private");
  set_member(port, bob.token, shared, ada.id, "viewer");
  adas.push_back(shared);
  adas.push_back(create_project(port, ada.token, "last"));

  for (int limit : {1, 2, 3, 9, 10, 200}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    int pages = 0;
    auto seen = walk_pages(port, ada.token, "/api/v1/projects", "projects", "id", limit, &pages);
    EXPECT_EQ(seen, descending(adas));
    EXPECT_EQ(pages, static_cast<int>(adas.size()) / limit + 1);
  }
  // Each item still carries the caller's role.
  auto first = call(port, "GET", "/api/v1/projects?limit=2&before=" + std::to_string(adas.back()),
                    "", bearer(ada.token));
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(first.json["projects"].size(), 2u);
  EXPECT_EQ(first.json["projects"][0]["id"], shared);
  EXPECT_EQ(first.json["projects"][0]["role"], "viewer");
  EXPECT_EQ(first.json["projects"][1]["role"], "owner");
  // A cursor past every id is simply an empty page.
  auto past = call(port, "GET", "/api/v1/projects?before=1", "", bearer(ada.token));
  ASSERT_EQ(past.status, 200) << past.body;
  EXPECT_TRUE(past.json["projects"].empty());
  EXPECT_TRUE(past.json["next_before"].is_null());
}

TEST_F(PaginationTest, ProjectListChecksItsParameters) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  create_project(port, ada.token);
  expect_page_parameters_checked(port, ada.token, "/api/v1/projects", "projects");
}

TEST_F(PaginationTest, MemberPagesCoverEveryMemberOnce) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  int64_t project = create_project(port, ada.token);
  std::vector<int64_t> members = {ada.id};
  for (int i = 0; i < 6; ++i) {
    Account a = register_account(port, "member" + std::to_string(i));
    set_member(port, ada.token, project, a.id, i % 2 ? "viewer" : "editor");
    members.push_back(a.id);
  }
  Account outsider = register_account(port, "outsider");
  (void)outsider;
  for (int limit : {1, 3, 7, 50}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    auto seen =
        walk_pages(port, ada.token, project_path(project, "/members"), "members", "user_id", limit);
    EXPECT_EQ(seen, descending(members));
  }
  auto page = call(port, "GET", project_path(project, "/members?limit=1"), "", bearer(ada.token));
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.json["members"][0]["username"], "member5");
  EXPECT_EQ(page.json["members"][0]["role"], "viewer");
  expect_page_parameters_checked(port, ada.token, project_path(project, "/members"), "members");
}

TEST_F(PaginationTest, TokenPagesCoverEveryUsableTokenOnce) {
  uint16_t port = start();
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  std::vector<int64_t> tokens;
  for (int i = 0; i < 5; ++i) {
    tokens.push_back(create_api_token(port, ada.token, "read", "t" + std::to_string(i)).id);
  }
  create_api_token(port, bob.token, "read", "bob's");
  // A revoked token is not listed, and does not upset the cursor.
  ApiToken revoked = create_api_token(port, ada.token, "read", "revoked");
  ASSERT_EQ(
      call(port, "DELETE", "/api/v1/tokens/" + std::to_string(revoked.id), "", bearer(ada.token))
          .status,
      204);
  tokens.push_back(create_api_token(port, ada.token, "admin", "newest").id);
  for (int limit : {1, 2, 6, 7}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    EXPECT_EQ(walk_pages(port, ada.token, "/api/v1/tokens", "tokens", "id", limit),
              descending(tokens));
  }
  expect_page_parameters_checked(port, ada.token, "/api/v1/tokens", "tokens");
}

// Admins page through every account (disabled ones included), newest first.
TEST_F(PaginationTest, AdminUserPagesCoverEveryAccountOnce) {
  uint16_t port = start();
  Account admin = register_account(port, "root");  // the first account: an instance admin
  std::vector<int64_t> users = {admin.id};
  for (int i = 0; i < 6; ++i)
    users.push_back(register_account(port, "user" + std::to_string(i)).id);
  ASSERT_EQ(call(port, "PATCH", "/api/v1/admin/users/" + std::to_string(users[2]),
                 R"({"disabled":true})", bearer(admin.token))
                .status,
            200);
  for (int limit : {1, 3, 7, 8}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    EXPECT_EQ(walk_pages(port, admin.token, "/api/v1/admin/users", "users", "id", limit),
              descending(users));
  }
  expect_page_parameters_checked(port, admin.token, "/api/v1/admin/users", "users");
}

size_t project_count(uint16_t port, const std::string& token) {
  return walk_pages(port, token, "/api/v1/projects", "projects", "id", 200).size();
}

// Usable API tokens per user are capped; revoking one (or its expiry) frees a place.
TEST_F(PaginationTest, CreatingMoreTokensThanTheLimitIsRefused) {
  uint16_t port = start([](ServerConfig& c) { c.max_tokens_per_user = 2; });
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  ApiToken first = create_api_token(port, ada.token, "read", "one");
  create_api_token(port, ada.token, "read", "two");
  auto refused =
      call(port, "POST", "/api/v1/tokens", R"({"name":"three","scope":"read"})", bearer(ada.token));
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("max_tokens_per_user"), std::string::npos) << refused.body;
  EXPECT_EQ(walk_pages(port, ada.token, "/api/v1/tokens", "tokens", "id", 200).size(), 2u);
  // Another user's tokens do not count.
  create_api_token(port, bob.token, "read", "bob's");
  // Revoking one frees a place.
  ASSERT_EQ(
      call(port, "DELETE", "/api/v1/tokens/" + std::to_string(first.id), "", bearer(ada.token))
          .status,
      204);
  create_api_token(port, ada.token, "read", "three");
}

TEST_F(PaginationTest, CreatingMoreProjectsThanTheLimitIsRefusedAndCreatesNothing) {
  uint16_t port = start([](ServerConfig& c) { c.max_projects_per_user = 2; });
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  int64_t first = create_project(port, ada.token, "one");
  create_project(port, ada.token, "two");
  // Being a mere member of others' projects does not count.
  int64_t bobs = create_project(port, bob.token, "bob's");
  set_member(port, bob.token, bobs, ada.id, "editor");

  auto refused = call(port, "POST", "/api/v1/projects", R"({"name":"three"})", bearer(ada.token));
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(refused.error_code(), "forbidden") << refused.body;
  const std::string message = refused.json["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("max_projects_per_user"), std::string::npos) << message;
  EXPECT_NE(message.find("2"), std::string::npos) << message;
  EXPECT_EQ(project_count(port, ada.token), 3u);  // two owned, one joined: nothing new
  // Nor did an event or a project row appear for anybody else.
  EXPECT_EQ(project_count(port, bob.token), 1u);

  // Deleting one makes room again; the limit is per user.
  ASSERT_EQ(call(port, "DELETE", project_path(first), "", bearer(ada.token)).status, 204);
  create_project(port, ada.token, "three");
  create_project(port, bob.token, "bob's second");
}

TEST_F(PaginationTest, BecomingAnOwnerCountsAgainstTheLimitToo) {
  uint16_t port = start([](ServerConfig& c) { c.max_projects_per_user = 1; });
  Account ada = register_account(port, "ada");
  Account bob = register_account(port, "bob");
  int64_t adas = create_project(port, ada.token, "ada's");
  create_project(port, bob.token, "bob's");  // bob is at the limit

  // Ada cannot hand her project to Bob (and so make room for another of her own).
  auto promote =
      call(port, "PUT", member_path(adas, bob.id), R"({"role":"owner"})", bearer(ada.token));
  EXPECT_EQ(promote.status, 409) << promote.body;
  EXPECT_NE(promote.body.find("max_projects_per_user"), std::string::npos) << promote.body;
  // Nothing changed: Bob is not even a member.
  EXPECT_EQ(call(port, "GET", project_path(adas), "", bearer(bob.token)).status, 404);
  // Any lesser role is fine.
  set_member(port, ada.token, adas, bob.id, "editor");

  // An owner invite is refused the same way, and rolled back: the invite is still unused.
  std::string code = create_invite(port, ada.token, adas, "owner", {{"max_uses", 1}});
  auto accept = accept_invite_call(port, bob.token, code);
  EXPECT_EQ(accept.status, 403) << accept.body;
  EXPECT_NE(accept.body.find("max_projects_per_user"), std::string::npos) << accept.body;
  auto role = call(port, "GET", project_path(adas), "", bearer(bob.token));
  ASSERT_EQ(role.status, 200) << role.body;
  EXPECT_EQ(role.json["role"], "editor");
  Account cy = register_account(port, "cyd");
  auto cys = accept_invite_call(port, cy.token, code);
  EXPECT_EQ(cys.status, 200) << cys.body;
  EXPECT_EQ(cys.json["project"]["role"], "owner");
}

}  // namespace
}  // namespace atelier::apitest
