#include "server/app/routes.h"

#include "server/api/access.h"
#include "server/api/account_routes.h"
#include "server/api/image_routes.h"
#include "server/api/job_routes.h"
#include "server/api/live_session.h"
#include "server/api/project_routes.h"
#include "server/api/reaction_routes.h"
#include "server/api/system_routes.h"
#include "server/api/upload_routes.h"

namespace atelier::app {

Status build_router(http::Router& router, const RouteServices& s) {
  // Order matters: the request id exists before anything logs, and response hooks run in
  // reverse order, so the recorder sees the status after every later middleware amended it.
  router.use(http::request_id_middleware());
  if (s.recorder) router.use(s.recorder->middleware());
  if (!s.cors_origins.empty()) router.use(http::cors_middleware(s.cors_origins));
  if (s.api) router.use(api::authenticate_middleware(*s.api));
  if (s.auth) router.use(s.auth);

  ATELIER_RETURN_IF_ERROR(
      api::register_system_routes(router, {s.readiness, s.registry, s.version, s.instance_id}));

  static const api::ApiContext kUnwired;
  const api::ApiContext& api_ctx = s.api ? *s.api : kUnwired;
  ATELIER_RETURN_IF_ERROR(api::register_account_routes(router, api_ctx));
  ATELIER_RETURN_IF_ERROR(api::register_project_routes(router, api_ctx));
  ATELIER_RETURN_IF_ERROR(api::register_job_routes(router, api_ctx));
  ATELIER_RETURN_IF_ERROR(api::register_image_routes(router, api_ctx));
  ATELIER_RETURN_IF_ERROR(api::register_reaction_routes(router, api_ctx));
  ATELIER_RETURN_IF_ERROR(api::register_upload_routes(router, api_ctx));
  ATELIER_RETURN_IF_ERROR(api::register_live_routes(router, api_ctx));

  if (s.static_files) {
    router.set_fallback([files = s.static_files](const http::ExchangePtr& ex) {
      ex->respond(files->serve(ex->request()));
    });
  }
  return Status::ok();
}

}  // namespace atelier::app
