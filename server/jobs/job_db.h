// Jobs and images in the database. Plain functions over a store::Db; callers choose the
// transaction (writes inside Store::write/submit_write, reads inside Store::read). Every state
// change of a running job is fenced: it matches `id AND attempt AND state = 'running'`, so a
// worker whose lease was taken over (a newer attempt exists) changes nothing. Times are SysTime;
// the columns hold them as Unix ms, converted here only.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/jobs/job.h"
#include "server/store/sqlite.h"

namespace atelier::jobs::job_db {

struct NewJob {
  int64_t project_id = 0;
  int64_t submitted_by = 0;
  JobParams params;
  int max_attempts = 3;
  std::optional<std::string> idempotency_key;
  std::optional<std::string> request_hash;
};
Result<int64_t> insert_job(store::Db& db, const NewJob& job, SysTime now);
// Records the generator's warnings of a running job's attempt (fenced like finish()); false when
// the attempt no longer holds the job.
Result<bool> set_warnings(store::Db& db, int64_t job_id, int attempt,
                          const std::vector<std::string>& warnings, SysTime now);

// The job with its images; kNotFound ("no such job") when there is none.
Result<Job> find_job(store::Db& db, int64_t job_id);

struct IdempotentMatch {
  int64_t job_id = 0;
  std::string request_hash;
};
// The job an Idempotency-Key was first used for; nullopt (not an error) when the user has not
// used `key` in the project yet, which is every first submission.
Result<std::optional<IdempotentMatch>> find_idempotent(store::Db& db, int64_t user_id,
                                                       int64_t project_id, const std::string& key);

Result<int64_t> count_queued_for_user(store::Db& db, int64_t user_id);

// A project's jobs, newest first, with their images: at most `limit`, only ids below `before`
// when given, only in `state` when given.
Result<std::vector<Job>> list_jobs(store::Db& db, int64_t project_id, std::optional<JobState> state,
                                   int64_t limit, std::optional<int64_t> before);

// Every job in `state` (without images), by id. Start-up recovery and the scheduler rebuild.
Result<std::vector<Job>> jobs_in_state(store::Db& db, JobState state);
// Running jobs whose lease ended before `now`.
Result<std::vector<Job>> expired_leases(store::Db& db, SysTime now);

// queued -> running in one UPDATE ... RETURNING: attempt + 1, the worker, the lease. nullopt when
// the job is no longer queued (cancelled, deleted) — then nothing changed.
Result<std::optional<Job>> claim(store::Db& db, int64_t job_id, const std::string& worker,
                                 SysTime lease_until, SysTime now);

struct LeaseCheck {
  bool held = false;              // false: the attempt is stale (re-queued, cancelled, deleted)
  bool cancel_requested = false;  // the job should stop at the next step boundary
};
// Extends a running attempt's lease and records its progress.
Result<LeaseCheck> extend_lease(store::Db& db, int64_t job_id, int attempt, SysTime lease_until,
                                int progress_step, SysTime now);

// running -> `to` (done, failed or cancelled) for the current attempt only. False (nothing
// changed) when the attempt is stale.
Result<bool> finish(store::Db& db, int64_t job_id, int attempt, JobState to,
                    const std::string& error, SysTime now);

// Puts a running job whose worker is gone (expired lease, dead process) back: cancelled when a
// cancel was requested, failed with `reason` when max_attempts are used up, else queued again.
// Returns the new state; nullopt when the job was not running any more.
Result<std::optional<JobState>> release(store::Db& db, const Job& job, const std::string& reason,
                                        SysTime now);

// running -> queued for the current attempt without using up an attempt (a graceful shutdown
// interrupted it). False when the attempt is stale.
Result<bool> requeue(store::Db& db, int64_t job_id, int attempt, SysTime now);

// queued -> cancelled. False when it was not queued.
Result<bool> cancel_queued(store::Db& db, int64_t job_id, SysTime now);
// Flags a running job for cancellation at its next step. False when it was not running.
Result<bool> request_cancel(store::Db& db, int64_t job_id, SysTime now);

Result<int64_t> insert_image(store::Db& db, const Job& job, const NewImage& image, SysTime now);
// An uploaded image (its file already in the image store): a lineage root without a job.
struct NewUpload {
  int64_t project_id = 0;
  int64_t uploaded_by = 0;
  std::string sha256;
  int64_t bytes = 0;
  int width = 0;
  int height = 0;
  std::string original_name;  // sanitised; "" when none was given
};
// Inserts the row (source 'upload') and returns it as stored.
Result<ImageRecord> insert_upload(store::Db& db, const NewUpload& upload, SysTime now);
// How many images `user_id` uploaded (in any project) at or after `since`.
Result<int64_t> count_uploads_since(store::Db& db, int64_t user_id, SysTime since);
// The image; kNotFound ("no such image") when there is none.
Result<ImageRecord> find_image(store::Db& db, int64_t image_id);
// A project's images, newest first.
Result<std::vector<ImageRecord>> list_images(store::Db& db, int64_t project_id, int64_t limit,
                                             std::optional<int64_t> before);
Result<std::vector<ImageRecord>> children_of(store::Db& db, int64_t image_id, int64_t limit);
// Every sha256 an image row refers to (the orphan sweep keeps exactly these files).
Result<std::unordered_set<std::string>> referenced_shas(store::Db& db);
// Those of `sha256s` some image row refers to: one indexed lookup each (the running sweep and
// the removal of files whose commit did not happen).
Result<std::unordered_set<std::string>> referenced_among(store::Db& db,
                                                         std::span<const std::string> sha256s);

}  // namespace atelier::jobs::job_db
