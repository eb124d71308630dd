#include "server/api/invites.h"

#include <nlohmann/json.hpp>

#include "server/auth/account_db.h"
#include "server/auth/token.h"
#include "server/events/event_log.h"

namespace atelier::api {

namespace pdb = projects::project_db;

Result<projects::ProjectWithRole> accept_invite(store::Db& db, const ApiContext& ctx,
                                                const std::string& code, int64_t user_id) {
  // An unknown code is kNotFound "no such invite" already; a revoked one answers the same.
  ATELIER_ASSIGN_OR_RETURN(const projects::Invite inv,
                           pdb::find_invite(db, auth::hash_secret(code)));
  if (inv.revoked) return Status::not_found("no such invite");
  const SysTime now = ctx.now();
  if (inv.expires_at <= now) return Status(StatusCode::kGone, "this invite has expired");
  if (inv.uses >= inv.max_uses) return Status(StatusCode::kGone, "this invite has been used up");

  ATELIER_ASSIGN_OR_RETURN(const std::optional<projects::Role> current,
                           pdb::member_role(db, inv.project_id, user_id));
  projects::Role role = inv.role;
  if (!current || static_cast<int>(*current) < static_cast<int>(inv.role)) {
    ATELIER_RETURN_IF_ERROR(pdb::upsert_member(db, inv.project_id, user_id, inv.role, now));
    ATELIER_RETURN_IF_ERROR(pdb::record_invite_use(db, inv.id));
    // The membership just written needs the user (a foreign key), so they exist.
    ATELIER_ASSIGN_OR_RETURN(const auth::User user, auth::account_db::find_user(db, user_id));
    using Kind = events::MemberChanged::Kind;
    ATELIER_RETURN_IF_ERROR(
        ctx.events
            ->append(db, inv.project_id, user_id,
                     events::MemberChanged{current ? Kind::kRoleChanged : Kind::kJoined, user_id,
                                           user.username, inv.role, "invite"},
                     now)
            .status());
  } else {
    role = *current;  // already at least this role: nothing changes, no use is counted
  }
  auto project = pdb::find_project(db, inv.project_id);
  // The invite goes with its project (ON DELETE CASCADE); should one ever be missing, the
  // invite is what the caller sees as gone.
  if (project.status().code() == StatusCode::kNotFound) return Status::not_found("no such invite");
  if (!project.is_ok()) return project.status();
  return projects::ProjectWithRole{std::move(project).value(), role};
}

}  // namespace atelier::api
