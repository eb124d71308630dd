#include "server/api/job_routes.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <vector>

#include "server/api/access.h"
#include "server/api/api_json.h"
#include "server/api/edit_request.h"
#include "server/api/errors.h"
#include "server/api/event_json.h"
#include "server/api/job_json.h"
#include "server/api/job_request.h"
#include "server/api/job_streams.h"
#include "server/api/query_params.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job_db.h"
#include "server/jobs/job_service.h"

namespace atelier::api {

using http::ExchangePtr;
using http::Method;
using http::Response;
using jobs::Job;
using jobs::JobState;
using projects::Role;
namespace jdb = jobs::job_db;
namespace pdb = projects::project_db;

namespace {

constexpr int64_t kDefaultPage = 50;
constexpr int64_t kMaxPage = 200;
constexpr int64_t kDefaultEvents = 100;
constexpr int64_t kMaxEvents = 1000;
constexpr size_t kMaxIdempotencyKey = 255;

int64_t random_seed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return static_cast<int64_t>(rng() % 4294967296ull);  // A1111 draws 32-bit seeds
}

Status check_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxIdempotencyKey) {
    return Status::invalid_argument("header 'Idempotency-Key' must be 1 to 255 characters",
                                    "Idempotency-Key");
  }
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return Status::invalid_argument(
          "header 'Idempotency-Key' must be printable ASCII without spaces", "Idempotency-Key");
    }
  }
  return Status::ok();
}

Status require_jobs(const ApiContext& ctx) {
  if (!ctx.jobs || !ctx.models) return Status::unavailable("generation is not running");
  return Status::ok();
}

nlohmann::json int_param(const inference::IntParam& p) {
  nlohmann::json j = {{"min", p.min}, {"max", p.max}, {"default", p.default_value}};
  if (p.multiple_of > 1) j["multiple_of"] = p.multiple_of;
  return j;
}

nlohmann::json real_param(const inference::RealParam& p) {
  return {{"min", p.min}, {"max", p.max}, {"default", p.default_value}};
}

nlohmann::json text_or_null(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

nlohmann::json model_json(const inference::ModelInfo& m) {
  nlohmann::json modes = nlohmann::json::array();
  for (inference::Mode mode : m.modes) modes.push_back(inference::mode_name(mode));
  const int64_t max_loras =
      std::clamp<int64_t>(m.max_loras, 0, static_cast<int64_t>(kMaxLorasPerJob));
  return {{"id", m.id},
          {"kind", m.kind},
          {"description", m.description},
          {"family", text_or_null(m.family)},
          {"hash", text_or_null(m.hash)},
          {"available", m.available},
          {"unavailable_reason",
           m.available ? nlohmann::json(nullptr) : nlohmann::json(m.unavailable_reason)},
          {"native_width", m.width.default_value},
          {"native_height", m.height.default_value},
          {"size_conditioning", m.size_conditioning},
          {"max_loras", max_loras},
          {"loras", max_loras > 0 ? m.loras : std::vector<std::string>{}},
          {"params",
           {{"width", int_param(m.width)},
            {"height", int_param(m.height)},
            {"steps", int_param(m.steps)},
            {"count", int_param(m.count)},
            {"guidance", real_param(m.guidance)},
            {"strength", real_param(m.strength)},
            {"seed", {{"min", -1}, {"max", (int64_t{1} << 53) - 1}, {"default", -1}}},
            {"samplers", m.samplers},
            {"default_sampler", m.samplers.empty() ? "" : m.samplers.front()},
            {"modes", modes},
            {"upscale_factors", m.upscale_factors}}}};
}

void handle_models(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_scope(caller, auth::Scope::kRead); !st.is_ok()) {
    return respond_error(ex, st);
  }
  if (Status st = require_jobs(ctx); !st.is_ok()) return respond_error(ex, st);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : ctx.models->models()) out.push_back(model_json(m.info));
  nlohmann::json loras = nlohmann::json::array();
  for (const inference::LoraInfo& l : ctx.models->loras()) {
    loras.push_back({{"name", l.name},
                     {"family", text_or_null(l.family)},
                     {"hash", text_or_null(l.hash)},
                     {"available", l.available},
                     {"reason", l.available ? nlohmann::json(nullptr) : nlohmann::json(l.reason)}});
  }
  ex->respond(json_response(200, {{"models", out}, {"loras", loras}}));
}

