// The body of POST /projects/{id}/jobs: parsed into C++ values, checked against the model's
// declared ranges, and resolved (defaults, lineage sizes) into the JobParams that get stored.
//
// Two phases, because part of the check needs the database:
//   parse_job_request()  on the I/O thread: JSON shape, types, the model's ranges (400 naming
//                        the field), a random seed when none is given;
//   resolve_job_params() inside the submit transaction: the parent image (same project; same
//                        model for a generated parent of variation/remix/upscale), sizes taken
//                        from it (fitted into the model's ranges when it does not fit), upscale
//                        factors, and the inpaint/outpaint fields (edit_request.h).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/api/edit_request.h"
#include "server/http/message.h"
#include "server/inference/model_registry.h"
#include "server/jobs/job.h"
#include "server/store/sqlite.h"

namespace atelier::api {

// Outer limits of the LoRA and size-conditioning fields (proto/openapi.yaml, docs/security.md).
inline constexpr size_t kMaxLorasPerJob = 5;  // and at most the model's max_loras
inline constexpr double kMaxLoraWeight = 4;   // weights lie in [-4, 4]
inline constexpr size_t kMaxLoraNameChars = 255;
inline constexpr int64_t kMinConditioningSize = 8;  // original_size / target_size, per side
inline constexpr int64_t kMaxConditioningSize = 8192;
inline constexpr int64_t kMaxConditioningCrop = 8192;  // crop_top_left, per coordinate

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
  // `loras` as sent (weight left out: 1), and the size conditioning as sent.
  std::optional<std::vector<inference::LoraRef>> loras;
  std::optional<std::array<int64_t, 2>> original_size;  // [width, height]
  std::optional<std::array<int64_t, 2>> target_size;    // [width, height]
  std::optional<std::array<int64_t, 2>> crop_top_left;  // [top, left]
  // Inpaint / outpaint: mask_image_id, mask_blur, inpaint_area, extend (edit_request.h).
  EditFields edit;
  // Resolved against the registry by parse_job_request: `loras` merged with the prompt's
  // `<lora:name:weight>` tags (the field wins for a name in both; the first tag wins among
  // tags), and each one's sha256.
  std::vector<inference::LoraRef> resolved_loras;
  std::map<std::string, std::string> lora_hashes;
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
