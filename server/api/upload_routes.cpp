#include "server/api/upload_routes.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/image.h"
#include "common/image_decode.h"
#include "common/logging.h"
#include "server/api/access.h"
#include "server/api/api_json.h"
#include "server/api/errors.h"
#include "server/api/job_json.h"
#include "server/api/upload_request.h"
#include "server/events/event_log.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job_db.h"
#include "server/store/sql_bind.h"

namespace atelier::api {

using http::ExchangePtr;
using http::Method;
using http::Response;
using projects::Role;
namespace jdb = jobs::job_db;

namespace {

constexpr std::chrono::hours kRateWindow{1};
constexpr std::string_view kRateKey = "max_uploads_per_user_per_hour";
// A full image pool frees up within about one decode.
constexpr std::string_view kBusyRetryAfter = "1";

Status require_uploads(const ApiContext& ctx) {
  if (!ctx.store || !ctx.images || !ctx.image_pool || !ctx.events) {
    return Status::unavailable("uploads are not running");
  }
  return Status::ok();
}

// Seconds until the oldest of the user's uploads in the window leaves it, so a slot frees up:
// the Retry-After of a 429 (at least 1).
Result<int64_t> seconds_until_slot(store::Db& db, int64_t user, SysTime now) {
  ATELIER_ASSIGN_OR_RETURN(
      store::Statement stmt,
      store::prepare_bound(db,
                           "SELECT MIN(created_at) FROM images WHERE created_by = ? AND "
                           "source = 'upload' AND created_at >= ?",
                           user, to_unix_ms(now - kRateWindow)));
  ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row || stmt.column_is_null(0)) return std::chrono::seconds(kRateWindow).count();
  const auto wait = from_unix_ms(stmt.column_int64(0)) + kRateWindow - now;
  return std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(wait).count());
}

// kResourceExhausted naming "file" when the user is at max_uploads_per_user_per_hour; sets
// `retry_after` then.
Status check_rate(const ApiContext& ctx, store::Db& db, int64_t user, SysTime now,
                  std::optional<int64_t>& retry_after) {
  ATELIER_ASSIGN_OR_RETURN(int64_t recent, jdb::count_uploads_since(db, user, now - kRateWindow));
  if (recent < ctx.max_uploads_per_user_per_hour) return Status::ok();
  ATELIER_ASSIGN_OR_RETURN(retry_after, seconds_until_slot(db, user, now));
  return Status(StatusCode::kResourceExhausted,
                "at most " + std::to_string(ctx.max_uploads_per_user_per_hour) +
                    " uploads per hour (" + std::string(kRateKey) + "); try again later",
                "file");
}

void respond_refusal(const ExchangePtr& ex, const Status& st, std::optional<int64_t> retry_after) {
  Response r = error_response(st);
  if (retry_after) r.headers.set("Retry-After", std::to_string(*retry_after));
  ex->respond(std::move(r));
}

// decode_upload's errors as the route answers them: a file whose bytes are not the declared
// format is an unsupported media type (415); whatever else is wrong with it is about "file".
Status decode_refusal(const Status& st) {
  if (st.code() == StatusCode::kFailedPrecondition) return unsupported_media_type(st.message());
  if (st.code() == StatusCode::kInvalidArgument && st.field().empty()) {
    return Status::invalid_argument(st.message(), "file");
  }
  return st;
}

void hook(const ApiContext& ctx, std::string_view point) {
  if (ctx.test_hook) ctx.test_hook(point);
}

// What the pool thread works on: the exchange (which owns the body `request.file` views).
struct Upload {
  ExchangePtr ex;
  Caller caller;
  int64_t project_id = 0;
  UploadRequest request;
};