// Queues a parsed submission: membership and the parent inside the submit transaction, then
// idempotency, queue limits and the job.queued event (JobService::submit).
void submit_parsed(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller,
                   int64_t project_id, std::shared_ptr<const JobRequest> request,
                   std::optional<std::string> key) {
  const inference::ModelInfo* info = &ctx.models->find(request->model)->info;
  jobs::SubmitRequest submit;
  submit.project_id = project_id;
  submit.user_id = caller.principal.user.id;
  submit.idempotency_key = std::move(key);
  submit.request_hash = request->canonical_hash;
  submit.prepare = [caller, project_id, request, info,
                    seed = random_seed()](store::Db& db) -> Result<jobs::JobParams> {
    ATELIER_RETURN_IF_ERROR(
        authorize_project(db, caller, project_id, auth::Scope::kSubmit, Role::kEditor).status());
    return resolve_job_params(db, *request, *info, project_id, seed);
  };
  ctx.jobs->submit(std::move(submit), [ex](Result<jobs::SubmitResult> result) {
    if (!result.is_ok()) return respond_error(ex, result.status());
    Response r = json_response(202, job_json(result->job));
    r.headers.set("Location", "/api/v1/jobs/" + std::to_string(result->job.id));
    if (result->replayed) r.headers.set("Idempotent-Replayed", "true");
    ex->respond(std::move(r));
  });
}

