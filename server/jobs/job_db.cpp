#include "server/jobs/job_db.h"

#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "server/store/sql_bind.h"

namespace atelier::jobs::job_db {

namespace {

using store::Db;
using store::prepare_bound;
using store::run;
using store::Statement;

// The columns every job query selects, in read_job()'s order.
constexpr std::string_view kJobColumns =
    "id, project_id, submitted_by, state, model, prompt, negative_prompt, width, height, steps, "
    "guidance, seed, count, sampler, mode, strength, parent_image_id, priority, attempt, "
    "max_attempts, worker, lease_until, progress_step, cancel_requested, error, created_at, "
    "queued_at, started_at, finished_at, updated_at, loras, model_hash, original_width, "
    "original_height, target_width, target_height, crop_top, crop_left, warnings, mask_image_id, "
    "mask_blur, inpaint_area, extend_left, extend_right, extend_top, extend_bottom";

std::optional<int64_t> opt_int(const Statement& s, int col) {
  if (s.column_is_null(col)) return std::nullopt;
  return s.column_int64(col);
}

// The time columns hold Unix ms: read here, written with to_unix_ms() where bound.
SysTime time_col(const Statement& s, int col) {
  return from_unix_ms(s.column_int64(col));
}
std::optional<SysTime> opt_time_col(const Statement& s, int col) {
  if (s.column_is_null(col)) return std::nullopt;
  return time_col(s, col);
}

// The `loras` column: [{"name", "weight", "hash"}] into the params' loras and lora_hashes.
Status read_loras(const std::string& text, JobParams& p) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Status::corruption("job loras are not a JSON array");
  for (const auto& item : j) {
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string() ||
        !item.contains("weight") || !item["weight"].is_number()) {
      return Status::corruption("a job LoRA is not {name, weight}");
    }
    inference::LoraRef ref{item["name"].get<std::string>(), item["weight"].get<double>()};
    if (item.contains("hash") && item["hash"].is_string() &&
        !item["hash"].get<std::string>().empty()) {
      p.lora_hashes[ref.name] = item["hash"].get<std::string>();
    }
    p.loras.push_back(std::move(ref));
  }
  return Status::ok();
}

