// POST /api/v1/auth/password: the signed-in user changes their own password (sessions and
// admin-scope tokens). The current password is verified on the hash pool, as login does; a
// wrong one counts against the username's login throttle. On success every other session and
// token of the user is revoked, and their live connections close (credential_watch.h); the
// credential that made the change stays valid.
#pragma once

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/router.h"

namespace atelier::api {

// `ctx` must outlive the router.
Status register_credential_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
