// Projects (shared rooms), members and invites over REST (/api/v1). Every route that names a
// project checks membership first (404 for non-members), then the credential's scope and the
// member's role (403), through access.h.
#pragma once

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/router.h"

namespace atelier::api {

// `ctx` must outlive the router.
Status register_project_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
