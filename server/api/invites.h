// Joining a project through an invite code; shared by POST /invites/{code}/accept and by
// registration with an invite.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/projects/project_db.h"

namespace atelier::api {

// Inside a write transaction: makes `user_id` a member with the invite's role (never lowering
// a role they already have) and records the use and a durable `member.joined` (or
// `member.role_changed`) event. kNotFound for unknown or revoked codes, kGone for expired or
// used-up ones.
Result<projects::ProjectWithRole> accept_invite(store::Db& db, const ApiContext& ctx,
                                                const std::string& code, int64_t user_id);

}  // namespace atelier::api
