#include "server/api/invites.h"

#include <nlohmann/json.hpp>

#include "server/auth/account_db.h"
#include "server/auth/token.h"
#include "server/events/event_log.h"

namespace atelier::api {

namespace pdb = projects::project_db;

Result<projects::ProjectWithRole> accept_invite(store::Db& db, const ApiContext& ctx,
                                                const std::string& code, int64_t user_id) {
  auto invite = pdb::find_invite(db, auth::hash_secret(code));
  if (!invite.is_ok()) return invite.status();
  if (!*invite || (*invite)->revoked) return Status::not_found("no such invite");
  const projects::Invite& inv = **invite;
  const int64_t now = ctx.now();
  if (inv.expires_at <= now) return Status(StatusCode::kGone, "this invite has expired");
  if (inv.uses >= inv.max_uses) return Status(StatusCode::kGone, "this invite has been used up");

  auto current = pdb::member_role(db, inv.project_id, user_id);
  if (!current.is_ok()) return current.status();
  projects::Role role = inv.role;
  if (!*current || static_cast<int>(**current) < static_cast<int>(inv.role)) {
    ATELIER_RETURN_IF_ERROR(pdb::upsert_member(db, inv.project_id, user_id, inv.role, now));
    ATELIER_RETURN_IF_ERROR(pdb::record_invite_use(db, inv.id));
    auto user = auth::account_db::find_user(db, user_id);
    if (!user.is_ok()) return user.status();
    using Kind = events::MemberChanged::Kind;
    ATELIER_RETURN_IF_ERROR(
        ctx.events
            ->append(db, inv.project_id, user_id,
                     events::MemberChanged{*current ? Kind::kRoleChanged : Kind::kJoined, user_id,
                                           *user ? (*user)->username : std::string(), inv.role,
                                           "invite"},
                     from_unix_s(now))
            .status());
  } else {
    role = **current;  // already at least this role: nothing changes, no use is counted
  }
  auto project = pdb::find_project(db, inv.project_id);
  if (!project.is_ok()) return project.status();
  if (!*project) return Status::not_found("no such invite");
  return projects::ProjectWithRole{std::move(**project), role};
}

}  // namespace atelier::api
