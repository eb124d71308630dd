#include "server/api/project_routes.h"

#include <chrono>

#include "server/api/access.h"
#include "server/api/api_json.h"
#include "server/api/errors.h"
#include "server/api/invites.h"
#include "server/api/json_body.h"
#include "server/api/query_params.h"
#include "server/auth/token.h"
#include "server/events/event_log.h"

namespace atelier::api {

using http::ExchangePtr;
using http::Method;
using http::Response;
using projects::Role;
namespace pdb = projects::project_db;

namespace {

constexpr TextRule kNameRule{.min_chars = 1, .max_chars = 100};
constexpr TextRule kDescriptionRule{.max_chars = 4000, .multiline = true};
constexpr std::string_view kInvitePrefix = "atl_i_";

Response no_content() {
  Response r;
  r.status = 204;
  return r;
}

Status record(store::Db& db, const ApiContext& ctx, int64_t project_id, int64_t actor,
              events::DomainEvent event) {
  return ctx.events->append(db, project_id, actor, std::move(event), ctx.now()).status();
}

using MemberKind = events::MemberChanged::Kind;

// The per-user project limit (max_projects_per_user) counts the projects a user owns. It is
// checked wherever someone would come to own one more (creating one, being made an owner,
// accepting an owner invite), so that handing projects over to others cannot get around it.
// `self`: the caller is the one who would own it (403), else another user (409).
Status owned_limit_error(const ApiContext& ctx, int64_t owned, bool self) {
  const std::string limit =
      "the limit is " + std::to_string(ctx.max_projects_per_user) + " (max_projects_per_user)";
  if (!self) {
    return Status::failed_precondition("that user already owns " + std::to_string(owned) +
                                       " projects and may own no more (" + limit + ")");
  }
  return Status(StatusCode::kPermissionDenied,
                "you already own " + std::to_string(owned) + " projects (" + limit +
                    "); delete one, or make someone else its owner and leave it, first");
}

Status check_owned_limit(store::Db& db, const ApiContext& ctx, int64_t user_id, bool self) {
  ATELIER_ASSIGN_OR_RETURN(const int64_t owned, pdb::count_owned_projects(db, user_id));
  if (owned < ctx.max_projects_per_user) return Status::ok();
  return owned_limit_error(ctx, owned, self);
}

struct ProjectFields {
  std::optional<std::string> name;
  std::optional<std::string> description;
};

void handle_create(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_scope(caller, auth::Scope::kAdmin); !st.is_ok()) {
    return respond_error(ex, st);
  }
  auto in = read_json_body(ex->request(), [](JsonBody& body) -> Result<ProjectFields> {
    auto name = body.required_string("name", kNameRule);
    if (!name.is_ok()) return name.status();
    auto description = body.optional_string("description", kDescriptionRule);
    if (!description.is_ok()) return description.status();
    return ProjectFields{std::move(*name), std::move(*description)};
  });
  if (!in.is_ok()) return respond_error(ex, in.status());
  int64_t user = caller.principal.user.id;
  respond_after_write(ex, *ctx.store, [&ctx, user, in = *in](store::Db& db) -> Result<Response> {
    // In the write transaction: concurrent creations are serialized, so none slips past it.
    ATELIER_RETURN_IF_ERROR(check_owned_limit(db, ctx, user, /*self=*/true));
    ATELIER_ASSIGN_OR_RETURN(
        const projects::Project p,
        pdb::insert_project(db, *in.name, in.description.value_or(""), user, ctx.now()));
    ATELIER_RETURN_IF_ERROR(record(db, ctx, p.id, user, events::ProjectCreated{p.name}));
    return json_response(201, project_json(p, Role::kOwner));
  });
}

void handle_list(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_scope(caller, auth::Scope::kRead); !st.is_ok()) {
    return respond_error(ex, st);
  }
  auto page = query_page(ex->request());
  if (!page.is_ok()) return respond_error(ex, page.status());
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_ASSIGN_OR_RETURN(const auto list, pdb::list_projects_page(db, caller.principal.user.id,
                                                                      page->limit, page->before));
    return page_response(
        "projects", list, page->limit,
        [](const projects::ProjectWithRole& p) { return project_json(p.project, p.role); },
        [](const projects::ProjectWithRole& p) { return p.project.id; });
  });
}

