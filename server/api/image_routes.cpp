#include "server/api/image_routes.h"

#include <fstream>
#include <iterator>

#include "common/image.h"
#include "server/api/access.h"
#include "server/api/api_json.h"
#include "server/api/errors.h"
#include "server/api/job_json.h"
#include "server/api/query_params.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job_db.h"
#include "server/jobs/reactions.h"

namespace atelier::api {

using http::ExchangePtr;
using http::Method;
using http::Response;
using jobs::ImageRecord;
using projects::Role;
namespace jdb = jobs::job_db;

namespace {

constexpr int64_t kDefaultPage = 50;
constexpr int64_t kMaxPage = 200;
constexpr int kDefaultThumb = 256;
constexpr int kMinThumb = 16;
constexpr int kMaxThumb = 1024;
constexpr int kThumbQuality = 80;
constexpr int kChildrenShown = 100;

Status require_images(const ApiContext& ctx) {
  if (!ctx.images) return Status::unavailable("the image store is not running");
  return Status::ok();
}

// The image, if the caller may see it (member with read scope); 404 otherwise.
Result<ImageRecord> visible_image(store::Db& db, const Caller& caller, int64_t image_id) {
  ATELIER_ASSIGN_OR_RETURN(ImageRecord image, jdb::find_image(db, image_id));  // "no such image"
  ATELIER_RETURN_IF_ERROR(
      authorize_project(db, caller, image.project_id, auth::Scope::kRead, Role::kViewer).status());
  return image;
}

bool is_not_found(const Status& st) {
  return st.code() == StatusCode::kNotFound;
}

void handle_list(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  const int64_t project_id = ex->params().get_int("id");
  auto limit = query_int(ex->request(), "limit", kDefaultPage, 1, kMaxPage);
  if (!limit.is_ok()) return respond_error(ex, limit.status());
  auto before = query_before(ex->request());
  if (!before.is_ok()) return respond_error(ex, before.status());
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_RETURN_IF_ERROR(
        authorize_project(db, caller, project_id, auth::Scope::kRead, Role::kViewer).status());
    ATELIER_ASSIGN_OR_RETURN(std::vector<ImageRecord> list,
                             jdb::list_images(db, project_id, *limit, *before));
    std::vector<int64_t> ids;
    for (const ImageRecord& image : list) ids.push_back(image.id);
    ATELIER_ASSIGN_OR_RETURN(auto counts, jobs::reactions::counts_for(db, ids));
    nlohmann::json out = nlohmann::json::array();
    for (const ImageRecord& image : list) {
      nlohmann::json item = image_json(image);
      auto c = counts.find(image.id);
      item["reactions"] = c == counts.end() ? nlohmann::json::object() : nlohmann::json(c->second);
      out.push_back(std::move(item));
    }
    nlohmann::json next = nlohmann::json(nullptr);
    if (static_cast<int64_t>(list.size()) == *limit) next = list.back().id;
    return json_response(200, {{"images", out}, {"next_before", next}});
  });
}

void handle_get(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  const int64_t id = ex->params().get_int("id");
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_ASSIGN_OR_RETURN(ImageRecord image, visible_image(db, caller, id));
    nlohmann::json out = image_json(image);
    // The job and the parent are extras: the image is shown without them when they are gone.
    Result<jobs::Job> job = image.job_id ? jdb::find_job(db, *image.job_id)
                                         : Result<jobs::Job>(Status::not_found("an upload"));
    if (!job.is_ok() && !is_not_found(job.status())) return job.status();
    if (job.is_ok()) {
      const jobs::JobParams& p = job->params;
      out["model"] = p.model;
      out["prompt"] = p.prompt;
      out["negative_prompt"] = p.negative_prompt;
      out["steps"] = p.steps;
      out["guidance"] = p.guidance;
      out["sampler"] = p.sampler;
      out["mode"] = inference::mode_name(p.mode);
      out["strength"] = p.strength;
      out["parameters"] = jobs::a1111_parameters(p, image.seed, image.width, image.height);
      add_generation_fields(out, p);
    }
    out["parent"] = nullptr;
    if (image.parent_image_id) {
      Result<ImageRecord> parent = jdb::find_image(db, *image.parent_image_id);
      if (!parent.is_ok() && !is_not_found(parent.status())) return parent.status();
      if (parent.is_ok()) out["parent"] = image_json(*parent);
    }
    ATELIER_ASSIGN_OR_RETURN(auto counts, jobs::reactions::counts(db, id));
    out["reactions"] = counts.empty() ? nlohmann::json::object() : nlohmann::json(counts);
    ATELIER_ASSIGN_OR_RETURN(out["my_reactions"],
                             jobs::reactions::mine(db, id, caller.principal.user.id));
    ATELIER_ASSIGN_OR_RETURN(std::vector<ImageRecord> children,
                             jdb::children_of(db, id, kChildrenShown));
    nlohmann::json kids = nlohmann::json::array();
    for (const ImageRecord& c : children) kids.push_back(image_json(c));
    out["children"] = kids;
    return json_response(200, out);
  });
}

