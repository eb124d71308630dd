// The API's JSON shapes for jobs and images (proto/openapi.yaml: Job, Image), built in one place
// so that REST answers, SSE events and the durable event log all carry the same object.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "server/jobs/job.h"

namespace atelier::api {

using jobs::ImageRecord;
using jobs::Job;
using jobs::JobParams;

// RFC 3339 UTC with milliseconds ("2026-11-26T06:33:19.250Z"): how the API writes job and image
// times.
std::string format_time_ms(SysTime t);

// The Job object: id, project_id, state, params, progress {step, steps}, attempt, images, error,
// submitted_by, position (queued only), cancel_requested, timestamps, warnings and the
// generation fields below.
nlohmann::json job_json(const Job& job);
// The job fields issue 17 added, shared by Job and ImageDetail: `loras` ([{name, weight,
// hash}], hash null when unknown), `model_hash` (null when none), and `original_size`,
// `target_size` ([width, height]) and `crop_top_left` ([top, left]), null for models without
// size conditioning.
void add_generation_fields(nlohmann::json& out, const JobParams& params);
// The Image object as embedded in a job and listed per project.
nlohmann::json image_json(const ImageRecord& image);

}  // namespace atelier::api