void handle_get(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  int64_t id = ex->params().get_int("id");
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_ASSIGN_OR_RETURN(const Role role,
                             authorize_project(db, caller, id, auth::Scope::kRead, Role::kViewer));
    ATELIER_ASSIGN_OR_RETURN(const projects::Project p, pdb::find_project(db, id));
    ATELIER_ASSIGN_OR_RETURN(const int64_t disk_bytes, pdb::disk_bytes(db, id));
    nlohmann::json out = project_json(p, role);
    out["disk_bytes"] = disk_bytes;
    return json_response(200, out);
  });
}

void handle_update(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  auto in = read_json_body(ex->request(), [](JsonBody& body) -> Result<ProjectFields> {
    auto name = body.optional_string("name", kNameRule);
    if (!name.is_ok()) return name.status();
    auto description = body.optional_string("description", kDescriptionRule);
    if (!description.is_ok()) return description.status();
    return ProjectFields{std::move(*name), std::move(*description)};
  });
  if (!in.is_ok()) return respond_error(ex, in.status());
  int64_t id = ex->params().get_int("id");
  respond_after_write(
      ex, *ctx.store, [&ctx, caller, id, in = *in](store::Db& db) -> Result<Response> {
        ATELIER_ASSIGN_OR_RETURN(
            const Role role, authorize_project(db, caller, id, auth::Scope::kAdmin, Role::kEditor));
        ATELIER_RETURN_IF_ERROR(pdb::update_project(db, id, in.name, in.description, ctx.now()));
        ATELIER_RETURN_IF_ERROR(record(db, ctx, id, caller.principal.user.id,
                                       events::ProjectUpdated{in.name, in.description}));
        ATELIER_ASSIGN_OR_RETURN(const projects::Project p, pdb::find_project(db, id));
        return json_response(200, project_json(p, role));
      });
}

void handle_delete(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  int64_t id = ex->params().get_int("id");
  respond_after_write(ex, *ctx.store, [&ctx, caller, id](store::Db& db) -> Result<Response> {
    auto role = authorize_project(db, caller, id, auth::Scope::kAdmin, Role::kOwner);
    if (!role.is_ok()) return role.status();
    ATELIER_RETURN_IF_ERROR(pdb::delete_project(db, id));
    // Not logged (the log goes with the project): the rooms end every subscription.
    ctx.events->announce(db, id, caller.principal.user.id, events::ProjectDeleted{}, ctx.now());
    return no_content();
  });
}

void handle_list_members(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  int64_t id = ex->params().get_int("id");
  auto page = query_page(ex->request());
  if (!page.is_ok()) return respond_error(ex, page.status());
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    auto role = authorize_project(db, caller, id, auth::Scope::kRead, Role::kViewer);
    if (!role.is_ok()) return role.status();
    ATELIER_ASSIGN_OR_RETURN(const auto members,
                             pdb::list_members_page(db, id, page->limit, page->before));
    return page_response(
        "members", members, page->limit, [](const projects::Member& m) { return member_json(m); },
        [](const projects::Member& m) { return m.user_id; });
  });
}

// The last owner may neither leave, be removed nor be demoted: a project always has an owner.
Status keep_an_owner(store::Db& db, int64_t project_id, int64_t user_id,
                     std::optional<Role> new_role) {
  ATELIER_ASSIGN_OR_RETURN(const std::optional<Role> current,
                           pdb::member_role(db, project_id, user_id));
  if (!current || *current != Role::kOwner) return Status::ok();
  if (new_role && *new_role == Role::kOwner) return Status::ok();
  auto owners = pdb::count_owners(db, project_id);
  if (!owners.is_ok()) return owners.status();
  if (*owners <= 1) {
    return Status::failed_precondition(
        "a project needs at least one owner: make someone else owner first");
  }
  return Status::ok();
}

