// Builds the server's complete router: middleware in order, every API route, static fallback.
// The OpenAPI conformance test builds the router through this same function, so the spec is
// compared with exactly what the server serves.
#pragma once

#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/readiness.h"
#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/middleware.h"
#include "server/http/router.h"
#include "server/http/static_files.h"

namespace atelier::app {

struct RouteServices {
  const Readiness* readiness = nullptr;
  metrics::Registry* registry = nullptr;
  http::RequestRecorder* recorder = nullptr;        // access log + request metrics; may be null
  const http::StaticFiles* static_files = nullptr;  // may be null: no static fallback
  std::vector<std::string> cors_origins;
  // Authentication hook: runs after CORS and before every handler (and the static fallback),
  // knowing the matched route (Exchange::route()). It attaches the caller's identity or answers
  // 401/403 itself. Empty until accounts exist.
  http::Middleware auth;
  // The REST API's shared services. Null: the API routes are still registered (so the route
  // table is complete for the OpenAPI test) but must not be called.
  const api::ApiContext* api = nullptr;
  std::string version;
  std::string instance_id;
};

Status build_router(http::Router& router, const RouteServices& services);

}  // namespace atelier::app
