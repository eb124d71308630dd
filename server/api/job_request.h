// The body of POST /projects/{id}/jobs: parsed into C++ values, checked against the model's
// declared ranges, and resolved (defaults, lineage sizes) into the JobParams that get stored.
//
// Two phases, because part of the check needs the database:
//   parse_job_request()  on the I/O thread: JSON shape, types, the model's ranges (400 naming
//                        the field), a random seed when none is given;
//   resolve_job_params() inside the submit transaction: the parent image (same project, same
//                        model), sizes taken from it, upscale factors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "server/http/message.h"
#include "server/inference/model_registry.h"
#include "server/jobs/job.h"
#include "server/store/sqlite.h"

namespace atelier::api {

struct JobRequest {
  std::string model;
  std::string prompt;
  std::optional<std::string> negative_prompt;
  std::optional<int64_t> width;
  std::optional<int64_t> height;
  std::optional<int64_t> steps;
  std::optional<double> guidance;
  std::optional<int64_t> seed;  // absent or -1: random
  std::optional<int64_t> count;
  std::optional<std::string> sampler;
  inference::Mode mode = inference::Mode::kTxt2Img;
  std::optional<int64_t> parent_image_id;
  std::optional<double> strength;
  std::optional<int64_t> priority;
  // SHA-256 of the request as sent (canonical form, before defaults): what an Idempotency-Key
  // retry must repeat.
  std::string canonical_hash;
};

Result<JobRequest> parse_job_request(const http::Request& request,
                                     const inference::ModelRegistry& models);

// Every value resolved. `project_id` is the project the job goes to (its parent must be there).
// `random_seed` is used when the request has none.
Result<jobs::JobParams> resolve_job_params(store::Db& db, const JobRequest& request,
                                           const inference::ModelInfo& model, int64_t project_id,
                                           int64_t random_seed);

}  // namespace atelier::api