void handle_set_member(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  auto in = read_json_body(ex->request(), [](JsonBody& body) -> Result<std::string> {
    return body.required_enum("role", {"owner", "editor", "viewer"});
  });
  if (!in.is_ok()) return respond_error(ex, in.status());
  Role role = *projects::parse_role(*in);
  int64_t id = ex->params().get_int("id");
  int64_t target = ex->params().get_int("user_id");
  respond_after_write(
      ex, *ctx.store, [&ctx, caller, id, target, role](store::Db& db) -> Result<Response> {
        auto mine = authorize_project(db, caller, id, auth::Scope::kAdmin, Role::kOwner);
        if (!mine.is_ok()) return mine.status();
        ATELIER_ASSIGN_OR_RETURN(const auth::User user, auth::account_db::find_user(db, target));
        ATELIER_RETURN_IF_ERROR(keep_an_owner(db, id, target, role));
        ATELIER_ASSIGN_OR_RETURN(const std::optional<Role> before,
                                 pdb::member_role(db, id, target));
        if (role == Role::kOwner && before != Role::kOwner) {
          ATELIER_RETURN_IF_ERROR(
              check_owned_limit(db, ctx, target, target == caller.principal.user.id));
        }
        ATELIER_RETURN_IF_ERROR(pdb::upsert_member(db, id, target, role, ctx.now()));
        ATELIER_RETURN_IF_ERROR(
            record(db, ctx, id, caller.principal.user.id,
                   events::MemberChanged{before ? MemberKind::kRoleChanged : MemberKind::kAdded,
                                         target, user.username, role, std::nullopt}));
        auto member = pdb::find_member(db, id, target);
        if (member.status().code() == StatusCode::kNotFound) {
          return Status::internal("member missing right after it was written");
        }
        ATELIER_RETURN_IF_ERROR(member.status());
        return json_response(200, member_json(*member));
      });
}

void handle_remove_member(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  int64_t id = ex->params().get_int("id");
  int64_t target = ex->params().get_int("user_id");
  respond_after_write(
      ex, *ctx.store, [&ctx, caller, id, target](store::Db& db) -> Result<Response> {
        const bool leaving = target == caller.principal.user.id;
        auto mine = authorize_project(db, caller, id, auth::Scope::kAdmin,
                                      leaving ? Role::kViewer : Role::kOwner);
        if (!mine.is_ok()) return mine.status();
        ATELIER_RETURN_IF_ERROR(keep_an_owner(db, id, target, std::nullopt));
        Status st = pdb::remove_member(db, id, target);
        if (st.code() == StatusCode::kNotFound) return Status::not_found("no such member");
        ATELIER_RETURN_IF_ERROR(st);
        ATELIER_RETURN_IF_ERROR(
            record(db, ctx, id, caller.principal.user.id,
                   events::MemberChanged{leaving ? MemberKind::kLeft : MemberKind::kRemoved, target,
                                         "", std::nullopt, std::nullopt}));
        return no_content();
      });
}

struct NewInvite {
  Role role;
  int64_t max_uses;
  std::chrono::seconds expires_in;
};

