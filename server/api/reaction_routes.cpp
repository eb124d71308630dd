#include "server/api/reaction_routes.h"

#include <nlohmann/json.hpp>
#include <string>

#include "server/api/access.h"
#include "server/api/api_json.h"
#include "server/api/errors.h"
#include "server/events/event_log.h"
#include "server/jobs/job_db.h"
#include "server/jobs/reactions.h"
#include "server/projects/project_db.h"

namespace atelier::api {

using http::ExchangePtr;
using http::Method;
using http::Response;
using projects::Role;
namespace reactions = jobs::reactions;

namespace {

// PUT (add) or DELETE (remove) the caller's emoji on an image.
void change(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller, bool add) {
  const int64_t image_id = ex->params().get_int("id");
  const std::string emoji(ex->params().get("emoji"));
  if (Status st = reactions::validate_emoji(emoji); !st.is_ok()) return respond_error(ex, st);
  const int64_t user = caller.principal.user.id;
  respond_after_write(
      ex, *ctx.store,
      [&ctx, caller, image_id, emoji, user, add](store::Db& db) -> Result<Response> {
        ATELIER_ASSIGN_OR_RETURN(jobs::ImageRecord image,
                                 jobs::job_db::find_image(db, image_id));  // "no such image"
        const int64_t project = image.project_id;
        // Non-members get 404 (as for reading the image); viewers and read tokens 403.
        ATELIER_RETURN_IF_ERROR(
            authorize_project(db, caller, project, auth::Scope::kSubmit, Role::kEditor).status());
        // Whole seconds, as reactions have always been stored.
        const SysTime now = std::chrono::floor<std::chrono::seconds>(ctx.now());
        ATELIER_ASSIGN_OR_RETURN(bool changed, add ? reactions::set(db, image_id, user, emoji, now)
                                                   : reactions::clear(db, image_id, user, emoji));
        ATELIER_ASSIGN_OR_RETURN(reactions::Counts counts, reactions::counts(db, image_id));
        if (changed) {
          ATELIER_RETURN_IF_ERROR(
              ctx.events
                  ->append(db, project, user,
                           events::ReactionChanged{add, image_id, user, emoji, counts}, now)
                  .status());
        }
        ATELIER_ASSIGN_OR_RETURN(std::vector<std::string> mine,
                                 reactions::mine(db, image_id, user));
        return json_response(200, {{"image", image_id},
                                   {"emoji", emoji},
                                   {"changed", changed},
                                   {"counts", counts},
                                   {"mine", mine}});
      });
}

void handle_put(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  change(ctx, ex, caller, /*add=*/true);
}

void handle_delete(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  change(ctx, ex, caller, /*add=*/false);
}

}  // namespace

Status register_reaction_routes(http::Router& router, const ApiContext& ctx) {
  constexpr std::string_view kPattern = "/api/v1/images/{id:int}/reactions/{emoji}";
  ATELIER_RETURN_IF_ERROR(add_signed_in_route(router, ctx, Method::kPut, kPattern, handle_put));
  ATELIER_RETURN_IF_ERROR(
      add_signed_in_route(router, ctx, Method::kDelete, kPattern, handle_delete));
  return Status::ok();
}

}  // namespace atelier::api
