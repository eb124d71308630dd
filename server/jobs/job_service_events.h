// Internal to server/jobs: how JobService turns a state change into its durable event. Shared
// by job_service.cpp (requests, leases) and job_runs.cpp (the worker side).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/jobs/job.h"
#include "server/jobs/job_service.h"
#include "server/store/sqlite.h"

namespace atelier::jobs::detail {

// Appends the event that records `job`'s new state, carrying the job as GET /jobs/{id} shows it,
// in the caller's transaction; returns what listeners hear after the commit.
Result<JobUpdate> record(store::Db& db, const Job& job, std::string type, int64_t actor,
                         int64_t now_ms);
// "job.queued", "job.done", ... for a state.
std::string event_type_for(JobState state);
// job_db::release() for each of `jobs` (running jobs whose worker is gone), recording an event
// for each one that changed and appending what listeners should hear to `updates`.
Status release_all(store::Db& db, const std::vector<Job>& jobs, const std::string& reason,
                   int64_t now_ms, std::vector<JobUpdate>& updates);
// Re-reads the job inside the transaction (an event must show the committed row).
Result<Job> reload(store::Db& db, int64_t job_id);

}  // namespace atelier::jobs::detail
