// Emoji reactions over REST: `PUT` and `DELETE /api/v1/images/{id}/reactions/{emoji}` (editor
// or owner, with a submit-scoped credential; the emoji percent-encoded in the path). Each change
// is a durable `reaction.set` / `reaction.clear` event in the image's project, recorded in the
// same transaction; repeating a PUT or DELETE changes nothing and records nothing.
#pragma once

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/router.h"

namespace atelier::api {

// `ctx` must outlive the router.
Status register_reaction_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
