// Operational endpoints: liveness, readiness, metrics and server info.
//
//   GET /healthz      200 {"status":"ok"}; touches nothing, so it answers while anything else
//                     is stuck (liveness).
//   GET /readyz       200 when every readiness check is ok, else 503 with the checks.
//   GET /metrics      Prometheus text format.
//   GET /api/v1/info  name, version, API version and instance id.
#pragma once

#include <string>

#include "common/metrics.h"
#include "common/readiness.h"
#include "common/status.h"
#include "server/http/router.h"

namespace atelier::api {

struct SystemContext {
  const Readiness* readiness = nullptr;
  metrics::Registry* registry = nullptr;
  std::string version;
  std::string instance_id;
};

// `context`'s pointers must outlive the router.
Status register_system_routes(http::Router& router, const SystemContext& context);

}  // namespace atelier::api
