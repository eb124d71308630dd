// The API's JSON shapes for jobs and images (proto/openapi.yaml: Job, Image), built in one place
// so that REST answers, SSE events and the durable event log all carry the same object.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "server/jobs/job.h"

namespace atelier::jobs {

// RFC 3339 UTC with milliseconds ("2026-11-26T06:33:19.250Z") from Unix ms.
std::string format_time_ms(int64_t unix_ms);

// The Job object: id, project_id, state, params, progress {step, steps}, attempt, images, error,
// submitted_by, position (queued only), cancel_requested and timestamps.
nlohmann::json job_json(const Job& job);
// The Image object as embedded in a job and listed per project.
nlohmann::json image_json(const ImageRecord& image);

}  // namespace atelier::jobs
