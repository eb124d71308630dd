#include "server/api/access.h"

#include <algorithm>
#include <optional>

#include "server/api/errors.h"
#include "server/auth/token.h"

namespace atelier::api {

namespace {

constexpr std::string_view kCallerKey = "caller";
// A credential's last use is recorded at most this often.
constexpr std::chrono::seconds kTouchInterval{60};

bool unsafe_method(http::Method m) {
  return m == http::Method::kPost || m == http::Method::kPut || m == http::Method::kPatch ||
         m == http::Method::kDelete || m == http::Method::kOther;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "https://host:port/path?x" -> "https://host:port"
std::string origin_of_url(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  size_t slash = url.find('/', scheme + 3);
  return std::string(url.substr(0, slash));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// An origin as browsers compare them: scheme, host and port, the port made explicit.
struct OriginParts {
  std::string scheme;
  std::string host;  // lower case; IPv6 in brackets
  int port = 0;
  bool operator==(const OriginParts&) const = default;
};

// `authority` ("host", "host:port", "[v6]:port") under `scheme`; nullopt when malformed, or
// when the port is omitted for a scheme without a default one.
std::optional<OriginParts> parse_authority(std::string_view scheme, std::string_view authority) {
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host = authority;
  std::string_view port_text;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port_text = rest.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  OriginParts out{lower(scheme), lower(host), 0};
  if (port_text.empty()) {
    if (out.scheme == "https") {
      out.port = 443;
    } else if (out.scheme == "http") {
      out.port = 80;
    } else {
      return std::nullopt;
    }
  } else {
    auto port = http::parse_canonical_int64(port_text);
    if (!port || *port < 1 || *port > 65535) return std::nullopt;
    out.port = static_cast<int>(*port);
  }
  return out;
}

// "scheme://authority", ignoring any path; nullopt when it is not one.
std::optional<OriginParts> parse_origin(std::string_view text) {
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  std::string_view authority = text.substr(sep + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  return parse_authority(text.substr(0, sep), authority);
}

}  // namespace

bool https_request(const ApiContext& ctx, const http::Request& request) {
  return request.secure ||
         (ctx.public_url.size() >= 8 &&
          http::iequals(std::string_view(ctx.public_url).substr(0, 8), "https://"));
}

bool origin_allowed(const ApiContext& ctx, const http::Request& req, const std::string& origin) {
  if (origin.empty() || origin == "null") return false;
  for (const auto& trusted : ctx.trusted_origins) {
    if (origin == trusted) return true;
  }
  auto theirs = parse_origin(origin);
  if (!theirs) return false;
  for (const auto& trusted : ctx.trusted_origins) {
    if (parse_origin(trusted) == theirs) return true;
  }
  if (!ctx.public_url.empty() && parse_origin(ctx.public_url) == theirs) return true;
  // The request's own origin: its Host under the scheme the browser used. Behind a
  // TLS-terminating proxy this server sees plain HTTP, so the scheme comes from https_request().
  auto host = req.headers.get("Host");
  if (!host || host->empty()) return false;
  return parse_authority(https_request(ctx, req) ? "https" : "http", *host) == theirs;
}

std::string cookie_value(const http::Request& request, std::string_view name) {
  for (const auto& field : request.headers) {
    if (!http::iequals(field.name, "Cookie")) continue;
    std::string_view rest = field.value;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
        return std::string(trim(pair.substr(eq + 1)));
      }
    }
  }
  return {};
}

std::string_view session_cookie_name(const ApiContext& ctx, const http::Request& request) {
  return https_request(ctx, request) ? kSecureSessionCookie : kSessionCookie;
}

std::string session_cookie(const std::string& token, std::chrono::seconds max_age, bool secure) {
  // HttpOnly: scripts cannot read it. SameSite=Strict: other sites' requests never carry it.
  // Secure with __Host-: only https may set or read it (Path=/ and no Domain, as the prefix
  // demands).
  return std::string(secure ? kSecureSessionCookie : kSessionCookie) + "=" + token +
         "; Path=/; Max-Age=" + std::to_string(max_age.count()) + "; HttpOnly; SameSite=Strict" +
         (secure ? "; Secure" : "");
}

std::string request_origin(const ApiContext& ctx, const http::Request& request) {
  if (!ctx.public_url.empty()) return ctx.public_url;
  auto host = request.headers.get("Host");
  return (request.secure ? "https://" : "http://") +
         std::string(host ? *host : std::string_view("127.0.0.1"));
}

http::Middleware authenticate_middleware(const ApiContext& ctx) {
  return [&ctx](const http::ExchangePtr& ex, const http::Next& next) {
    const http::Request& req = ex->request();
    std::string secret;
    bool via_cookie = false;
    if (auto authz = req.headers.get("Authorization"); authz) {
      std::string_view v = trim(*authz);
      if (v.size() > 7 && http::iequals(v.substr(0, 7), "Bearer ")) {
        secret = std::string(trim(v.substr(7)));
      }
      if (secret.empty()) {
        return ex->respond(http::Response::error(
            401, "unauthenticated", "the Authorization header must be 'Bearer <token>'",
            "Authorization"));
      }
    } else {
      secret = cookie_value(req, session_cookie_name(ctx, req));
      via_cookie = !secret.empty();
    }
    if (secret.empty() || !ctx.store) return next();

    Caller caller;
    caller.via_cookie = via_cookie;
    caller.secret_hash = auth::hash_secret(secret);
    bool found = false;
    Status st = ctx.store->read([&](store::Db& db) -> Status {
      auto p = auth::account_db::find_principal(db, caller.secret_hash, ctx.now());
      if (!p.is_ok()) return p.status();
      if (p->has_value()) {
        caller.principal = std::move(p->value());
        found = true;
      }
      return Status::ok();
    });
    if (!st.is_ok()) {
      return ex->respond(
          http::Response::error(503, "unavailable", "cannot check credentials right now"));
    }
    if (!found) return next();  // anonymous: protected routes answer 401

    // Remember when a credential was last used (shown in GET /tokens), at most once a minute
    // per credential so that a busy script does not turn every request into a write. Nobody
    // waits for it: losing one such update costs nothing.
    const SysTime now = ctx.now();
    if (!caller.principal.last_used_at || now - *caller.principal.last_used_at >= kTouchInterval) {
      ctx.store->submit_write(
          [id = caller.principal.credential_id, now](store::Db& db) {
            return auth::account_db::touch_credential(db, id, now);
          },
          [](Status) {});
    }

    if (via_cookie && unsafe_method(req.method)) {
      std::string origin;
      if (auto o = req.headers.get("Origin"); o) {
        origin = std::string(*o);
      } else if (auto r = req.headers.get("Referer"); r) {
        origin = origin_of_url(*r);
      }
      if (!origin_allowed(ctx, req, origin)) {
        return ex->respond(http::Response::error(
            403, "forbidden", "cross-origin request refused: Origin does not match this server",
            "Origin"));
      }
    }
    ex->attributes.emplace(std::string(kCallerKey), std::move(caller));
    next();
  };
}

const Caller* caller_of(const http::Exchange& ex) {
  auto it = ex.attributes.find(std::string(kCallerKey));
  if (it == ex.attributes.end()) return nullptr;
  return std::any_cast<Caller>(&it->second);
}

Result<const Caller*> require_caller(const http::Exchange& ex) {
  const Caller* c = caller_of(ex);
  if (!c) return Status(StatusCode::kUnauthenticated, "log in or send a valid API token");
  return c;
}

Status require_scope(const Caller& caller, auth::Scope needed) {
  if (static_cast<int>(caller.principal.scope) >= static_cast<int>(needed)) return Status::ok();
  return Status(StatusCode::kPermissionDenied,
                "this token's scope '" + std::string(auth::scope_name(caller.principal.scope)) +
                    "' does not allow this; it needs '" + std::string(auth::scope_name(needed)) +
                    "'");
}

Status require_instance_admin(const Caller& caller) {
  if (!caller.principal.user.is_admin) {
    return Status(StatusCode::kPermissionDenied, "only instance admins may do this");
  }
  return require_scope(caller, auth::Scope::kAdmin);
}

Result<projects::Role> project_role(store::Db& db, const Caller& caller, int64_t project_id) {
  ATELIER_ASSIGN_OR_RETURN(
      const std::optional<projects::Role> role,
      projects::project_db::member_role(db, project_id, caller.principal.user.id));
  if (!role) return Status::not_found("no such project");
  return *role;
}

Status require_role(projects::Role have, projects::Role needed) {
  if (static_cast<int>(have) >= static_cast<int>(needed)) return Status::ok();
  return Status(StatusCode::kPermissionDenied, "your role '" +
                                                   std::string(projects::role_name(have)) +
                                                   "' does not allow this; it needs '" +
                                                   std::string(projects::role_name(needed)) + "'");
}

Result<projects::Role> authorize_project(store::Db& db, const Caller& caller, int64_t project_id,
                                         auth::Scope scope, projects::Role role) {
  ATELIER_ASSIGN_OR_RETURN(const projects::Role have, project_role(db, caller, project_id));
  ATELIER_RETURN_IF_ERROR(require_scope(caller, scope));
  ATELIER_RETURN_IF_ERROR(require_role(have, role));
  return have;
}

Status add_signed_in_route(http::Router& router, const ApiContext& ctx, http::Method method,
                           std::string_view pattern, CallerHandler fn, http::RouteOptions options) {
  const ApiContext* c = &ctx;
  return router.add(
      method, pattern,
      [c, fn](const http::ExchangePtr& ex) {
        auto caller = require_caller(*ex);
        if (!caller.is_ok()) return ex->respond(error_response(caller.status()));
        fn(*c, ex, **caller);
      },
      options);
}

}  // namespace atelier::api