// The file of an inpaint's mask when its pixels must be checked: the caller may submit to the
// project, and mask and parent are images of it with the same size. nullopt otherwise, leaving
// every refusal to the submit transaction (same answers, same order as other modes).
Result<std::optional<std::filesystem::path>> mask_to_check(const ApiContext& ctx,
                                                           const Caller& caller, int64_t project_id,
                                                           const JobRequest& r) {
  std::optional<std::filesystem::path> path;
  Status st = ctx.store->read([&](store::Db& db) -> Status {
    ATELIER_RETURN_IF_ERROR(
        authorize_project(db, caller, project_id, auth::Scope::kSubmit, Role::kEditor).status());
    auto mask = jdb::find_image(db, *r.edit.mask_image_id);
    auto parent = jdb::find_image(db, *r.parent_image_id);
    for (const auto* found : {&mask, &parent}) {
      if (!found->is_ok() && found->status().code() != StatusCode::kNotFound) {
        return found->status();
      }
      if (!found->is_ok() || (*found)->project_id != project_id) return Status::ok();
    }
    if (mask->width != parent->width || mask->height != parent->height) return Status::ok();
    path = ctx.images->path_for(mask->sha256);
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return path;
}

// On the image pool: a mask whose file is empty or cannot be read is the request's fault (400
// naming mask_image_id), so no job is queued that run_edit would fail.
Status mask_file_status(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const Status unreadable =
      Status::invalid_argument("the mask image's file cannot be read as a mask", "mask_image_id");
  if (!in) return unreadable;
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  auto empty = mask_png_is_empty(bytes);
  if (!empty.is_ok()) return unreadable;
  if (*empty) {
    return Status::invalid_argument(
        "the mask is empty: nothing in it is white (or transparent) enough to regenerate",
        "mask_image_id");
  }
  return Status::ok();
}

void handle_submit(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_jobs(ctx); !st.is_ok()) return respond_error(ex, st);
  const int64_t project_id = ex->params().get_int("id");
  auto parsed = parse_job_request(ex->request(), *ctx.models);
  if (!parsed.is_ok()) return respond_error(ex, parsed.status());
  std::optional<std::string> key;
  if (auto header = ex->request().headers.get("Idempotency-Key")) {
    if (Status st = check_idempotency_key(*header); !st.is_ok()) return respond_error(ex, st);
    key = std::string(*header);
  }
  auto request = std::make_shared<const JobRequest>(std::move(*parsed));
  if (request->mode != inference::Mode::kInpaint) {
    return submit_parsed(ctx, ex, caller, project_id, std::move(request), std::move(key));
  }
  // An empty mask is refused before anything is queued; telling needs its pixels, decoded on
  // the image pool rather than this I/O thread.
  if (!ctx.images || !ctx.image_pool) {
    return respond_error(ex, Status::unavailable("no image workers"));
  }
  auto path = mask_to_check(ctx, caller, project_id, *request);
  if (!path.is_ok()) return respond_error(ex, path.status());
  if (!*path) return submit_parsed(ctx, ex, caller, project_id, std::move(request), std::move(key));
  const ApiContext* c = &ctx;
  bool queued = ctx.image_pool->try_submit(
      [c, ex, caller, project_id, request, key, file = **path]() mutable {
        if (Status st = mask_file_status(file); !st.is_ok()) return respond_error(ex, st);
        submit_parsed(*c, ex, caller, project_id, std::move(request), std::move(key));
      });
  if (!queued) respond_error(ex, Status::unavailable("busy reading images; try again"));
}

void handle_list(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_jobs(ctx); !st.is_ok()) return respond_error(ex, st);
  const int64_t project_id = ex->params().get_int("id");
  const http::Request& req = ex->request();
  std::optional<JobState> state;
  if (auto text = req.query_param("state"); text && !text->empty()) {
    state = jobs::parse_state(*text);
    if (!state) {
      return respond_error(
          ex, Status::invalid_argument(
                  "query parameter 'state' must be queued, running, done, failed or cancelled",
                  "state"));
    }
  }
  auto limit = query_int(req, "limit", kDefaultPage, 1, kMaxPage);
  if (!limit.is_ok()) return respond_error(ex, limit.status());
  auto before = query_before(req);
  if (!before.is_ok()) return respond_error(ex, before.status());
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_RETURN_IF_ERROR(
        authorize_project(db, caller, project_id, auth::Scope::kRead, Role::kViewer).status());
    ATELIER_ASSIGN_OR_RETURN(std::vector<Job> list,
                             jdb::list_jobs(db, project_id, state, *limit, *before));
    nlohmann::json out = nlohmann::json::array();
    ctx.jobs->decorate(std::span<Job>(list));
    for (const Job& job : list) out.push_back(job_json(job));
    nlohmann::json next = nlohmann::json(nullptr);
    if (static_cast<int64_t>(list.size()) == *limit) next = list.back().id;
    return json_response(200, {{"jobs", out}, {"next_before", next}});
  });
}

// Loads a job the caller may see (viewer and read scope), else 404/403.
Result<Job> visible_job(store::Db& db, const Caller& caller, int64_t job_id) {
  ATELIER_ASSIGN_OR_RETURN(Job job, jdb::find_job(db, job_id));  // 404 "no such job"
  ATELIER_RETURN_IF_ERROR(
      authorize_project(db, caller, job.project_id, auth::Scope::kRead, Role::kViewer).status());
  return job;
}

void handle_get(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_jobs(ctx); !st.is_ok()) return respond_error(ex, st);
  const int64_t id = ex->params().get_int("id");
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_ASSIGN_OR_RETURN(Job job, visible_job(db, caller, id));
    ctx.jobs->decorate(job);
    return json_response(200, job_json(job));
  });
}

void handle_cancel(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_jobs(ctx); !st.is_ok()) return respond_error(ex, st);
  const int64_t id = ex->params().get_int("id");
  ctx.jobs->cancel(
      id, caller.principal.user.id,
      [caller](store::Db& db, const Job& job) -> Status {
        ATELIER_ASSIGN_OR_RETURN(auto role, project_role(db, caller, job.project_id));
        ATELIER_RETURN_IF_ERROR(require_scope(caller, auth::Scope::kSubmit));
        if (job.submitted_by == caller.principal.user.id || role == Role::kOwner) {
          return Status::ok();
        }
        return Status(StatusCode::kPermissionDenied,
                      "only the job's submitter or a project owner can cancel it");
      },
      [ex](Result<Job> job) {
        if (!job.is_ok()) return respond_error(ex, job.status());
        ex->respond(json_response(202, job_json(*job)));
      });
}

