#include "server/api/system_routes.h"

#include <nlohmann/json.hpp>

namespace atelier::api {

using http::ExchangePtr;
using http::Method;
using http::Response;

Status register_system_routes(http::Router& router, const SystemContext& ctx) {
  ATELIER_RETURN_IF_ERROR(router.add(Method::kGet, "/healthz", [](const ExchangePtr& ex) {
    Response r = Response::json_text(200, R"({"status":"ok"})");
    r.headers.set("Cache-Control", "no-store");
    ex->respond(std::move(r));
  }));

  ATELIER_RETURN_IF_ERROR(
      router.add(Method::kGet, "/readyz", [readiness = ctx.readiness](const ExchangePtr& ex) {
        Readiness::Snapshot s = readiness ? readiness->snapshot() : Readiness::Snapshot{};
        nlohmann::json body;
        body["status"] = s.ready ? "ready" : (s.shutting_down ? "shutting_down" : "not_ready");
        body["checks"] = s.checks;
        Response r = Response::json_text(s.ready ? 200 : 503, body.dump());
        r.headers.set("Cache-Control", "no-store");
        if (!s.ready) r.headers.set("Retry-After", "1");
        ex->respond(std::move(r));
      }));

  ATELIER_RETURN_IF_ERROR(
      router.add(Method::kGet, "/metrics", [registry = ctx.registry](const ExchangePtr& ex) {
        Response r = Response::text(200, registry ? registry->render() : std::string(),
                                    "text/plain; version=0.0.4; charset=utf-8");
        r.headers.set("Cache-Control", "no-store");
        ex->respond(std::move(r));
      }));

  std::string info = nlohmann::json{
      {"name", "atelier"},
      {"version", ctx.version},
      {"api", "v1"},
      {"instance_id",
       ctx.instance_id}}.dump();
  ATELIER_RETURN_IF_ERROR(router.add(Method::kGet, "/api/v1/info", [info](const ExchangePtr& ex) {
    ex->respond(Response::json_text(200, info));
  }));
  return Status::ok();
}

}  // namespace atelier::api