// On an image_pool thread: decode, encode, store, commit, answer.
void store_upload(const ApiContext& ctx, const Upload& up) {
  const image::UploadLimits limits{.max_pixels = ctx.max_upload_pixels};
  Result<image::Image> decoded =
      image::decode_upload(up.request.file, up.request.format, limits, up.request.alpha);
  if (!decoded.is_ok()) return respond_error(up.ex, decode_refusal(decoded.status()));
  // No text chunks: nothing of the original's metadata (EXIF, GPS, comments) survives.
  Result<std::vector<uint8_t>> png = image::encode_png(*decoded);
  if (!png.is_ok()) return respond_error(up.ex, png.status());
  Result<jobs::StoredFile> file = ctx.images->put(*png);
  if (!file.is_ok()) return respond_error(up.ex, file.status());
  hook(ctx, "upload_after_put");

  const int64_t user = up.caller.principal.user.id;
  std::optional<jobs::ImageRecord> record;
  std::optional<int64_t> retry_after;
  Status st = ctx.store->write([&](store::Db& db) -> Status {
    // Again inside the transaction: the role or the count may have changed since the request.
    ATELIER_RETURN_IF_ERROR(
        authorize_project(db, up.caller, up.project_id, auth::Scope::kSubmit, Role::kEditor)
            .status());
    const SysTime now = ctx.now();
    ATELIER_RETURN_IF_ERROR(check_rate(ctx, db, user, now, retry_after));
    jdb::NewUpload row{.project_id = up.project_id,
                       .uploaded_by = user,
                       .sha256 = file->sha256,
                       .bytes = file->bytes,
                       .width = decoded->width,
                       .height = decoded->height,
                       .original_name = up.request.original_name};
    ATELIER_ASSIGN_OR_RETURN(record, jdb::insert_upload(db, row, now));
    return ctx.events->append(db, up.project_id, user, events::ImageUploaded{*record}, now)
        .status();
  });
  if (st.is_ok()) {
    ctx.images->unpin(file->sha256);
  } else {
    jobs::ReferenceCheck referenced =
        [&ctx](std::span<const std::string> shas) -> Result<std::unordered_set<std::string>> {
      std::unordered_set<std::string> found;
      ATELIER_RETURN_IF_ERROR(ctx.store->read([&](store::Db& db) -> Status {
        ATELIER_ASSIGN_OR_RETURN(found, jdb::referenced_among(db, shas));
        return Status::ok();
      }));
      return found;
    };
    Result<bool> removed = ctx.images->discard(file->sha256, referenced);
    if (!removed.is_ok()) {
      // The running sweep removes it once it is past its grace period.
      log::warn("removing the refused upload {} failed: {}", file->sha256,
                removed.status().to_string());
    }
    return respond_refusal(up.ex, st, retry_after);
  }
  hook(ctx, "upload_after_commit");
  Response r = json_response(201, {{"image", image_json(*record)}});
  r.headers.set("Location", "/api/v1/images/" + std::to_string(record->id));
  up.ex->respond(std::move(r));
}

void handle_upload(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_uploads(ctx); !st.is_ok()) return respond_error(ex, st);
  const int64_t project_id = ex->params().get_int("id");
  // Membership, role and rate before anything about the body: outsiders learn nothing (404),
  // and a refused caller costs no decoding.
  std::optional<int64_t> retry_after;
  Status allowed = ctx.store->read([&](store::Db& db) -> Status {
    ATELIER_RETURN_IF_ERROR(
        authorize_project(db, caller, project_id, auth::Scope::kSubmit, Role::kEditor).status());
    return check_rate(ctx, db, caller.principal.user.id, ctx.now(), retry_after);
  });
  if (!allowed.is_ok()) return respond_refusal(ex, allowed, retry_after);

  Result<UploadRequest> request = parse_upload_request(ex->request());
  if (!request.is_ok()) return respond_error(ex, request.status());
  // The body limit let multipart framing through; the file itself gets max_upload_bytes.
  if (static_cast<int64_t>(request->file.size()) > ctx.max_upload_bytes) {
    return ex->respond(http::Response::error(413, "body_too_large",
                                             "the file is larger than max_upload_bytes (" +
                                                 std::to_string(ctx.max_upload_bytes) + " bytes)",
                                             "file"));
  }
  auto up = std::make_shared<const Upload>(Upload{ex, caller, project_id, std::move(*request)});
  const ApiContext* c = &ctx;
  if (!ctx.image_pool->try_submit([c, up] { store_upload(*c, *up); })) {
    Response r = error_response(Status::unavailable("busy processing images; try again"));
    r.headers.set("Retry-After", kBusyRetryAfter);
    ex->respond(std::move(r));
  }
}

}  // namespace

Status register_upload_routes(http::Router& router, const ApiContext& ctx) {
  // The route's own body limit: the file plus room for multipart framing, refused from the
  // Content-Length before any body byte is read.
  const uint64_t limit =
      static_cast<uint64_t>(std::max<int64_t>(ctx.max_upload_bytes, 0)) + kMultipartOverheadBytes;
  return add_signed_in_route(router, ctx, Method::kPost, "/api/v1/projects/{id:int}/uploads",
                             handle_upload, http::RouteOptions{.max_body_bytes = limit});
}

}  // namespace atelier::api
