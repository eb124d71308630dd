// Who is calling, and what they may touch: the one place the authorization rules live.
//
// authenticate_middleware() runs before every handler. It reads a credential from
// `Authorization: Bearer <token>` or, failing that, the session cookie, and attaches the Caller
// when it is valid (unknown, revoked or expired credentials, and disabled users, leave the
// request anonymous, so protected routes answer 401). Cookie-authenticated unsafe requests
// (POST/PUT/PATCH/DELETE) must carry an Origin (or Referer) equal to the request's own origin
// or a trusted one, else 403: a browser attaches cookies to cross-site requests, Bearer tokens
// it never attaches by itself. Origins compare by scheme, host and port.
//
// Over https (public_url is https, or a trusted proxy says X-Forwarded-Proto: https) the session
// cookie is `__Host-atelier_session; Secure`: the prefix makes browsers refuse it unless it is
// Secure, Path=/ and host-only, so neither plain http nor a sibling subdomain can set or shadow
// it. Over plain http (http://127.0.0.1 set-ups) it is `atelier_session`. Only the name that
// applies to a request is read.
//
// Project rule: every lookup of a project or anything inside it goes through project_role().
// Non-members get 404 (the id leaks nothing); members without the role get 403. Instance admins
// get no access to projects they are not members of.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "server/api/api_context.h"
#include "server/auth/account_db.h"
#include "server/http/router.h"
#include "server/projects/project_db.h"

namespace atelier::api {

inline constexpr std::string_view kSessionCookie = "atelier_session";
inline constexpr std::string_view kSecureSessionCookie = "__Host-atelier_session";

struct Caller {
  auth::Principal principal;
  bool via_cookie = false;
  std::string secret_hash;  // of the credential used (logout revokes it)
};

http::Middleware authenticate_middleware(const ApiContext& ctx);

// The authenticated caller, or nullptr.
const Caller* caller_of(const http::Exchange& ex);
// kUnauthenticated (401) when anonymous.
Result<const Caller*> require_caller(const http::Exchange& ex);
// kPermissionDenied (403) when the credential's scope is below `needed`.
Status require_scope(const Caller& caller, auth::Scope needed);
// kPermissionDenied unless the user is an instance admin (and the credential has admin scope).
Status require_instance_admin(const Caller& caller);

// The caller's role in the project; kNotFound when the project does not exist or the caller is
// not a member (the two are indistinguishable on purpose).
Result<projects::Role> project_role(store::Db& db, const Caller& caller, int64_t project_id);
// kPermissionDenied when `have` is below `needed`.
Status require_role(projects::Role have, projects::Role needed);
// Membership (404), then scope and role (403): the order that leaks nothing to outsiders.
// Returns the caller's role.
Result<projects::Role> authorize_project(store::Db& db, const Caller& caller, int64_t project_id,
                                         auth::Scope scope, projects::Role role);

// A handler for a route that only signed-in callers may use.
using CallerHandler = void (*)(const ApiContext&, const http::ExchangePtr&, const Caller&);
// Registers `fn` behind the sign-in gate: anonymous requests get 401 before it runs.
// `options` go to the router as they are (e.g. a route's own body limit). `ctx` must outlive
// the router.
Status add_signed_in_route(http::Router& router, const ApiContext& ctx, http::Method method,
                           std::string_view pattern, CallerHandler fn,
                           http::RouteOptions options = {});

// The value of cookie `name` in the request's Cookie header(s), empty when absent.
std::string cookie_value(const http::Request& request, std::string_view name);
// Whether the browser reaches this server over https: public_url is https, or the request came
// through a trusted proxy that said so (Request::secure).
bool https_request(const ApiContext& ctx, const http::Request& request);
// The session cookie's name for this request: kSecureSessionCookie over https, else
// kSessionCookie.
std::string_view session_cookie_name(const ApiContext& ctx, const http::Request& request);
// Set-Cookie value for the session cookie; an empty token with max_age 0 clears it. `secure`
// (https_request()): named with the __Host- prefix and marked Secure.
std::string session_cookie(const std::string& token, std::chrono::seconds max_age, bool secure);
// Whether `origin` (an Origin header's value) may act with this server's cookies: the request's
// own origin (https when https_request(), else http; host and port from its Host), public_url,
// or a trusted origin. Scheme, host and port must all match (default ports are implied).
bool origin_allowed(const ApiContext& ctx, const http::Request& request, const std::string& origin);
// "http(s)://host:port" for the request (public_url when configured).
std::string request_origin(const ApiContext& ctx, const http::Request& request);

}  // namespace atelier::api
