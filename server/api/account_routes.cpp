#include "server/api/account_routes.h"

#include <algorithm>
#include <memory>

#include "common/logging.h"
#include "common/metrics.h"
#include "server/api/access.h"
#include "server/api/api_json.h"
#include "server/api/credential_routes.h"
#include "server/api/credential_watch.h"
#include "server/api/errors.h"
#include "server/api/invites.h"
#include "server/api/json_body.h"
#include "server/api/query_params.h"
#include "server/auth/password.h"
#include "server/auth/token.h"
#include "server/auth/username.h"

namespace atelier::api {

using http::ExchangePtr;
using http::Method;
using http::Response;
namespace adb = auth::account_db;

namespace {

constexpr std::string_view kSessionPrefix = "atl_s_";
constexpr std::string_view kApiTokenPrefix = "atl_t_";

struct Credentials {
  std::string username;  // normalized
  std::string password;
  std::optional<std::string> invite;
};

Result<Credentials> read_credentials(const http::Request& req, bool with_invite) {
  return read_json_body(req, [&](JsonBody& body) -> Result<Credentials> {
    auto username = body.required_string("username", 64);
    if (!username.is_ok()) return username.status();
    auto password =
        body.required_string("password", {.min_chars = 1, .max_chars = 1024, .multiline = true});
    if (!password.is_ok()) return password.status();
    Credentials c{std::move(*username), std::move(*password), std::nullopt};
    if (with_invite) {
      auto invite = body.optional_string("invite", 200);
      if (!invite.is_ok()) return invite.status();
      c.invite = std::move(*invite);
    }
    return c;
  });
}

// The client's IP without the port, the key for per-address login throttling.
std::string client_ip(const http::Request& req) {
  const std::string& a = req.remote_address;
  size_t colon = a.rfind(':');
  return colon == std::string::npos ? a : a.substr(0, colon);
}

// Stores a new browser session for `user` and builds the {user, token} answer with its cookie.
// `secure_cookie`: https_request() of the request that signs in (names and marks the cookie).
Result<Response> start_session(store::Db& db, const ApiContext& ctx, const auth::User& user,
                               int status, bool secure_cookie) {
  std::string secret = auth::generate_secret(kSessionPrefix);
  const SysTime now = ctx.now();
  ATELIER_RETURN_IF_ERROR(adb::insert_credential(db, user.id, auth::CredentialKind::kSession,
                                                 "browser session", auth::Scope::kAdmin,
                                                 auth::hash_secret(secret), now,
                                                 now + ctx.session_ttl)
                              .status());
  Response r = json_response(status, {{"user", user_json(user)}, {"token", secret}});
  r.headers.add("Set-Cookie", session_cookie(secret, ctx.session_ttl, secure_cookie));
  r.headers.set("Cache-Control", "no-store");
  return r;
}

// Hashing takes ~0.15 s and 64 MiB: a bounded pool does it, and a full pool means "busy".
bool run_on_hash_pool(const ApiContext& ctx, const ExchangePtr& ex, std::function<void()> task) {
  if (ctx.hash_pool && ctx.hash_pool->try_submit(std::move(task))) return true;
  ex->respond(Response::error(503, "unavailable", "the server is busy; try again shortly"));
  return false;
}

// The throttle's holds for one attempt, shared with its hash-pool task (std::function needs a
// copyable closure). Whatever is not committed is released when the last owner goes, so an
// attempt that never reached the hash (a full pool, a refused password) does not count.
using Holds = std::vector<auth::RateLimiter::Reservation>;

// Reserves one attempt on `keys` of `limiter` (null: unlimited) into `holds`. When refused,
// answers 429 with Retry-After, `what` saying which limit, and returns false.
bool reserve(auth::RateLimiter* limiter, std::vector<std::string> keys, std::string_view what,
             const ExchangePtr& ex, Holds& holds) {
  if (!limiter) return true;
  auto attempt = limiter->try_acquire(std::move(keys));
  if (attempt.admitted()) {
    holds.push_back(std::move(attempt.reservation));
    return true;
  }
  const std::string wait = std::to_string(attempt.retry_after.count());
  Response r =
      Response::error(429, "rate_limited", std::string(what) + "; try again in " + wait + " s");
  r.headers.set("Retry-After", wait);
  ex->respond(std::move(r));
  return false;
}

void handle_register(const ApiContext& ctx, const ExchangePtr& ex) {
  auto input = read_credentials(ex->request(), /*with_invite=*/true);
  if (!input.is_ok()) return respond_error(ex, input.status());
  auto username = auth::normalize_username(input->username);
  if (!username.is_ok()) return respond_error(ex, username.status());
  // The length rules here; the block list (1-2 ms under a process-wide lock) in the pool below.
  if (Status st = auth::validate_password_length(input->password); !st.is_ok()) {
    return respond_error(ex, st);
  }
  const bool closed = ctx.registration == RegistrationMode::kClosed;
  if (closed || (ctx.registration == RegistrationMode::kInvite && !input->invite)) {
    // Refused before any hashing. Checked again in the transaction with the user count (the
    // first account needs neither an invite nor open registration).
    int64_t users = 0;
    Status st = ctx.store->read([&](store::Db& db) -> Status {
      auto n = adb::count_users(db);
      if (!n.is_ok()) return n.status();
      users = *n;
      return Status::ok();
    });
    if (!st.is_ok()) return respond_error(ex, st);
    if (users > 0 && closed) {
      return respond_error(
          ex, Status(StatusCode::kPermissionDenied,
                     "registration is closed on this server; ask an admin for an account"));
    }
    if (users > 0) {
      return respond_error(ex, Status::invalid_argument(
                                   "registration needs an invite code on this server", "invite"));
    }
  }
  // Every registration that reaches the hash counts, per client address and instance-wide.
  auto holds = std::make_shared<Holds>();
  if (!reserve(ctx.registration_ip_limiter, {"ip:" + client_ip(ex->request())},
               "too many registrations from this address", ex, *holds) ||
      !reserve(ctx.registration_limiter, {"all"}, "too many registrations on this server", ex,
               *holds)) {
    return;
  }
  auto creds = std::make_shared<Credentials>(std::move(*input));
  creds->username = std::move(*username);
  run_on_hash_pool(ctx, ex, [&ctx, ex, creds, holds] {
    // A refused password is bad input: its holds are released, not counted.
    if (Status st = auth::validate_password(creds->password, creds->username); !st.is_ok()) {
      return respond_error(ex, st);
    }
    for (auto& hold : *holds) hold.commit();
    auto hash = auth::hash_password(creds->password, ctx.password_cost);
    if (!hash.is_ok()) return respond_error(ex, hash.status());
    respond_after_write(
        ex, *ctx.store,
        [&ctx, creds, hash = *hash,
         secure = https_request(ctx, ex->request())](store::Db& db) -> Result<Response> {
          auto count = adb::count_users(db);
          if (!count.is_ok()) return count.status();
          const bool first = *count == 0;
          if (!first && ctx.registration == RegistrationMode::kClosed) {
            return Status(StatusCode::kPermissionDenied,
                          "registration is closed on this server; ask an admin for an account");
          }
          if (!first && ctx.registration == RegistrationMode::kInvite && !creds->invite) {
            return Status::invalid_argument("registration needs an invite code on this server",
                                            "invite");
          }
          ATELIER_ASSIGN_OR_RETURN(
              const auth::User user,
              adb::insert_user(db, creds->username, hash, /*is_admin=*/first, ctx.now()));
          if (creds->invite) {
            ATELIER_RETURN_IF_ERROR(accept_invite(db, ctx, *creds->invite, user.id).status());
          }
          return start_session(db, ctx, user, 201, secure);
        });
  });
}

void handle_login(const ApiContext& ctx, const ExchangePtr& ex) {
  auto input = read_credentials(ex->request(), /*with_invite=*/false);
  if (!input.is_ok()) return respond_error(ex, input.status());
  auto creds = std::make_shared<Credentials>(std::move(*input));
  auto normalized = auth::normalize_username(creds->username);
  creds->username = normalized.is_ok() ? *normalized : std::string();
  const std::string user_key = "user:" + creds->username;
  // Reserved before the hash, so guesses in flight count too: at most login_max_failures wrong
  // passwords per username (and per address) are ever checked, however many arrive at once.
  auto holds = std::make_shared<Holds>();
  if (!reserve(ctx.login_limiter, {user_key, "ip:" + client_ip(ex->request())},
               "too many failed logins", ex, *holds)) {
    return;
  }
  std::optional<auth::UserWithHash> found;
  if (!creds->username.empty()) {
    Status st = ctx.store->read([&](store::Db& db) -> Status {
      auto u = adb::find_user_by_username(db, creds->username);
      // No such user is answered below exactly as a wrong password.
      if (u.status().code() == StatusCode::kNotFound) return Status::ok();
      if (!u.is_ok()) return u.status();
      found = std::move(u).value();
      return Status::ok();
    });
    if (!st.is_ok()) return respond_error(ex, st);
  }
  auto user = std::make_shared<std::optional<auth::UserWithHash>>(std::move(found));
  run_on_hash_pool(ctx, ex, [&ctx, ex, creds, user, user_key, holds] {
    // An unknown user still costs one verification, so timing does not tell who exists.
    static const std::string dummy =
        auth::hash_password("not the password of anyone", ctx.password_cost).value();
    if (ctx.password_verifications) ctx.password_verifications->inc();
    bool ok = auth::verify_password(*user ? (*user)->password_hash : dummy, creds->password);
    if (!ok || !*user) {
      for (auto& hold : *holds) hold.commit();
      return respond_error(
          ex, Status(StatusCode::kUnauthenticated, "wrong username or password", "password"));
    }
    for (auto& hold : *holds) hold.release();  // the right password: nothing counts
    if ((*user)->user.disabled) {
      return respond_error(
          ex, Status(StatusCode::kPermissionDenied, "this account has been disabled by an admin"));
    }
    if (ctx.login_limiter) ctx.login_limiter->record_success(user_key);
    auth::User u = (*user)->user;
    respond_after_write(
        ex, *ctx.store,
        [&ctx, u, secure = https_request(ctx, ex->request())](store::Db& db) -> Result<Response> {
          return start_session(db, ctx, u, 200, secure);
        });
  });
}

void handle_logout(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  int64_t user_id = caller.principal.user.id;
  int64_t credential_id = caller.principal.credential_id;
  respond_after_write(
      ex, *ctx.store,
      [&ctx, user_id, credential_id,
       secure = https_request(ctx, ex->request())](store::Db& db) -> Result<Response> {
        ATELIER_RETURN_IF_ERROR(adb::revoke_credential(db, user_id, credential_id, ctx.now()));
        revoke_after_commit(db, ctx.credential_watch, credential_id);
        Response r;
        r.status = 204;
        r.headers.add("Set-Cookie", session_cookie("", std::chrono::seconds(0), secure));
        return r;
      });
}

void handle_me(const ApiContext&, const ExchangePtr& ex, const Caller& caller) {
  const auth::Principal& p = caller.principal;
  ex->respond(json_response(
      200, {{"user", user_json(p.user)},
            {"credential",
             {{"kind", p.kind == auth::CredentialKind::kSession ? "session" : "api_token"},
              {"scope", auth::scope_name(p.scope)}}}}));
}

struct NewToken {
  std::string name;
  auth::Scope scope;
  std::optional<std::chrono::seconds> expires_in;
};

void handle_create_token(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  auto input = read_json_body(ex->request(), [](JsonBody& body) -> Result<NewToken> {
    auto name = body.required_string("name", {.min_chars = 1, .max_chars = 100});
    if (!name.is_ok()) return name.status();
    auto scope = body.required_enum("scope", {"read", "submit", "admin"});
    if (!scope.is_ok()) return scope.status();
    auto expires = body.optional_int("expires_in_s", 60, int64_t{10} * 365 * 24 * 3600);
    if (!expires.is_ok()) return expires.status();
    std::optional<std::chrono::seconds> expires_in;
    if (*expires) expires_in = std::chrono::seconds(**expires);
    return NewToken{std::move(*name), *auth::parse_scope(*scope), expires_in};
  });
  if (!input.is_ok()) return respond_error(ex, input.status());
  int64_t user_id = caller.principal.user.id;
  respond_after_write(
      ex, *ctx.store, [&ctx, user_id, in = *input](store::Db& db) -> Result<Response> {
        const SysTime now = ctx.now();
        // In the write transaction, so concurrent creations cannot slip past it together.
        ATELIER_ASSIGN_OR_RETURN(const int64_t held, adb::count_api_tokens(db, user_id, now));
        if (held >= ctx.max_tokens_per_user) {
          return Status(StatusCode::kPermissionDenied, "you hold " + std::to_string(held) +
                                                           " API tokens, the most this server "
                                                           "allows (max_tokens_per_user = " +
                                                           std::to_string(ctx.max_tokens_per_user) +
                                                           "); revoke one first");
        }
        std::string secret = auth::generate_secret(kApiTokenPrefix);
        std::optional<SysTime> expires_at;
        if (in.expires_in) expires_at = now + *in.expires_in;
        ATELIER_ASSIGN_OR_RETURN(
            const int64_t id,
            adb::insert_credential(db, user_id, auth::CredentialKind::kApiToken, in.name, in.scope,
                                   auth::hash_secret(secret), now, expires_at));
        auto body = api_token_json({id, in.name, in.scope, now, expires_at, std::nullopt});
        body["token"] = secret;  // shown this once; only its hash is kept
        Response r = json_response(201, body);
        r.headers.set("Cache-Control", "no-store");
        return r;
      });
}

// Paged like the other lists (newest first by id, ?limit=, ?before=, next_before). The page is
// cut here from the user's whole list of usable tokens (account_db has no paged query): the
// response is bounded, the read grows with the tokens the user has made.
void handle_list_tokens(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  auto page = query_page(ex->request());
  if (!page.is_ok()) return respond_error(ex, page.status());
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_ASSIGN_OR_RETURN(auto tokens,
                             adb::list_api_tokens(db, caller.principal.user.id, ctx.now()));
    // By id, not created_at, so the cursor stays exact should the clock ever step back.
    std::ranges::sort(tokens, std::ranges::greater{}, &auth::ApiTokenInfo::id);
    nlohmann::json list = nlohmann::json::array();
    nlohmann::json next = nlohmann::json(nullptr);
    for (const auto& t : tokens) {
      if (page->before && t.id >= *page->before) continue;
      list.push_back(api_token_json(t));
      if (static_cast<int64_t>(list.size()) == page->limit) {
        next = t.id;  // a full page names the next one, as every paged list does
        break;
      }
    }
    return json_response(200, {{"tokens", list}, {"next_before", next}});
  });
}

