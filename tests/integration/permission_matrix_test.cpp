// Who may call what: every REST endpoint x every kind of caller -> the expected status, against
// ONE real in-process server.
//
// The rules under test (server/api/access.h, the handlers):
//   - anonymous callers get 401 everywhere except registration, login and the system routes;
//   - routes that name a project check membership first (non-members, instance admins
//     included, get 404: a project id leaks nothing), then the credential's scope (403), then
//     the member's role (403);
//   - browser sessions carry scope "admin" (all the user may do); API tokens carry the scope
//     they were made with. The two tokens here belong to the project's owner, so whatever they
//     are refused is refused for their scope, never for their role;
//   - /admin/* needs an instance admin (and admin scope).
// Users authenticate with their session secret as a Bearer token: the Origin check on cookies
// is covered in accounts_security_test.cpp, and here it would only add noise.
//
// The table must cover every (METHOD, path) of proto/openapi.yaml and of the router: a new
// endpoint without a row fails the coverage test. Cells with side effects (deleting, leaving,
// revoking, accepting, disabling) get fresh targets from their row's `prepare`, so the cells are
// independent of each other and of their order.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <functional>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>

#include "common/image.h"
#include "server/app/routes.h"
#include "tests/integration/job_test_helpers.h"

namespace atelier::apitest {
namespace {

using testing::TempDir;

enum Who {
  kAnonymous,
  kOther,
  kViewer,
  kEditor,
  kOwner,
  kAdmin,
  kReadToken,
  kSubmitToken,
  kWhoCount
};
constexpr std::array<const char*, kWhoCount> kWhoNames = {
    "anonymous", "other", "viewer", "editor", "owner", "admin", "read-token", "submit-token"};

// The server and the cast, made once for the whole table.
struct World {
  uint16_t port = 0;
  Account admin;         // the first account, so an instance admin; a member of nothing
  Account owner;         // owns `project` and both tokens
  Account editor;        // editor of `project` (and of every fresh project)
  Account viewer;        // viewer of `project` (and of every fresh project)
  Account other;         // a plain user, a member of nothing
  Account target;        // whom member rows add and remove; never a caller
  Account login_target;  // whose credentials the login row sends
  ApiToken read_token;
  ApiToken submit_token;
  int64_t project = 0;
  int64_t job = 0;      // the owner's finished job in `project`
  int64_t image = 0;    // its image
  int64_t blocker = 0;  // the owner's endless job that keeps the one worker busy
  int fresh_names = 0;

  std::string fresh_username() { return "fresh" + std::to_string(++fresh_names); }

  const Account* account(Who who) const {
    switch (who) {
      case kOther:
        return &other;
      case kViewer:
        return &viewer;
      case kEditor:
        return &editor;
      case kAdmin:
        return &admin;
      case kOwner:
      case kReadToken:
      case kSubmitToken:
        return &owner;  // the tokens act as the owner
      default:
        return nullptr;
    }
  }
  // The user id a caller acts as (the owner's for anonymous, for paths that need some id).
  int64_t user_id(Who who) const { return who == kAnonymous ? owner.id : account(who)->id; }

