#include "server/jobs/job.h"

#include <cstdio>

namespace atelier::jobs {

std::string_view state_name(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "queued";
}

std::optional<JobState> parse_state(std::string_view name) {
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed,
                     JobState::kCancelled}) {
    if (state_name(s) == name) return s;
  }
  return std::nullopt;
}

std::string a1111_parameters(const JobParams& params, int64_t seed, int width, int height) {
  // %g prints 7 as "7" and 7.5 as "7.5", as A1111 does.
  char guidance[32];
  std::snprintf(guidance, sizeof(guidance), "%g", params.guidance);
  std::string out = params.prompt;
  if (!params.negative_prompt.empty()) out += "\nNegative prompt: " + params.negative_prompt;
  out += "\nSteps: " + std::to_string(params.steps) + ", Sampler: " + params.sampler +
         ", CFG scale: " + guidance + ", Seed: " + std::to_string(seed) +
         ", Size: " + std::to_string(width) + "x" + std::to_string(height) +
         ", Model: " + params.model;
  return out;
}

}  // namespace atelier::jobs
