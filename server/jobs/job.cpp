#include "server/jobs/job.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "server/inference/file_hash.h"

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

std::string_view source_name(ImageSource source) {
  return source == ImageSource::kUpload ? "upload" : "generated";
}

namespace {

// A1111's infotext quoting (modules/infotext_utils.py quote()): a value holding ',', ':' or a
// line break is written as a JSON string, so readers can split the line on ", ".
std::string quote(const std::string& value) {
  if (value.find_first_of(",:\n") == std::string::npos) return value;
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string a1111_parameters(const JobParams& params, int64_t seed, int width, int height) {
  // %g prints 7 as "7" and 7.5 as "7.5", as A1111 does.
  char guidance[32];
  std::snprintf(guidance, sizeof(guidance), "%g", params.guidance);
  std::string out = params.prompt;
  if (!params.negative_prompt.empty()) out += "\nNegative prompt: " + params.negative_prompt;
  out += "\nSteps: " + std::to_string(params.steps) + ", Sampler: " + quote(params.sampler) +
         ", CFG scale: " + guidance + ", Seed: " + std::to_string(seed) +
         ", Size: " + std::to_string(width) + "x" + std::to_string(height);
  if (!params.model_hash.empty()) {
    out += ", Model hash: " + inference::short_model_hash(params.model_hash);
  }
  out += ", Model: " + quote(params.model);
  std::string lora_hashes;
  for (const inference::LoraRef& lora : params.loras) {
    auto hash = params.lora_hashes.find(lora.name);
    if (hash == params.lora_hashes.end() || hash->second.empty()) continue;
    // As A1111: the name as mentioned, without the characters that would break the list.
    std::string alias;
    for (char c : lora.name) {
      if (c != ':' && c != ',') alias += c;
    }
    if (!lora_hashes.empty()) lora_hashes += ", ";
    lora_hashes += alias + ": " + inference::short_lora_hash(hash->second);
  }
  if (!lora_hashes.empty()) out += ", Lora hashes: " + quote(lora_hashes);
  return out;
}

}  // namespace atelier::jobs