void handle_delete_token(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  int64_t user_id = caller.principal.user.id;
  int64_t token_id = ex->params().get_int("id");
  respond_after_write(ex, *ctx.store, [&ctx, user_id, token_id](store::Db& db) -> Result<Response> {
    Status st = adb::revoke_credential(db, user_id, token_id, ctx.now());
    if (st.code() == StatusCode::kNotFound) return Status::not_found("no such token");
    ATELIER_RETURN_IF_ERROR(st);
    revoke_after_commit(db, ctx.credential_watch, token_id);
    Response r;
    r.status = 204;
    return r;
  });
}

// Every account, disabled ones included, a page at a time (newest first), like the other lists.
void handle_admin_list_users(const ApiContext& ctx, const ExchangePtr& ex, const Caller&) {
  auto page = query_page(ex->request());
  if (!page.is_ok()) return respond_error(ex, page.status());
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_ASSIGN_OR_RETURN(const auto users, adb::list_users_page(db, page->limit, page->before));
    return page_response(
        "users", users, page->limit, [](const auth::User& u) { return user_json(u); },
        [](const auth::User& u) { return u.id; });
  });
}

void handle_admin_update_user(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  auto disabled = read_json_body(
      ex->request(), [](JsonBody& body) -> Result<bool> { return body.required_bool("disabled"); });
  if (!disabled.is_ok()) return respond_error(ex, disabled.status());
  int64_t target = ex->params().get_int("id");
  if (target == caller.principal.user.id && *disabled) {
    return respond_error(ex, Status::failed_precondition("you cannot disable your own account"));
  }
  respond_after_write(
      ex, *ctx.store, [&ctx, target, off = *disabled](store::Db& db) -> Result<Response> {
        Status st = adb::set_disabled(db, target, off);
        if (st.code() == StatusCode::kNotFound) return Status::not_found("no such user");
        ATELIER_RETURN_IF_ERROR(st);
        // Disabling takes effect at once: every session and token of the user stops working, and
        // their open WebSockets and streams close.
        if (off) {
          ATELIER_RETURN_IF_ERROR(adb::revoke_all_credentials(db, target, ctx.now()));
          revoke_user_after_commit(db, ctx.credential_watch, target);
        }
        ATELIER_ASSIGN_OR_RETURN(const auth::User user, adb::find_user(db, target));
        return json_response(200, {{"user", user_json(user)}});
      });
}

}  // namespace

