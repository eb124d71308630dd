#include "server/api/invites.h"

#include <nlohmann/json.hpp>

#include "server/auth/account_db.h"
#include "server/auth/token.h"

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
    nlohmann::json data = {{"user_id", user_id},
                           {"username", *user ? (*user)->username : std::string()},
                           {"role", projects::role_name(inv.role)},
                           {"via", "invite"}};
    auto seq =
        pdb::append_event(db, inv.project_id, *current ? "member.role_changed" : "member.joined",
                          user_id, data.dump(), now);
    if (!seq.is_ok()) return seq.status();
  } else {
    role = **current;  // already at least this role: nothing changes, no use is counted
  }
  auto project = pdb::find_project(db, inv.project_id);
  if (!project.is_ok()) return project.status();
  if (!*project) return Status::not_found("no such invite");
  return projects::ProjectWithRole{std::move(**project), role};
}

}  // namespace atelier::api