std::string loras_text(const JobParams& p) {
  nlohmann::json j = nlohmann::json::array();
  for (const inference::LoraRef& l : p.loras) {
    auto hash = p.lora_hashes.find(l.name);
    j.push_back({{"name", l.name},
                 {"weight", l.weight},
                 {"hash", hash == p.lora_hashes.end() ? std::string() : hash->second}});
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status read_warnings(const std::string& text, std::vector<std::string>& out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Status::corruption("job warnings are not a JSON array");
  for (const auto& w : j) {
    if (w.is_string()) out.push_back(w.get<std::string>());
  }
  return Status::ok();
}

Result<Job> read_job(const Statement& s) {
  Job j;
  j.id = s.column_int64(0);
  j.project_id = s.column_int64(1);
  j.submitted_by = opt_int(s, 2);
  auto state = parse_state(s.column_text(3));
  if (!state) return Status::corruption("unknown job state '" + s.column_text(3) + "'");
  j.state = *state;
  JobParams& p = j.params;
  p.model = s.column_text(4);
  p.prompt = s.column_text(5);
  p.negative_prompt = s.column_text(6);
  p.width = static_cast<int>(s.column_int64(7));
  p.height = static_cast<int>(s.column_int64(8));
  p.steps = static_cast<int>(s.column_int64(9));
  p.guidance = s.column_double(10);
  p.seed = s.column_int64(11);
  p.count = static_cast<int>(s.column_int64(12));
  p.sampler = s.column_text(13);
  auto mode = inference::parse_mode(s.column_text(14));
  if (!mode) return Status::corruption("unknown job mode '" + s.column_text(14) + "'");
  p.mode = *mode;
  p.strength = s.column_double(15);
  p.parent_image_id = opt_int(s, 16);
  p.priority = static_cast<int>(s.column_int64(17));
  j.attempt = static_cast<int>(s.column_int64(18));
  j.max_attempts = static_cast<int>(s.column_int64(19));
  j.worker = s.column_text(20);
  j.lease_until = opt_time_col(s, 21);
  j.progress_step = static_cast<int>(s.column_int64(22));
  j.cancel_requested = s.column_int64(23) != 0;
  j.error = s.column_text(24);
  j.created_at = time_col(s, 25);
  j.queued_at = time_col(s, 26);
  j.started_at = opt_time_col(s, 27);
  j.finished_at = opt_time_col(s, 28);
  j.updated_at = time_col(s, 29);
  ATELIER_RETURN_IF_ERROR(read_loras(s.column_text(30), p));
  p.model_hash = s.column_text(31);
  // The six size-conditioning columns are written together: all set or all NULL.
  if (!s.column_is_null(32)) {
    inference::SizeConditioning sc;
    sc.original_width = static_cast<int>(s.column_int64(32));
    sc.original_height = static_cast<int>(s.column_int64(33));
    sc.target_width = static_cast<int>(s.column_int64(34));
    sc.target_height = static_cast<int>(s.column_int64(35));
    sc.crop_top = static_cast<int>(s.column_int64(36));
    sc.crop_left = static_cast<int>(s.column_int64(37));
    p.size_conditioning = sc;
  }
  ATELIER_RETURN_IF_ERROR(read_warnings(s.column_text(38), j.warnings));
  p.mask_image_id = opt_int(s, 39);
  // The edit columns are written together for inpaint and outpaint jobs (mask_blur not NULL).
  if (!s.column_is_null(40)) {
    inference::EditSpec e;
    e.mask_blur = static_cast<int>(s.column_int64(40));
    auto area = inference::parse_inpaint_area(s.column_text(41));
    if (!area) return Status::corruption("unknown inpaint_area '" + s.column_text(41) + "'");
    e.area = *area;
    e.extend = {static_cast<int>(s.column_int64(42)), static_cast<int>(s.column_int64(43)),
                static_cast<int>(s.column_int64(44)), static_cast<int>(s.column_int64(45))};
    p.edit = e;
  }
  return j;
}

constexpr std::string_view kImageColumns =
    "id, project_id, job_id, idx, created_by, sha256, bytes, width, height, seed, "
    "parent_image_id, lineage, created_at, source, original_name";

ImageRecord read_image(const Statement& s) {
  ImageRecord r;
  r.id = s.column_int64(0);
  r.project_id = s.column_int64(1);
  r.job_id = opt_int(s, 2);
  r.idx = static_cast<int>(s.column_int64(3));
  r.created_by = opt_int(s, 4);
  r.sha256 = s.column_text(5);
  r.bytes = s.column_int64(6);
  r.width = static_cast<int>(s.column_int64(7));
  r.height = static_cast<int>(s.column_int64(8));
  r.seed = s.column_int64(9);
  r.parent_image_id = opt_int(s, 10);
  r.lineage = s.column_text(11);
  r.created_at = time_col(s, 12);
  r.source = s.column_text(13) == "upload" ? ImageSource::kUpload : ImageSource::kGenerated;
  r.original_name = s.column_text(14);
  return r;
}

template <typename... Args>
Result<std::vector<Job>> query_jobs(Db& db, const std::string& sql, const Args&... args) {
  ATELIER_ASSIGN_OR_RETURN(Statement stmt, prepare_bound(db, sql, args...));
  std::vector<Job> out;
  while (true) {
    ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    ATELIER_ASSIGN_OR_RETURN(Job job, read_job(stmt));
    out.push_back(std::move(job));
  }
  return out;
}

template <typename... Args>
Result<std::vector<ImageRecord>> query_images(Db& db, const std::string& sql, const Args&... args) {
  ATELIER_ASSIGN_OR_RETURN(Statement stmt, prepare_bound(db, sql, args...));
  std::vector<ImageRecord> out;
  while (true) {
    ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back(read_image(stmt));
  }
  return out;
}

Status attach_images(Db& db, Job& job) {
  if (job.state != JobState::kDone) return Status::ok();
  ATELIER_ASSIGN_OR_RETURN(
      job.images,
      query_images(
          db, "SELECT " + std::string(kImageColumns) + " FROM images WHERE job_id = ? ORDER BY idx",
          job.id));
  return Status::ok();
}

std::string select_jobs(std::string_view where) {
  return "SELECT " + std::string(kJobColumns) + " FROM jobs " + std::string(where);
}

// Runs an UPDATE ... RETURNING <job columns> and reads the one row, if any.
template <typename... Args>
Result<std::optional<Job>> update_returning(Db& db, const std::string& sql, const Args&... args) {
  ATELIER_ASSIGN_OR_RETURN(std::vector<Job> jobs,
                           query_jobs(db, sql + " RETURNING " + std::string(kJobColumns), args...));
  if (jobs.empty()) return std::optional<Job>();
  return std::optional<Job>(std::move(jobs.front()));
}

// An UPDATE ... RETURNING that changes at most one row: whether it changed one.
template <typename... Args>
Result<bool> update_one(Db& db, const std::string& sql, const Args&... args) {
  ATELIER_ASSIGN_OR_RETURN(std::optional<Job> job, update_returning(db, sql, args...));
  return job.has_value();
}

}  // namespace

Result<int64_t> insert_job(Db& db, const NewJob& job, SysTime now) {
  const int64_t now_ms = to_unix_ms(now);
  const JobParams& p = job.params;
  const std::optional<inference::SizeConditioning>& sc = p.size_conditioning;
  auto sc_value = [&sc](int inference::SizeConditioning::*member) {
    return sc ? std::optional<int>((*sc).*member) : std::optional<int>();
  };
  const std::string loras = loras_text(p);
  const std::optional<inference::EditSpec>& e = p.edit;
  auto edit_value = [&e](auto get) {
    return e ? std::optional<int>(get(*e)) : std::optional<int>();
  };
  ATELIER_RETURN_IF_ERROR(run(
      db,
      "INSERT INTO jobs (project_id, submitted_by, state, model, prompt, negative_prompt, width, "
      "height, steps, guidance, seed, count, sampler, mode, strength, parent_image_id, priority, "
      "max_attempts, idempotency_key, request_hash, created_at, queued_at, updated_at, loras, "
      "model_hash, original_width, original_height, target_width, target_height, crop_top, "
      "crop_left, mask_image_id, mask_blur, inpaint_area, extend_left, extend_right, extend_top, "
      "extend_bottom) "
      "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      job.project_id, job.submitted_by, std::string_view(p.model), std::string_view(p.prompt),
      std::string_view(p.negative_prompt), p.width, p.height, p.steps, p.guidance, p.seed, p.count,
      std::string_view(p.sampler), inference::mode_name(p.mode), p.strength, p.parent_image_id,
      p.priority, job.max_attempts, job.idempotency_key, job.request_hash, now_ms, now_ms, now_ms,
      std::string_view(loras), std::string_view(p.model_hash),
      sc_value(&inference::SizeConditioning::original_width),
      sc_value(&inference::SizeConditioning::original_height),
      sc_value(&inference::SizeConditioning::target_width),
      sc_value(&inference::SizeConditioning::target_height),
      sc_value(&inference::SizeConditioning::crop_top),
      sc_value(&inference::SizeConditioning::crop_left), p.mask_image_id,
      edit_value([](const inference::EditSpec& x) { return x.mask_blur; }),
      e ? std::optional<std::string_view>(inference::inpaint_area_name(e->area))
        : std::optional<std::string_view>(),
      edit_value([](const inference::EditSpec& x) { return x.extend.left; }),
      edit_value([](const inference::EditSpec& x) { return x.extend.right; }),
      edit_value([](const inference::EditSpec& x) { return x.extend.top; }),
      edit_value([](const inference::EditSpec& x) { return x.extend.bottom; })));
  return db.last_insert_rowid();
}

Result<bool> set_warnings(Db& db, int64_t job_id, int attempt,
                          const std::vector<std::string>& warnings, SysTime now) {
  nlohmann::json j = warnings;
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return update_one(db,
                    "UPDATE jobs SET warnings = ?, updated_at = ? "
                    "WHERE id = ? AND attempt = ? AND state = 'running'",
                    std::string_view(text), to_unix_ms(now), job_id, attempt);
}

Result<Job> find_job(Db& db, int64_t job_id) {
  ATELIER_ASSIGN_OR_RETURN(std::vector<Job> jobs,
                           query_jobs(db, select_jobs("WHERE id = ?"), job_id));
  if (jobs.empty()) return Status::not_found("no such job");
  ATELIER_RETURN_IF_ERROR(attach_images(db, jobs.front()));
  return std::move(jobs.front());
}

Result<std::optional<IdempotentMatch>> find_idempotent(Db& db, int64_t user_id, int64_t project_id,
                                                       const std::string& key) {
  ATELIER_ASSIGN_OR_RETURN(Statement stmt,
                           prepare_bound(db,
                                         "SELECT id, request_hash FROM jobs WHERE submitted_by = ? "
                                         "AND project_id = ? AND idempotency_key = ?",
                                         user_id, project_id, std::string_view(key)));
  ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<IdempotentMatch>();
  return std::optional<IdempotentMatch>(IdempotentMatch{stmt.column_int64(0), stmt.column_text(1)});
}

Result<int64_t> count_queued_for_user(Db& db, int64_t user_id) {
  ATELIER_ASSIGN_OR_RETURN(
      Statement stmt,
      prepare_bound(db, "SELECT COUNT(*) FROM jobs WHERE submitted_by = ? AND state = 'queued'",
                    user_id));
  ATELIER_RETURN_IF_ERROR(stmt.step().status());
  return stmt.column_int64(0);
}

Result<std::vector<Job>> list_jobs(Db& db, int64_t project_id, std::optional<JobState> state,
                                   int64_t limit, std::optional<int64_t> before) {
  std::optional<std::string> state_text;
  if (state) state_text = std::string(state_name(*state));
  ATELIER_ASSIGN_OR_RETURN(
      std::vector<Job> jobs,
      query_jobs(db,
                 select_jobs("WHERE project_id = ? AND (? IS NULL OR state = ?) AND "
                             "(? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"),
                 project_id, state_text, state_text, before, before, limit));
  for (Job& j : jobs) ATELIER_RETURN_IF_ERROR(attach_images(db, j));
  return jobs;
}

Result<std::vector<Job>> jobs_in_state(Db& db, JobState state) {
  return query_jobs(db, select_jobs("WHERE state = ? ORDER BY id"), state_name(state));
}

Result<std::vector<Job>> expired_leases(Db& db, SysTime now) {
  return query_jobs(db, select_jobs("WHERE state = 'running' AND lease_until < ? ORDER BY id"),
                    to_unix_ms(now));
}

Result<std::optional<Job>> claim(Db& db, int64_t job_id, const std::string& worker,
                                 SysTime lease_until, SysTime now) {
  return update_returning(db,
                          "UPDATE jobs SET state = 'running', worker = ?, attempt = attempt + 1, "
                          "lease_until = ?, progress_step = 0, started_at = ?, updated_at = ? "
                          "WHERE id = ? AND state = 'queued'",
                          std::string_view(worker), to_unix_ms(lease_until), to_unix_ms(now),
                          to_unix_ms(now), job_id);
}

Result<LeaseCheck> extend_lease(Db& db, int64_t job_id, int attempt, SysTime lease_until,
                                int progress_step, SysTime now) {
  ATELIER_ASSIGN_OR_RETURN(
      std::optional<Job> job,
      update_returning(db,
                       "UPDATE jobs SET lease_until = ?, progress_step = ?, updated_at = ? "
                       "WHERE id = ? AND attempt = ? AND state = 'running'",
                       to_unix_ms(lease_until), progress_step, to_unix_ms(now), job_id, attempt));
  if (!job) return LeaseCheck{};
  return LeaseCheck{true, job->cancel_requested};
}

Result<bool> finish(Db& db, int64_t job_id, int attempt, JobState to, const std::string& error,
                    SysTime now) {
  return update_one(
      db,
      "UPDATE jobs SET state = ?1, error = ?2, lease_until = NULL, finished_at = ?3, "
      "updated_at = ?3, progress_step = CASE WHEN ?1 = 'done' THEN steps ELSE progress_step END "
      "WHERE id = ?4 AND attempt = ?5 AND state = 'running'",
      state_name(to), error.empty() ? std::optional<std::string>() : error, to_unix_ms(now), job_id,
      attempt);
}

Result<std::optional<JobState>> release(Db& db, const Job& job, const std::string& reason,
                                        SysTime now) {
  JobState to = JobState::kQueued;
  std::string error;
  if (job.cancel_requested) {
    to = JobState::kCancelled;
  } else if (job.attempt >= job.max_attempts) {
    to = JobState::kFailed;
    error = reason + " (gave up after " + std::to_string(job.attempt) + " attempts)";
  }
  // Both are fenced by the attempt, like every change to a running job.
  ATELIER_ASSIGN_OR_RETURN(bool changed, to == JobState::kQueued
                                             ? requeue(db, job.id, job.attempt, now)
                                             : finish(db, job.id, job.attempt, to, error, now));
  if (!changed) return std::optional<JobState>();
  return std::optional<JobState>(to);
}

Result<bool> requeue(Db& db, int64_t job_id, int attempt, SysTime now) {
  return update_one(db,
                    "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, "
                    "progress_step = 0, queued_at = ?, updated_at = ? "
                    "WHERE id = ? AND attempt = ? AND state = 'running'",
                    to_unix_ms(now), to_unix_ms(now), job_id, attempt);
}

Result<bool> cancel_queued(Db& db, int64_t job_id, SysTime now) {
  return update_one(db,
                    "UPDATE jobs SET state = 'cancelled', finished_at = ?, "
                    "updated_at = ? WHERE id = ? AND state = 'queued'",
                    to_unix_ms(now), to_unix_ms(now), job_id);
}

Result<bool> request_cancel(Db& db, int64_t job_id, SysTime now) {
  return update_one(db,
                    "UPDATE jobs SET cancel_requested = 1, updated_at = ? "
                    "WHERE id = ? AND state = 'running'",
                    to_unix_ms(now), job_id);
}

Result<int64_t> insert_image(Db& db, const Job& job, const NewImage& image, SysTime now) {
  ATELIER_RETURN_IF_ERROR(
      run(db,
          "INSERT INTO images (project_id, job_id, idx, created_by, sha256, bytes, width, "
          "height, seed, parent_image_id, lineage, created_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          job.project_id, job.id, image.idx, job.submitted_by, std::string_view(image.sha256),
          image.bytes, image.width, image.height, image.seed, job.params.parent_image_id,
          std::string_view(image.lineage), to_unix_ms(now)));
  return db.last_insert_rowid();
}

Result<ImageRecord> insert_upload(Db& db, const NewUpload& upload, SysTime now) {
  ATELIER_RETURN_IF_ERROR(
      run(db,
          "INSERT INTO images (project_id, job_id, idx, created_by, sha256, bytes, width, "
          "height, seed, parent_image_id, lineage, created_at, source, original_name) "
          "VALUES (?, NULL, 0, ?, ?, ?, ?, ?, 0, NULL, '', ?, 'upload', ?)",
          upload.project_id, upload.uploaded_by, std::string_view(upload.sha256), upload.bytes,
          upload.width, upload.height, to_unix_ms(now),
          upload.original_name.empty() ? std::optional<std::string_view>()
                                       : std::optional<std::string_view>(upload.original_name)));
  return find_image(db, db.last_insert_rowid());
}

Result<int64_t> count_uploads_since(Db& db, int64_t user_id, SysTime since) {
  ATELIER_ASSIGN_OR_RETURN(
      Statement stmt,
      prepare_bound(db,
                    "SELECT COUNT(*) FROM images WHERE created_by = ? AND source = 'upload' "
                    "AND created_at >= ?",
                    user_id, to_unix_ms(since)));
  ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? stmt.column_int64(0) : 0;
}

Result<ImageRecord> find_image(Db& db, int64_t image_id) {
  ATELIER_ASSIGN_OR_RETURN(
      std::vector<ImageRecord> images,
      query_images(db, "SELECT " + std::string(kImageColumns) + " FROM images WHERE id = ?",
                   image_id));
  if (images.empty()) return Status::not_found("no such image");
  return std::move(images.front());
}

Result<std::vector<ImageRecord>> list_images(Db& db, int64_t project_id, int64_t limit,
                                             std::optional<int64_t> before) {
  return query_images(db,
                      "SELECT " + std::string(kImageColumns) +
                          " FROM images WHERE project_id = ? AND (? IS NULL OR id < ?) "
                          "ORDER BY id DESC LIMIT ?",
                      project_id, before, before, limit);
}

Result<std::vector<ImageRecord>> children_of(Db& db, int64_t image_id, int64_t limit) {
  return query_images(db,
                      "SELECT " + std::string(kImageColumns) +
                          " FROM images WHERE parent_image_id = ? ORDER BY id LIMIT ?",
                      image_id, limit);
}

Result<std::unordered_set<std::string>> referenced_shas(Db& db) {
  ATELIER_ASSIGN_OR_RETURN(Statement stmt, db.prepare("SELECT DISTINCT sha256 FROM images"));
  std::unordered_set<std::string> out;
  while (true) {
    ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.insert(stmt.column_text(0));
  }
  return out;
}

Result<std::unordered_set<std::string>> referenced_among(Db& db,
                                                         std::span<const std::string> sha256s) {
  std::unordered_set<std::string> out;
  for (const std::string& sha : sha256s) {
    ATELIER_ASSIGN_OR_RETURN(
        Statement stmt,
        prepare_bound(db, "SELECT 1 FROM images WHERE sha256 = ? LIMIT 1", std::string_view(sha)));
    ATELIER_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (row) out.insert(sha);
  }
  return out;
}

}  // namespace atelier::jobs::job_db