Status register_account_routes(http::Router& router, const ApiContext& ctx) {
  const ApiContext* c = &ctx;
  auto route = [&](Method m, std::string_view pattern,
                   void (*fn)(const ApiContext&, const ExchangePtr&)) {
    return router.add(m, pattern, [c, fn](const ExchangePtr& ex) { fn(*c, ex); });
  };
  // Routes for signed-in callers: 401 when anonymous, 403 when the gate refuses.
  enum class Gate { kAnyScope, kAdminScope, kInstanceAdmin };
  auto signed_in = [&](Method m, std::string_view pattern, Gate gate,
                       void (*fn)(const ApiContext&, const ExchangePtr&, const Caller&)) {
    return router.add(m, pattern, [c, fn, gate](const ExchangePtr& ex) {
      auto caller = require_caller(*ex);
      if (!caller.is_ok()) return respond_error(ex, caller.status());
      Status st = gate == Gate::kAdminScope      ? require_scope(**caller, auth::Scope::kAdmin)
                  : gate == Gate::kInstanceAdmin ? require_instance_admin(**caller)
                                                 : Status::ok();
      if (!st.is_ok()) return respond_error(ex, st);
      fn(*c, ex, **caller);
    });
  };
  ATELIER_RETURN_IF_ERROR(route(Method::kPost, "/api/v1/auth/register", handle_register));
  ATELIER_RETURN_IF_ERROR(route(Method::kPost, "/api/v1/auth/login", handle_login));
  // Logging out needs no scope: any credential may revoke itself.
  ATELIER_RETURN_IF_ERROR(
      signed_in(Method::kPost, "/api/v1/auth/logout", Gate::kAnyScope, handle_logout));
  ATELIER_RETURN_IF_ERROR(signed_in(Method::kGet, "/api/v1/me", Gate::kAnyScope, handle_me));
  // Tokens are account management: sessions and admin-scope tokens only.
  ATELIER_RETURN_IF_ERROR(
      signed_in(Method::kGet, "/api/v1/tokens", Gate::kAdminScope, handle_list_tokens));
  ATELIER_RETURN_IF_ERROR(
      signed_in(Method::kPost, "/api/v1/tokens", Gate::kAdminScope, handle_create_token));
  ATELIER_RETURN_IF_ERROR(signed_in(Method::kDelete, "/api/v1/tokens/{id:int}", Gate::kAdminScope,
                                    handle_delete_token));
  ATELIER_RETURN_IF_ERROR(signed_in(Method::kGet, "/api/v1/admin/users", Gate::kInstanceAdmin,
                                    handle_admin_list_users));
  ATELIER_RETURN_IF_ERROR(signed_in(Method::kPatch, "/api/v1/admin/users/{id:int}",
                                    Gate::kInstanceAdmin, handle_admin_update_user));
  ATELIER_RETURN_IF_ERROR(register_credential_routes(router, ctx));
  return Status::ok();
}

}  // namespace atelier::api