void handle_events_stream(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  if (Status st = require_jobs(ctx); !st.is_ok()) return respond_error(ex, st);
  if (!ctx.job_streams) return respond_error(ex, Status::unavailable("generation is not running"));
  const int64_t id = ex->params().get_int("id");
  // Checked before the stream opens, so errors are ordinary JSON answers.
  Status st = ctx.store->read([&](store::Db& db) { return visible_job(db, caller, id).status(); });
  if (!st.is_ok()) return respond_error(ex, st);
  Response r;
  r.headers.set("Content-Type", "text/event-stream; charset=utf-8");
  r.headers.set("Cache-Control", "no-cache");
  r.headers.set("X-Accel-Buffering", "no");  // reverse proxies: do not hold events back
  const ApiContext* c = &ctx;
  r.stream = [c, id, caller](std::shared_ptr<http::StreamWriter> writer) {
    auto stream = c->job_streams->open(id, writer, caller.principal);
    // Read after subscribing: a change between the two is then sent twice, never lost.
    std::optional<Job> now;
    Status read = c->store->read([&](store::Db& db) -> Status {
      // And after the stream is watched: a revocation since the request's own check is seen
      // either here or by the watch.
      ATELIER_ASSIGN_OR_RETURN(auto principal,
                               auth::account_db::find_principal(db, caller.secret_hash, c->now()));
      if (!principal) return Status(StatusCode::kUnauthenticated, "credential revoked");
      ATELIER_ASSIGN_OR_RETURN(now, visible_job(db, caller, id));
      return Status::ok();
    });
    if (!read.is_ok()) return writer->close();
    c->jobs->decorate(*now);
    stream->send(*now);
  };
  ex->respond(std::move(r));
}

void handle_project_events(const ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  const int64_t project_id = ex->params().get_int("id");
  auto after = query_int(ex->request(), "after", 0, 0, INT64_MAX);
  if (!after.is_ok()) return respond_error(ex, after.status());
  auto limit = query_int(ex->request(), "limit", kDefaultEvents, 1, kMaxEvents);
  if (!limit.is_ok()) return respond_error(ex, limit.status());
  respond_after_read(ex, *ctx.store, [&](store::Db& db) -> Result<Response> {
    ATELIER_RETURN_IF_ERROR(
        authorize_project(db, caller, project_id, auth::Scope::kRead, Role::kViewer).status());
    ATELIER_ASSIGN_OR_RETURN(auto events, pdb::list_events(db, project_id, *after, *limit));
    ATELIER_ASSIGN_OR_RETURN(auto head, pdb::head_seq(db, project_id));
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : events) out.push_back(event_json(e));
    return json_response(200, {{"events", out}, {"head_seq", head}});
  });
}

}  // namespace

Status register_job_routes(http::Router& router, const ApiContext& ctx) {
  // Every route here needs a caller: anonymous requests get 401.
  auto route = [&](Method m, std::string_view pattern, CallerHandler fn) {
    return add_signed_in_route(router, ctx, m, pattern, fn);
  };
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/models", handle_models));
  ATELIER_RETURN_IF_ERROR(route(Method::kPost, "/api/v1/projects/{id:int}/jobs", handle_submit));
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/projects/{id:int}/jobs", handle_list));
  ATELIER_RETURN_IF_ERROR(route(Method::kGet, "/api/v1/jobs/{id:int}", handle_get));
  ATELIER_RETURN_IF_ERROR(route(Method::kPost, "/api/v1/jobs/{id:int}/cancel", handle_cancel));
  ATELIER_RETURN_IF_ERROR(
      route(Method::kGet, "/api/v1/jobs/{id:int}/events", handle_events_stream));
  ATELIER_RETURN_IF_ERROR(
      route(Method::kGet, "/api/v1/projects/{id:int}/events", handle_project_events));
  return Status::ok();
}

}  // namespace atelier::api
