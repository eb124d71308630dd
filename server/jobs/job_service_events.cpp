#include "server/jobs/job_service_events.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "server/jobs/job_db.h"
#include "server/jobs/job_json.h"
#include "server/projects/project_db.h"

namespace atelier::jobs::detail {

Result<JobUpdate> record(store::Db& db, const Job& job, std::string type, int64_t actor,
                         int64_t now_ms) {
  nlohmann::json data = {{"job", job_json(job)}};
  auto seq = projects::project_db::append_event(db, job.project_id, type, actor, data.dump(),
                                                now_ms / 1000);
  if (!seq.is_ok()) return seq.status();
  return JobUpdate{JobUpdate::Kind::kChanged, job, std::move(type), *seq};
}

std::string event_type_for(JobState state) {
  return "job." + std::string(state_name(state));
}

Result<Job> reload(store::Db& db, int64_t job_id) {
  auto job = job_db::find_job(db, job_id);
  if (!job.is_ok()) return job.status();
  if (!*job) return Status::internal("job " + std::to_string(job_id) + " vanished");
  return std::move(**job);
}

Status release_all(store::Db& db, const std::vector<Job>& jobs, const std::string& reason,
                   int64_t now_ms, std::vector<JobUpdate>& updates) {
  for (const Job& job : jobs) {
    auto to = job_db::release(db, job, reason, now_ms);
    if (!to.is_ok()) return to.status();
    if (!*to) continue;
    auto fresh = reload(db, job.id);
    if (!fresh.is_ok()) return fresh.status();
    auto recorded = record(db, *fresh, event_type_for(**to), 0, now_ms);
    if (!recorded.is_ok()) return recorded.status();
    updates.push_back(std::move(*recorded));
  }
  return Status::ok();
}

}  // namespace atelier::jobs::detail
