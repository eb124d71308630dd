// Generation over REST (/api/v1): models, jobs (submit, list, get, cancel, Server-Sent Events)
// and a project's event log. Every route checks membership first (404 for non-members), then
// scope and role (403), through access.h. Answers 503 while the job service is not wired.
#pragma once

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/router.h"

namespace atelier::api {

// `ctx` must outlive the router.
Status register_job_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
