// Generated images over REST (/api/v1): a project's gallery, one image's metadata with its
// lineage, the PNG itself and cached thumbnails. Membership is checked for every image (404 for
// non-members, like projects).
#pragma once

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/http/router.h"

namespace atelier::api {

// `ctx` must outlive the router.
Status register_image_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
