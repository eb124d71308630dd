#include "server/jobs/run_transitions.h"

#include <utility>

#include "server/jobs/job_db.h"

namespace atelier::jobs::transitions {

Result<Job> load(store::Db& db, int64_t job_id) {
  return job_db::find_job(db, job_id);
}

Status record(Txn& t, const Job& job, int64_t actor) {
  return t.events.append(t.db, job.project_id, actor, events::JobChanged{job}, t.now).status();
}

namespace {

bool is_not_found(const Status& st) {
  return st.code() == StatusCode::kNotFound;
}

// The parent image as the generator needs it (img2img, variations), when the job has one.
Result<std::optional<inference::ParentImage>> parent_of(store::Db& db, const Job& job,
                                                        const ImageStore& images) {
  if (!job.params.parent_image_id) return std::optional<inference::ParentImage>();
  // A parent gone since the submission (or its job) only means less to go on, not a failure.
  Result<ImageRecord> parent = job_db::find_image(db, *job.params.parent_image_id);
  if (is_not_found(parent.status())) return std::optional<inference::ParentImage>();
  if (!parent.is_ok()) return parent.status();
  Result<Job> parent_job = parent->job_id ? job_db::find_job(db, *parent->job_id)
                                          : Result<Job>(Status::not_found("an upload"));
  if (!parent_job.is_ok() && !is_not_found(parent_job.status())) return parent_job.status();
  inference::ParentImage p;
  p.uploaded = parent->source == ImageSource::kUpload;
  p.width = parent->width;
  p.height = parent->height;
  p.seed = parent->seed;
  p.lineage = parent->lineage;
  p.png_path = images.path_for(parent->sha256).string();
  if (parent_job.is_ok()) {
    p.prompt = parent_job->params.prompt;
    p.negative_prompt = parent_job->params.negative_prompt;
  }
  return std::optional<inference::ParentImage>(std::move(p));
}

// The row of `run`'s job when the run still holds it (running, same attempt).
Result<Job> held_by(store::Db& db, const Run& run, std::string_view what) {
  Result<Job> job = job_db::find_job(db, run.job.id);
  if (!job.is_ok() && !is_not_found(job.status())) return job.status();
  if (!job.is_ok() || job->state != JobState::kRunning || job->attempt != run.job.attempt) {
    // Fencing: another attempt owns the job now, or it was cancelled or deleted.
    return Status::failed_precondition("stale attempt: " + std::string(what));
  }
  return std::move(job).value();
}

// Re-reads the row and records it: an event always shows the committed row.
Result<Job> record_fresh(Txn& t, int64_t job_id, int64_t actor) {
  ATELIER_ASSIGN_OR_RETURN(Job fresh, load(t.db, job_id));
  ATELIER_RETURN_IF_ERROR(record(t, fresh, actor));
  return fresh;
}

}  // namespace

Result<std::optional<Run>> claim(Txn& t, const QueuedJob& picked, const std::string& worker,
                                 SysTime lease_until, const ImageStore& images) {
  ATELIER_ASSIGN_OR_RETURN(std::optional<Job> job,
                           job_db::claim(t.db, picked.id, worker, lease_until, t.now));
  if (!job) return std::optional<Run>();
  ATELIER_ASSIGN_OR_RETURN(auto parent, parent_of(t.db, *job, images));
  // An inpaint's mask file (a mask deleted since leaves the path empty: the worker fails it).
  std::string mask_path;
  if (job->params.mask_image_id) {
    Result<ImageRecord> mask = job_db::find_image(t.db, *job->params.mask_image_id);
    if (!mask.is_ok() && !is_not_found(mask.status())) return mask.status();
    if (mask.is_ok()) mask_path = images.path_for(mask->sha256).string();
  }
  ATELIER_RETURN_IF_ERROR(record(t, *job, 0));
  return std::optional<Run>(Run{std::move(*job), std::move(parent),
                                std::make_shared<inference::CancelToken>(), worker,
                                std::move(mask_path)});
}

Result<Job> finish(Txn& t, const Run& run, JobState to, const std::string& error,
                   const std::vector<NewImage>& images, const std::vector<std::string>& warnings) {
  ATELIER_ASSIGN_OR_RETURN(Job job, held_by(t.db, run, "its result was discarded"));
  JobState target = to;
  if (to == JobState::kDone && job.cancel_requested) target = JobState::kCancelled;
  if (target == JobState::kDone) {
    for (const NewImage& image : images) {
      ATELIER_RETURN_IF_ERROR(job_db::insert_image(t.db, job, image, t.now).status());
    }
    if (!warnings.empty()) {
      ATELIER_RETURN_IF_ERROR(
          job_db::set_warnings(t.db, run.job.id, run.job.attempt, warnings, t.now).status());
    }
  }
  ATELIER_ASSIGN_OR_RETURN(bool changed,
                           job_db::finish(t.db, run.job.id, run.job.attempt, target, error, t.now));
  if (!changed) return Status::internal("a running job did not change state");
  return record_fresh(t, run.job.id, 0);
}

Result<Job> interrupt(Txn& t, const Run& run, bool shutting_down) {
  ATELIER_ASSIGN_OR_RETURN(Job job, held_by(t.db, run, "nothing to record"));
  if (!job.cancel_requested && shutting_down) {
    // A shutdown is not the job's fault: back in the queue for the next start.
    ATELIER_RETURN_IF_ERROR(job_db::requeue(t.db, run.job.id, run.job.attempt, t.now).status());
  } else {
    ATELIER_RETURN_IF_ERROR(
        job_db::finish(t.db, run.job.id, run.job.attempt, JobState::kCancelled, "", t.now)
            .status());
  }
  return record_fresh(t, run.job.id, 0);
}

Result<std::vector<Job>> release(Txn& t, const std::vector<Job>& running,
                                 const std::string& reason) {
  std::vector<Job> changed;
  for (const Job& job : running) {
    ATELIER_ASSIGN_OR_RETURN(std::optional<JobState> to, job_db::release(t.db, job, reason, t.now));
    if (!to) continue;
    ATELIER_ASSIGN_OR_RETURN(Job fresh, record_fresh(t, job.id, 0));
    changed.push_back(std::move(fresh));
  }
  return changed;
}

Result<Job> cancel(Txn& t, int64_t job_id, int64_t actor,
                   const std::function<Status(store::Db&, const Job&)>& authorize) {
  ATELIER_ASSIGN_OR_RETURN(Job job, load(t.db, job_id));
  ATELIER_RETURN_IF_ERROR(authorize(t.db, job));
  if (is_terminal(job.state)) {
    return Status::failed_precondition("the job has already finished (" +
                                       std::string(state_name(job.state)) + ")");
  }
  if (job.state == JobState::kQueued) {
    ATELIER_RETURN_IF_ERROR(job_db::cancel_queued(t.db, job_id, t.now).status());
    return record_fresh(t, job_id, actor);
  }
  // Running: no event until the worker stops (then job.cancelled).
  ATELIER_RETURN_IF_ERROR(job_db::request_cancel(t.db, job_id, t.now).status());
  return load(t.db, job_id);
}

}  // namespace atelier::jobs::transitions