void handle_create_invite(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  auto in = read_json_body(ex->request(), [](JsonBody& body) -> Result<NewInvite> {
    auto role = body.required_enum("role", {"owner", "editor", "viewer"});
    if (!role.is_ok()) return role.status();
    auto uses = body.optional_int("max_uses", 1, 1000);
    if (!uses.is_ok()) return uses.status();
    auto expires = body.optional_int("expires_in_s", 60, int64_t{30} * 24 * 3600);
    if (!expires.is_ok()) return expires.status();
    return NewInvite{*projects::parse_role(*role), uses->value_or(1),
                     std::chrono::seconds(expires->value_or(7 * 24 * 3600))};
  });
  if (!in.is_ok()) return respond_error(ex, in.status());
  int64_t id = ex->params().get_int("id");
  std::string origin = request_origin(ctx, ex->request());
  respond_after_write(
      ex, *ctx.store, [&ctx, caller, id, in = *in, origin](store::Db& db) -> Result<Response> {
        // Only owners invite, so any role (owner included) is theirs to grant.
        auto mine = authorize_project(db, caller, id, auth::Scope::kAdmin, Role::kOwner);
        if (!mine.is_ok()) return mine.status();
        std::string code = auth::generate_secret(kInvitePrefix);
        const SysTime now = ctx.now();
        const SysTime expires_at = now + in.expires_in;
        ATELIER_RETURN_IF_ERROR(pdb::insert_invite(db, id, auth::hash_secret(code), in.role,
                                                   in.max_uses, expires_at,
                                                   caller.principal.user.id, now)
                                    .status());
        Response r = json_response(201, {{"code", code},
                                         {"url", origin + "/invite/" + code},
                                         {"role", projects::role_name(in.role)},
                                         {"max_uses", in.max_uses},
                                         {"expires_at", format_time(expires_at)}});
        r.headers.set("Cache-Control", "no-store");
        return r;
      });
}

void handle_accept_invite(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_scope(caller, auth::Scope::kAdmin); !st.is_ok()) {
    return respond_error(ex, st);
  }
  std::string code(ex->params().get("code"));
  int64_t user = caller.principal.user.id;
  respond_after_write(ex, *ctx.store, [&ctx, code, user](store::Db& db) -> Result<Response> {
    // An owner invite counts against the project limit; the role it grants is only known once
    // accepted, so compare the counts around it (a refusal rolls the acceptance back).
    ATELIER_ASSIGN_OR_RETURN(const int64_t owned_before, pdb::count_owned_projects(db, user));
    auto joined = accept_invite(db, ctx, code, user);
    if (!joined.is_ok()) return joined.status();
    ATELIER_ASSIGN_OR_RETURN(const int64_t owned_after, pdb::count_owned_projects(db, user));
    if (owned_after > owned_before && owned_before >= ctx.max_projects_per_user) {
      return owned_limit_error(ctx, owned_before, /*self=*/true);
    }
    return json_response(200, {{"project", project_json(joined->project, joined->role)}});
  });
}

}  // namespace

Status register_project_routes(http::Router& router, const ApiContext& ctx) {
  // Every route here needs a caller: anonymous requests get 401.
  auto route = [&](Method m, std::string_view pattern, CallerHandler fn) {
    return add_signed_in_route(router, ctx, m, pattern, fn);
  };
  ATELIER_RETURN_IF_ERROR(route(Method::kPost, "/api/v1/projects", handle_create));
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/projects", handle_list));
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/projects/{id:int}", handle_get));
  ATELIER_RETURN_IF_ERROR(route(Method::kPatch, "/api/v1/projects/{id:int}", handle_update));
  ATELIER_RETURN_IF_ERROR(route(Method::kDelete, "/api/v1/projects/{id:int}", handle_delete));
  ATELIER_RETURN_IF_ERROR(
      route(Method::kGet, "/api/v1/projects/{id:int}/members", handle_list_members));
  ATELIER_RETURN_IF_ERROR(
      route(Method::kPut, "/api/v1/projects/{id:int}/members/{user_id:int}", handle_set_member));
  ATELIER_RETURN_IF_ERROR(route(Method::kDelete, "/api/v1/projects/{id:int}/members/{user_id:int}",
                                handle_remove_member));
  ATELIER_RETURN_IF_ERROR(
      route(Method::kPost, "/api/v1/projects/{id:int}/invites", handle_create_invite));
  ATELIER_RETURN_IF_ERROR(
      route(Method::kPost, "/api/v1/invites/{code}/accept", handle_accept_invite));
  return Status::ok();
}

}  // namespace atelier::api