  std::string credential(Who who) const {
    switch (who) {
      case kAnonymous:
        return {};
      case kReadToken:
        return bearer(read_token.secret);
      case kSubmitToken:
        return bearer(submit_token.secret);
      default:
        return bearer(account(who)->token);
    }
  }
  // A new credential of the same kind, for cells that revoke the one they use.
  std::string fresh_credential(Who who) {
    switch (who) {
      case kAnonymous:
        return {};
      case kReadToken:
        return bearer(create_api_token(port, owner.token, "read").secret);
      case kSubmitToken:
        return bearer(create_api_token(port, owner.token, "submit").secret);
      default:
        return bearer(login(port, account(who)->username).token);
    }
  }
  // A project of the owner's with the editor and viewer as members, like `project`.
  int64_t fresh_project() {
    int64_t id = create_project(port, owner.token, "Throwaway");
    set_member(port, owner.token, id, editor.id, "editor");
    set_member(port, owner.token, id, viewer.id, "viewer");
    return id;
  }
};

// What one cell sends.
struct Cell {
  std::string path;
  std::string body;
  std::optional<std::string> credential;  // overrides World::credential(who)
  std::string headers;                    // more header lines (e.g. a Content-Type)
};

struct Row {
  std::string method;
  std::string path;     // as proto/openapi.yaml spells it
  std::string variant;  // tells rows of one endpoint apart
  std::function<Cell(World&, Who)> prepare;
  // anonymous, other, viewer, editor, owner, admin, read-token, submit-token
  std::array<int, kWhoCount> expected;
};

Cell fixed(std::string path, std::string body = {}) {
  return Cell{std::move(path), std::move(body), {}, {}};
}

// A 4 x 4 PNG for the upload rows.
std::string tiny_png() {
  image::Image img{4, 4, 3, std::vector<uint8_t>(4 * 4 * 3, 128)};
  auto png = image::encode_png(img);
  if (!png.is_ok()) throw std::runtime_error("encode_png: " + png.status().to_string());
  return std::string(png->begin(), png->end());
}

// Shorthands for rows that target the shared project.
std::function<Cell(World&, Who)> on_project(std::string rest, std::string body = {}) {
  return [rest, body](World& w, Who) { return fixed(project_path(w.project, rest), body); };
}

std::vector<Row> build_rows() {
  std::vector<Row> rows;
  auto add = [&](std::string method, std::string path, std::string variant,
                 std::function<Cell(World&, Who)> prepare, std::array<int, kWhoCount> expected) {
    rows.push_back(
        {std::move(method), std::move(path), std::move(variant), std::move(prepare), expected});
  };
  auto path_only = [](std::string p) { return [p](World&, Who) { return fixed(p); }; };
  // Expected statuses are in Who order:
  //   {anonymous, other, viewer, editor, owner, admin, read-token, submit-token}

  // System routes are for probes and scrapers: no credential is needed or looked at.
  add("GET", "/healthz", "", path_only("/healthz"), {200, 200, 200, 200, 200, 200, 200, 200});
  add("GET", "/readyz", "", path_only("/readyz"), {200, 200, 200, 200, 200, 200, 200, 200});
  add("GET", "/metrics", "", path_only("/metrics"), {200, 200, 200, 200, 200, 200, 200, 200});
  add("GET", "/api/v1/info", "", path_only("/api/v1/info"),
      {200, 200, 200, 200, 200, 200, 200, 200});

  // Registration (open mode) ignores who is asking; each cell registers a new name.
  add("POST", "/api/v1/auth/register", "new username",
      [](World& w, Who) {
        nlohmann::json b = {{"username", w.fresh_username()}, {"password", kPassword}};
        return fixed("/api/v1/auth/register", b.dump());
      },
      {201, 201, 201, 201, 201, 201, 201, 201});
  // Login ignores the caller too: the body's credentials are what count.
  add("POST", "/api/v1/auth/login", "right password",
      [](World& w, Who) {
        nlohmann::json b = {{"username", w.login_target.username}, {"password", kPassword}};
        return fixed("/api/v1/auth/login", b.dump());
      },
      {200, 200, 200, 200, 200, 200, 200, 200});
  // Logout revokes the credential it came with, so each cell brings a fresh one. It needs no
  // scope: a token may always revoke itself.
  add("POST", "/api/v1/auth/logout", "fresh credential",
      [](World& w, Who who) {
        return Cell{"/api/v1/auth/logout", "", w.fresh_credential(who)};
      },
      {401, 204, 204, 204, 204, 204, 204, 204});
  // Changing one's own password is account management: sessions (and admin-scope tokens), not
  // read or submit tokens. Each cell's new password is too short (400) so that no cell changes a
  // password, which would revoke the credentials other rows use (revocation_test.cpp changes it).
  add("POST", "/api/v1/auth/password", "new password too short",
      [](World&, Who) {
        nlohmann::json b = {{"current_password", kPassword}, {"new_password", "short"}};
        return fixed("/api/v1/auth/password", b.dump());
      },
      {401, 400, 400, 400, 400, 400, 403, 403});
  // Anyone signed in may ask who they are, whatever the scope.
  add("GET", "/api/v1/me", "", path_only("/api/v1/me"), {401, 200, 200, 200, 200, 200, 200, 200});

  // Token management needs admin scope (a token must not mint or list tokens): sessions pass,
  // read and submit tokens get 403.
  add("GET", "/api/v1/tokens", "", path_only("/api/v1/tokens"),
      {401, 200, 200, 200, 200, 200, 403, 403});
  add("POST", "/api/v1/tokens", "",
      [](World&, Who) { return fixed("/api/v1/tokens", R"({"name":"matrix","scope":"read"})"); },
      {401, 201, 201, 201, 201, 201, 403, 403});
  // A fresh token of the owner's per cell. Scope is checked first (403 for tokens); then only
  // the owner finds it: for anyone else it does not exist (404), instance admins included.
  add("DELETE", "/api/v1/tokens/{id}", "owner's fresh token",
      [](World& w, Who) {
        auto t = create_api_token(w.port, w.owner.token, "read", "victim");
        return fixed("/api/v1/tokens/" + std::to_string(t.id));
      },
      {401, 404, 404, 404, 204, 404, 403, 403});

  // Instance administration: only the admin; project roles do not matter.
  add("GET", "/api/v1/admin/users", "", path_only("/api/v1/admin/users"),
      {401, 403, 403, 403, 403, 200, 403, 403});
  add("PATCH", "/api/v1/admin/users/{id}", "disable a fresh user",
      [](World& w, Who) {
        Account victim = register_account(w.port, w.fresh_username());
        return fixed("/api/v1/admin/users/" + std::to_string(victim.id), R"({"disabled":true})");
      },
      {401, 403, 403, 403, 403, 200, 403, 403});

  // Any user may create a project (and owns it); it needs admin scope, so not tokens.
  add("POST", "/api/v1/projects", "",
      [](World&, Who) { return fixed("/api/v1/projects", R"({"name":"Matrix"})"); },
      {401, 201, 201, 201, 201, 201, 403, 403});
  // The list is of the caller's own projects, so it is 200 for everyone signed in (read scope).
  add("GET", "/api/v1/projects", "", path_only("/api/v1/projects"),
      {401, 200, 200, 200, 200, 200, 200, 200});

  // Reading a project: any member, read scope. Non-members (the admin too) get 404.
  add("GET", "/api/v1/projects/{id}", "", on_project(""), {401, 404, 200, 200, 200, 404, 200, 200});
  // A project that does not exist answers exactly as one you are not a member of.
  add("GET", "/api/v1/projects/{id}", "no such project", path_only(project_path(999999)),
      {401, 404, 404, 404, 404, 404, 404, 404});
  // Editing needs editor role and admin scope; the viewer is a member (403, not 404).
  add("PATCH", "/api/v1/projects/{id}", "", on_project("", R"({"description":"edited"})"),
      {401, 404, 403, 200, 200, 404, 403, 403});
  // Deleting needs the owner; each cell deletes (or fails to delete) its own fresh project.
  add("DELETE", "/api/v1/projects/{id}", "fresh project",
      [](World& w, Who) { return fixed(project_path(w.fresh_project())); },
      {401, 404, 403, 403, 204, 404, 403, 403});

  add("GET", "/api/v1/projects/{id}/members", "", on_project("/members"),
      {401, 404, 200, 200, 200, 404, 200, 200});
  // Granting roles is the owner's (admin scope); a fresh project per cell keeps the shared
  // project's membership, which other rows depend on, unchanged.
  add("PUT", "/api/v1/projects/{id}/members/{user_id}", "add target to a fresh project",
      [](World& w, Who) {
        return fixed(member_path(w.fresh_project(), w.target.id), R"({"role":"viewer"})");
      },
      {401, 404, 403, 403, 200, 404, 403, 403});
  // Removing someone else is the owner's.
  add("DELETE", "/api/v1/projects/{id}/members/{user_id}", "remove target from a fresh project",
      [](World& w, Who) {
        int64_t id = w.fresh_project();
        set_member(w.port, w.owner.token, id, w.target.id, "viewer");
        return fixed(member_path(id, w.target.id));
      },
      {401, 404, 403, 403, 204, 404, 403, 403});
  // Leaving (user_id = the caller) needs only membership and admin scope; the owner is the
  // fresh project's only owner, so leaving is refused (409). The tokens act as the owner and are
  // stopped by scope first.
  add("DELETE", "/api/v1/projects/{id}/members/{user_id}", "leave a fresh project",
      [](World& w, Who who) { return fixed(member_path(w.fresh_project(), w.user_id(who))); },
      {401, 404, 204, 204, 409, 404, 403, 403});

  // Only owners invite; it needs admin scope. Invites pile up harmlessly on the shared project.
  add("POST", "/api/v1/projects/{id}/invites", "", on_project("/invites", R"({"role":"viewer"})"),
      {401, 404, 403, 403, 201, 404, 403, 403});
  // The code is the capability: any signed-in user may accept (admin scope, since it changes
  // memberships), and members keep their higher role. A fresh single-use invite per cell.
  add("POST", "/api/v1/invites/{code}/accept", "fresh invite to a fresh project",
      [](World& w, Who) {
        std::string code = create_invite(w.port, w.owner.token, w.fresh_project(), "viewer");
        return fixed("/api/v1/invites/" + code + "/accept");
      },
      {401, 200, 200, 200, 200, 200, 403, 403});

  // Generation. Models: anyone signed in.
  add("GET", "/api/v1/models", "", path_only("/api/v1/models"),
      {401, 200, 200, 200, 200, 200, 200, 200});
  // Submitting needs the editor role and submit scope. The jobs queue behind the blocker.
  add("POST", "/api/v1/projects/{id}/jobs", "",
      on_project("/jobs", R"({"model":"null","prompt":"matrix"})"),
      {401, 404, 403, 202, 202, 404, 403, 202});
  add("GET", "/api/v1/projects/{id}/jobs", "", on_project("/jobs"),
      {401, 404, 200, 200, 200, 404, 200, 200});
  add("GET", "/api/v1/jobs/{id}", "", [](World& w, Who) { return fixed(job_path(w.job)); },
      {401, 404, 200, 200, 200, 404, 200, 200});
  // A finished job's stream answers its terminal event at once and ends.
  add("GET", "/api/v1/jobs/{id}/events", "finished job",
      [](World& w, Who) { return fixed(job_path(w.job, "/events")); },
      {401, 404, 200, 200, 200, 404, 200, 200});
  // Cancelling: the submitter (the owner here) or an owner, with submit scope; the editor is
  // neither. A fresh queued job of the owner's per cell.
  add("POST", "/api/v1/jobs/{id}/cancel", "owner's fresh queued job",
      [](World& w, Who) {
        int64_t id =
            submit_ok(w.port, w.owner.token, w.project, {{"model", "null"}, {"prompt", "victim"}});
        return fixed(job_path(id, "/cancel"));
      },
      {401, 404, 403, 403, 202, 404, 403, 202});
  add("GET", "/api/v1/projects/{id}/events", "", on_project("/events"),
      {401, 404, 200, 200, 200, 404, 200, 200});
  add("GET", "/api/v1/projects/{id}/images", "", on_project("/images"),
      {401, 404, 200, 200, 200, 404, 200, 200});
  auto on_image = [](std::string rest) {
    return
        [rest](World& w, Who) { return fixed("/api/v1/images/" + std::to_string(w.image) + rest); };
  };
  add("GET", "/api/v1/images/{id}", "", on_image(""), {401, 404, 200, 200, 200, 404, 200, 200});
  add("GET", "/api/v1/images/{id}/file", "", on_image("/file"),
      {401, 404, 200, 200, 200, 404, 200, 200});
  add("GET", "/api/v1/images/{id}/thumb", "", on_image("/thumb?size=32"),
      {401, 404, 200, 200, 200, 404, 200, 200});
  // Reacting changes things: editor or owner, with submit scope.
  add("PUT", "/api/v1/images/{id}/reactions/{emoji}", "", on_image("/reactions/%F0%9F%91%8D"),
      {401, 404, 403, 200, 200, 404, 403, 200});
  add("DELETE", "/api/v1/images/{id}/reactions/{emoji}", "", on_image("/reactions/%F0%9F%91%8D"),
      {401, 404, 403, 200, 200, 404, 403, 200});
  // Uploading is like submitting: editor or owner, with submit scope. A small PNG each cell, raw
  // and as a form (curl -F).
  add("POST", "/api/v1/projects/{id}/uploads", "raw PNG",
      [](World& w, Who) {
        Cell c = fixed(project_path(w.project, "/uploads"), tiny_png());
        c.headers = "Content-Type: image/png";
        return c;
      },
      {401, 404, 403, 201, 201, 404, 403, 201});
  add("POST", "/api/v1/projects/{id}/uploads", "multipart form",
      [](World& w, Who) {
        const std::string boundary = "matrix-boundary";
        Cell c = fixed(project_path(w.project, "/uploads"),
                       "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"file\"; "
                           "filename=\"m.png\"\r\nContent-Type: image/png\r\n\r\n" +
                           tiny_png() + "\r\n--" + boundary + "--\r\n");
        c.headers = "Content-Type: multipart/form-data; boundary=" + boundary;
        return c;
      },
      {401, 404, 403, 201, 201, 404, 403, 201});
  // The live channel: any signed-in caller; a plain GET (no upgrade) is answered 426 after the
  // credential check. Subscriptions and commands are covered in live_rooms_test.cpp.
  add("GET", "/api/v1/ws", "no upgrade", [](World&, Who) { return fixed("/api/v1/ws"); },
      {401, 426, 426, 426, 426, 426, 426, 426});
  return rows;
}

// "/api/v1/projects/{id:int}" -> "/api/v1/projects/{id}", as in openapi_test.cpp.
std::string strip_param_types(const std::string& pattern) {
  return std::regex_replace(pattern, std::regex(R"(\{([A-Za-z0-9_]+):[a-z]+\})"), "{$1}");
}

std::set<std::string> spec_operations() {
  YAML::Node spec = YAML::LoadFile(std::string(ATELIER_SOURCE_DIR) + "/proto/openapi.yaml");
  std::set<std::string> ops;
  for (const auto& path : spec["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      if (method == "parameters" || method == "summary" || method == "description") continue;
      for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      ops.insert(method + " " + path.first.as<std::string>());
    }
  }
  return ops;
}

std::set<std::string> router_operations() {
  http::Router router;
  Status st = app::build_router(router, app::RouteServices{});
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  std::set<std::string> ops;
  for (const auto& r : router.routes()) {
    ops.insert(std::string(http::method_name(r.method)) + " " + strip_param_types(r.pattern));
  }
  return ops;
}

TEST(PermissionMatrixTest, EveryEndpointHasARow) {
  std::set<std::string> covered;
  for (const auto& row : build_rows()) covered.insert(row.method + " " + row.path);
  const auto spec = spec_operations();
  const auto routes = router_operations();
  ASSERT_FALSE(spec.empty());
  for (const auto& op : spec) {
    EXPECT_TRUE(covered.count(op))
        << "proto/openapi.yaml has " << op << " but the permission matrix has no row for it";
  }
  for (const auto& op : routes) {
    EXPECT_TRUE(covered.count(op))
        << "the router serves " << op << " but the permission matrix has no row for it";
  }
  for (const auto& op : covered) {
    EXPECT_TRUE(routes.count(op)) << "the permission matrix has a row for " << op
                                  << ", which the router does not serve";
  }
}

std::string one_line(std::string s, size_t max = 200) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s.size() > max ? s.substr(0, max) + "..." : s;
}

TEST(PermissionMatrixTest, EveryCallerGetsTheExpectedStatus) {
  TempDir dir;
  ServerConfig config = test_config(dir);
  config.enable_null_model = true;
  config.null_step_ms = 200;  // the blocker (100 steps) then holds the worker for 20 s
  TestServer server(config);
  World w;
  w.port = server.port();
  // The first account is the instance admin; registering it first keeps `owner` an ordinary
  // user, so nothing the owner may do is thanks to instance-admin powers.
  w.admin = register_account(w.port, "admin");
  w.owner = register_account(w.port, "owner");
  w.editor = register_account(w.port, "editor");
  w.viewer = register_account(w.port, "viewer");
  w.other = register_account(w.port, "other");
  w.target = register_account(w.port, "target");
  w.login_target = register_account(w.port, "login-target");
  ASSERT_TRUE(w.admin.is_admin);
  ASSERT_FALSE(w.owner.is_admin);
  w.read_token = create_api_token(w.port, w.owner.token, "read", "read-token");
  w.submit_token = create_api_token(w.port, w.owner.token, "submit", "submit-token");
  w.project = create_project(w.port, w.owner.token, "Shared");
  set_member(w.port, w.owner.token, w.project, w.editor.id, "editor");
  set_member(w.port, w.owner.token, w.project, w.viewer.id, "viewer");
  w.job = submit_ok(w.port, w.owner.token, w.project,
                    {{"model", "null"}, {"prompt", "shared"}, {"steps", 1}});
  nlohmann::json done = wait_terminal(w.port, w.owner.token, w.job);
  ASSERT_EQ(done["state"], "done");
  w.image = done["images"][0]["id"];
  w.blocker = submit_ok(w.port, w.owner.token, w.project,
                        {{"model", "null"}, {"prompt", "blocker"}, {"steps", 100}});
  wait_state(w.port, w.owner.token, w.blocker, "running");

  const auto rows = build_rows();
  std::ostringstream diff;
  int cells = 0;
  int mismatches = 0;
  for (const auto& row : rows) {
    for (int i = 0; i < kWhoCount; ++i) {
      const Who who = static_cast<Who>(i);
      Cell cell = row.prepare(w, who);
      std::string auth = cell.credential ? *cell.credential : w.credential(who);
      Reply got =
          call(w.port, row.method, cell.path, cell.body, header_lines({auth, cell.headers}));
      ++cells;
      if (got.status == row.expected[i]) continue;
      ++mismatches;
      diff << "  " << std::left << std::setw(13) << kWhoNames[i] << std::setw(7) << row.method
           << std::setw(45) << row.path << " expected " << row.expected[i] << ", got " << got.status
           << (row.variant.empty() ? "" : "  [" + row.variant + "]") << "\n"
           << "      " << row.method << " " << cell.path << " -> " << one_line(got.body) << "\n";
    }
  }
  EXPECT_EQ(mismatches, 0) << mismatches << " of " << cells << " cells differ:\n" << diff.str();
  std::printf("permission matrix: %zu rows x %d callers = %d cells, %d mismatches\n", rows.size(),
              static_cast<int>(kWhoCount), cells, mismatches);

  // The shared fixtures survived the table: no cell leaked a side effect into another.
  auto members =
      call(w.port, "GET", project_path(w.project, "/members"), "", bearer(w.owner.token));
  ASSERT_EQ(members.status, 200) << members.body;
  EXPECT_EQ(members.json["members"].size(), 3u) << members.body;
  EXPECT_EQ(call(w.port, "GET", "/api/v1/me", "", bearer(w.read_token.secret)).status, 200);
  EXPECT_EQ(call(w.port, "GET", "/api/v1/me", "", bearer(w.other.token)).status, 200);
}

}  // namespace
}  // namespace atelier::apitest