Response file_response(const std::filesystem::path& path, std::string_view content_type,
                       const std::string& etag) {
  Response r;
  r.file = path;
  r.headers.set("Content-Type", content_type);
  // Content-addressed: the bytes behind a URL never change. Private: membership decides.
  r.headers.set("Cache-Control", "private, max-age=31536000, immutable");
  r.headers.set("ETag", "\"" + etag + "\"");
  return r;
}

bool etag_matches(const http::Request& req, const std::string& etag) {
  auto inm = req.headers.get("If-None-Match");
  return inm && inm->find("\"" + etag + "\"") != std::string_view::npos;
}

Response not_modified(const std::string& etag) {
  Response r;
  r.status = 304;
  r.headers.set("ETag", "\"" + etag + "\"");
  return r;
}

void handle_file(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_images(ctx); !st.is_ok()) return respond_error(ex, st);
  const int64_t id = ex->params().get_int("id");
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_ASSIGN_OR_RETURN(ImageRecord image, visible_image(db, caller, id));
    if (etag_matches(ex->request(), image.sha256)) return not_modified(image.sha256);
    Response r = file_response(ctx.images->path_for(image.sha256), "image/png", image.sha256);
    r.headers.set("Content-Disposition",
                  "inline; filename=\"atelier-" + std::to_string(id) + ".png\"");
    return r;
  });
}

Result<std::vector<uint8_t>> render_thumb(const std::filesystem::path& png, int size, bool jpeg) {
  std::ifstream in(png, std::ios::binary);
  if (!in) return Status::not_found("the image file is missing");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  ATELIER_ASSIGN_OR_RETURN(image::Image decoded, image::decode_png(bytes));
  image::Image small = image::resize_box(decoded, size);
  return jpeg ? image::encode_jpeg(small, kThumbQuality) : image::encode_webp(small, kThumbQuality);
}

void handle_thumb(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_images(ctx); !st.is_ok()) return respond_error(ex, st);
  const int64_t id = ex->params().get_int("id");
  auto size =
      query_int(ex->request(), "size", kDefaultThumb, kMinThumb, kMaxThumb, AboveMax::kRefuse);
  if (!size.is_ok()) return respond_error(ex, size.status());
  bool jpeg = false;
  if (auto format = ex->request().query_param("format"); format && !format->empty()) {
    if (*format != "webp" && *format != "jpeg") {
      return respond_error(
          ex, Status::invalid_argument("query parameter 'format' must be webp or jpeg", "format"));
    }
    jpeg = *format == "jpeg";
  }
  std::optional<ImageRecord> image;
  Status st = ctx.store->read([&](store::Db& db) -> Status {
    ATELIER_ASSIGN_OR_RETURN(image, visible_image(db, caller, id));
    return Status::ok();
  });
  if (!st.is_ok()) return respond_error(ex, st);
  const std::string etag = image->sha256 + "-" + std::to_string(*size) + (jpeg ? "j" : "w");
  if (etag_matches(ex->request(), etag)) return ex->respond(not_modified(etag));
  const std::string_view type = jpeg ? "image/jpeg" : "image/webp";
  auto path = ctx.images->thumb_path(image->sha256, static_cast<int>(*size), jpeg ? "jpg" : "webp");
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return ex->respond(file_response(path, type, etag));
  if (!ctx.image_pool) return respond_error(ex, Status::unavailable("no image workers"));
  jobs::ImageStore* store = ctx.images;
  auto source = store->path_for(image->sha256);
  bool queued =
      ctx.image_pool->try_submit([ex, store, source, path, size = *size, jpeg, type, etag] {
        auto thumb = render_thumb(source, static_cast<int>(size), jpeg);
        if (!thumb.is_ok()) return respond_error(ex, thumb.status());
        if (Status put = store->put_thumb(path, *thumb); !put.is_ok()) {
          return respond_error(ex, put);
        }
        ex->respond(file_response(path, type, etag));
      });
  if (!queued) respond_error(ex, Status::unavailable("busy making thumbnails; try again"));
}

}  // namespace

Status register_image_routes(http::Router& router, const ApiContext& ctx) {
  // Every route here needs a caller: anonymous requests get 401.
  auto route = [&](Method m, std::string_view pattern, CallerHandler fn) {
    return add_signed_in_route(router, ctx, m, pattern, fn);
  };
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/projects/{id:int}/images", handle_list));
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/images/{id:int}", handle_get));
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/images/{id:int}/file", handle_file));
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/images/{id:int}/thumb", handle_thumb));
  return Status::ok();
}

}  // namespace atelier::api
