// The job and image records: what a member asked for, what happened to it, and what it made.
// Plain C++ types; job_db.h stores them, job_json.h gives them their API shape. Times are SysTime
// (wall clock, ms: what the columns hold); the integers exist only where they are stored or sent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "server/inference/generator.h"

namespace atelier::jobs {

enum class JobState { kQueued, kRunning, kDone, kFailed, kCancelled };
std::string_view state_name(JobState state);  // "queued" | "running" | ...
std::optional<JobState> parse_state(std::string_view name);
inline bool is_terminal(JobState s) {
  return s == JobState::kDone || s == JobState::kFailed || s == JobState::kCancelled;
}

// A submission with every value resolved against the model's defaults and validated.
struct JobParams {
  std::string model;
  std::string prompt;
  std::string negative_prompt;
  int width = 0;
  int height = 0;
  int steps = 0;
  double guidance = 0;
  int64_t seed = 0;
  int count = 1;
  std::string sampler;
  inference::Mode mode = inference::Mode::kTxt2Img;
  double strength = 0;
  std::optional<int64_t> parent_image_id;
  // Inpaint and outpaint (set exactly for those modes): the mask image (inpaint only; an image of
  // the parent's size, white = regenerate) and the blur, area and extension asked for. An
  // outpaint's width x height is the parent's plus the extension.
  std::optional<int64_t> mask_image_id;
  std::optional<inference::EditSpec> edit;
  int priority = 0;
  // The LoRAs applied: the request's `loras` merged with the `<lora:name:weight>` tags of the
  // prompt (the field wins for a name in both), at most the model's max_loras. The prompt keeps
  // its tags, as A1111 does; the worker hands the generator the prompt without them.
  std::vector<inference::LoraRef> loras;
  // Provenance, from the registry at submission: the model's sha256 and each LoRA's, by name
  // (empty when the registry had none). For the PNG `parameters` and the job's JSON.
  std::string model_hash;
  std::map<std::string, std::string> lora_hashes;
  // SDXL's size conditioning, resolved (defaults: both sizes the output size, crop [0, 0]);
  // set exactly when the model takes it.
  std::optional<inference::SizeConditioning> size_conditioning;
};

// Where an image came from: a job, or a member's upload (a lineage root, without a job).
enum class ImageSource { kGenerated, kUpload };
std::string_view source_name(ImageSource source);  // "generated" | "upload"

struct ImageRecord {
  int64_t id = 0;
  int64_t project_id = 0;
  std::optional<int64_t> job_id;  // nullopt exactly for uploads
  int idx = 0;
  std::optional<int64_t> created_by;  // the job's submitter, or the uploader
  ImageSource source = ImageSource::kGenerated;
  std::string original_name;  // uploads: the sanitised file name given ("" when none)
  std::string sha256;         // 64 lowercase hex: the file's name in the image store
  int64_t bytes = 0;
  int width = 0;
  int height = 0;
  int64_t seed = 0;
  std::optional<int64_t> parent_image_id;
  std::string lineage;
  SysTime created_at;
};

struct Job {
  int64_t id = 0;
  int64_t project_id = 0;
  std::optional<int64_t> submitted_by;
  JobState state = JobState::kQueued;
  JobParams params;
  int attempt = 0;
  int max_attempts = 1;
  std::string worker;
  std::optional<SysTime> lease_until;
  int progress_step = 0;
  bool cancel_requested = false;
  std::string error;
  SysTime created_at;
  SysTime queued_at;
  std::optional<SysTime> started_at;
  std::optional<SysTime> finished_at;
  SysTime updated_at;
  std::vector<ImageRecord> images;  // done jobs only, in idx order
  // What the generator found worth telling (GeneratedImage::warnings of every image, each text
  // once, in order); kept with the job when it is done.
  std::vector<std::string> warnings;
  // Not stored: the 1-based start position of a queued job, filled in from the scheduler.
  std::optional<int64_t> position;
};

// A finished image on its way into the database: the file is already in the image store.
struct NewImage {
  int idx = 0;
  std::string sha256;
  int64_t bytes = 0;
  int width = 0;
  int height = 0;
  int64_t seed = 0;
  std::string lineage;
};

// The A1111 "parameters" text every PNG carries, so existing tools read our images:
//   prompt\nNegative prompt: ...\nSteps: N, Sampler: S, CFG scale: G, Seed: N, Size: WxH,
//   Model hash: H, Model: M, Lora hashes: "a: H1, b: H2"
// The negative prompt line only when there is one; `Model hash` (the first 10 hex digits of the
// model's sha256) only when the job has one; `Lora hashes` (each LoRA's name without ':' and ','
// and the first 12 hex digits of its sha256) only for LoRAs with a hash. The prompt keeps its
// `<lora:...>` tags. Values holding ',', ':' or a line break are JSON-quoted, as A1111 does.
std::string a1111_parameters(const JobParams& params, int64_t seed, int width, int height);

}  // namespace atelier::jobs
