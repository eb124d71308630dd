#include "server/api/credential_routes.h"

#include <memory>
#include <string>
#include <utility>

#include "server/api/access.h"
#include "server/api/api_json.h"
#include "server/api/credential_db.h"
#include "server/api/credential_watch.h"
#include "server/api/errors.h"
#include "server/api/json_body.h"
#include "server/auth/password.h"
#include "server/auth/rate_limiter.h"

namespace atelier::api {

namespace {

namespace adb = auth::account_db;
using http::ExchangePtr;
using http::Response;

struct PasswordChange {
  std::string current;
  std::string next;
};

Result<PasswordChange> read_password_change(const http::Request& req) {
  return read_json_body(req, [](JsonBody& body) -> Result<PasswordChange> {
    const TextRule rule{.min_chars = 1, .max_chars = auth::kMaxPasswordBytes, .multiline = true};
    ATELIER_ASSIGN_OR_RETURN(std::string current, body.required_string("current_password", rule));
    ATELIER_ASSIGN_OR_RETURN(std::string next, body.required_string("new_password", rule));
    return PasswordChange{std::move(current), std::move(next)};
  });
}

// Reserves an attempt on the login throttle's key for the user (an empty reservation when there
// is no limiter), or answers 429 with Retry-After and returns null.
std::shared_ptr<auth::RateLimiter::Reservation> reserve_attempt(const ApiContext& ctx,
                                                                const ExchangePtr& ex,
                                                                const std::string& key) {
  auto held = std::make_shared<auth::RateLimiter::Reservation>();
  if (!ctx.login_limiter) return held;
  auto attempt = ctx.login_limiter->try_acquire({key});
  if (!attempt.admitted()) {
    const auto wait = attempt.retry_after.count();
    Response r =
        Response::error(429, "rate_limited",
                        "too many wrong passwords; try again in " + std::to_string(wait) + " s");
    r.headers.set("Retry-After", std::to_string(wait));
    ex->respond(std::move(r));
    return nullptr;
  }
  *held = std::move(attempt.reservation);
  return held;
}

void handle_change_password(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  auto input = read_password_change(ex->request());
  if (!input.is_ok()) return respond_error(ex, input.status());
  // The cheap length rules here; the dictionary check (1-2 ms under a process-wide lock) runs on
  // the hash pool with the rest.
  if (Status st = auth::validate_password_length(input->next); !st.is_ok()) {
    return respond_error(ex, Status(st.code(), st.message(), "new_password"));
  }
  std::string stored_hash;
  Status read = ctx.store->read([&](store::Db& db) -> Status {
    ATELIER_ASSIGN_OR_RETURN(const auth::UserWithHash user,
                             adb::find_user_by_username(db, caller.principal.user.username));
    stored_hash = user.password_hash;
    return Status::ok();
  });
  if (!read.is_ok()) return respond_error(ex, read);
  // The login throttle's key, reserved before the hash runs: a stolen session must not guess
  // the password faster than login would let it, however many requests it sends at once.
  auto attempt = reserve_attempt(ctx, ex, "user:" + caller.principal.user.username);
  if (!attempt) return;

  auto change = std::make_shared<PasswordChange>(std::move(*input));
  const int64_t user_id = caller.principal.user.id;
  const int64_t keep = caller.principal.credential_id;
  const std::string secret_hash = caller.secret_hash;
  const std::string username = caller.principal.user.username;
  // Argon2 runs on the bounded hash pool (twice: verify, then hash), never on an I/O thread.
  auto task = [&ctx, ex, change, stored_hash, attempt, user_id, keep, secret_hash, username] {
    if (!auth::verify_password(stored_hash, change->current)) {
      attempt->commit();  // counts as a failed login
      return respond_error(ex, Status(StatusCode::kPermissionDenied,
                                      "the current password is wrong", "current_password"));
    }
    attempt->release();
    if (Status st = auth::validate_password(change->next, username); !st.is_ok()) {
      return respond_error(ex, Status(st.code(), st.message(), "new_password"));
    }
    auto hash = auth::hash_password(change->next, ctx.password_cost);
    if (!hash.is_ok()) return respond_error(ex, hash.status());
    respond_after_write(
        ex, *ctx.store,
        [&ctx, hash = *hash, user_id, keep, secret_hash](store::Db& db) -> Result<Response> {
          const SysTime now = ctx.now();
          // The credential may have been revoked while the hashes ran.
          ATELIER_ASSIGN_OR_RETURN(const auto still, adb::find_principal(db, secret_hash, now));
          if (!still) {
            return Status(StatusCode::kUnauthenticated,
                          "the credential was revoked or has expired");
          }
          ATELIER_RETURN_IF_ERROR(adb::set_password_hash(db, user_id, hash));
          ATELIER_RETURN_IF_ERROR(credential_db::revoke_other_credentials(db, user_id, keep, now));
          revoke_user_after_commit(db, ctx.credential_watch, user_id, keep);
          Response r;
          r.status = 204;
          return r;
        });
  };
  if (!ctx.hash_pool || !ctx.hash_pool->try_submit(std::move(task))) {
    ex->respond(Response::error(503, "unavailable", "the server is busy; try again shortly"));
  }
}

}  // namespace

Status register_credential_routes(http::Router& router, const ApiContext& ctx) {
  const ApiContext* c = &ctx;
  // Account management: sessions and admin-scope tokens only (as for tokens).
  return router.add(http::Method::kPost, "/api/v1/auth/password", [c](const ExchangePtr& ex) {
    auto caller = require_caller(*ex);
    if (!caller.is_ok()) return respond_error(ex, caller.status());
    if (Status st = require_scope(**caller, auth::Scope::kAdmin); !st.is_ok()) {
      return respond_error(ex, st);
    }
    handle_change_password(*c, ex, **caller);
  });
}

}  // namespace atelier::api
