// Accounts over REST (/api/v1): register, log in and out, who am I, API tokens, and the
// instance admin's user management. Authorization per route is stated next to each handler.
#pragma once

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/router.h"

namespace atelier::api {

// `ctx` must outlive the router.
Status register_account_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
