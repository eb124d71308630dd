#include "server/api/job_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "server/api/json_body.h"
#include "server/auth/token.h"
#include "server/jobs/job_db.h"

namespace atelier::api {

namespace {

using inference::Mode;
using inference::ModelInfo;

constexpr TextRule kPromptRule{.min_chars = 1, .max_chars = 2000, .multiline = true};
constexpr TextRule kNegativeRule{.max_chars = 2000, .multiline = true};
constexpr int64_t kMaxSeed = (int64_t{1} << 53) - 1;  // exact in a JavaScript number

Status out_of_range(std::string_view field, int64_t lo, int64_t hi, const std::string& extra = {}) {
  return Status::invalid_argument("field '" + std::string(field) + "' must be between " +
                                      std::to_string(lo) + " and " + std::to_string(hi) + extra,
                                  std::string(field));
}

Status check_int(std::string_view field, int64_t value, const inference::IntParam& range) {
  if (value < range.min || value > range.max) {
    return out_of_range(field, range.min, range.max, " for this model");
  }
  if (range.multiple_of > 1 && value % range.multiple_of != 0) {
    return Status::invalid_argument("field '" + std::string(field) + "' must be a multiple of " +
                                        std::to_string(range.multiple_of),
                                    std::string(field));
  }
  return Status::ok();
}

Status check_real(std::string_view field, double value, const inference::RealParam& range) {
  if (value < range.min || value > range.max) {
    char msg[160];
    std::snprintf(msg, sizeof(msg), "field '%s' must be between %g and %g for this model",
                  std::string(field).c_str(), range.min, range.max);
    return Status::invalid_argument(msg, std::string(field));
  }
  return Status::ok();
}

template <typename T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string canonical_hash(const JobRequest& r) {
  nlohmann::json j = {{"model", r.model},
                      {"prompt", r.prompt},
                      {"negative_prompt", opt(r.negative_prompt)},
                      {"width", opt(r.width)},
                      {"height", opt(r.height)},
                      {"steps", opt(r.steps)},
                      {"guidance", opt(r.guidance)},
                      {"seed", opt(r.seed)},
                      {"count", opt(r.count)},
                      {"sampler", opt(r.sampler)},
                      {"mode", inference::mode_name(r.mode)},
                      {"parent_image_id", opt(r.parent_image_id)},
                      {"strength", opt(r.strength)},
                      {"priority", opt(r.priority)}};
  return auth::sha256_hex(j.dump());
}

// Checks every value that does not depend on the parent image against the model.
Status check_against_model(const JobRequest& r, const ModelInfo& m) {
  if (r.width) ATELIER_RETURN_IF_ERROR(check_int("width", *r.width, m.width));
  if (r.height) ATELIER_RETURN_IF_ERROR(check_int("height", *r.height, m.height));
  if (r.steps) ATELIER_RETURN_IF_ERROR(check_int("steps", *r.steps, m.steps));
  if (r.count) ATELIER_RETURN_IF_ERROR(check_int("count", *r.count, m.count));
  if (r.guidance) ATELIER_RETURN_IF_ERROR(check_real("guidance", *r.guidance, m.guidance));
  if (r.strength) ATELIER_RETURN_IF_ERROR(check_real("strength", *r.strength, m.strength));
  if (r.sampler &&
      std::find(m.samplers.begin(), m.samplers.end(), *r.sampler) == m.samplers.end()) {
    std::string list;
    for (const auto& s : m.samplers) list += (list.empty() ? "" : ", ") + s;
    return Status::invalid_argument("field 'sampler' must be one of: " + list, "sampler");
  }
  if (std::find(m.modes.begin(), m.modes.end(), r.mode) == m.modes.end() &&
      r.mode != Mode::kTxt2Img) {
    return Status::invalid_argument("model '" + m.id + "' does not support mode '" +
                                        std::string(inference::mode_name(r.mode)) + "'",
                                    "mode");
  }
  if (r.mode == Mode::kTxt2Img && r.parent_image_id) {
    return Status::invalid_argument(
        "field 'parent_image_id' is only for the variation, remix and upscale modes",
        "parent_image_id");
  }
  if (r.mode != Mode::kTxt2Img && !r.parent_image_id) {
    return Status::invalid_argument("field 'parent_image_id' is required for mode '" +
                                        std::string(inference::mode_name(r.mode)) + "'",
                                    "parent_image_id");
  }
  if ((r.width.has_value() != r.height.has_value()) && r.mode != Mode::kTxt2Img) {
    return Status::invalid_argument(
        "give both width and height, or neither to take the "
        "size from the parent image",
        r.width ? "height" : "width");
  }
  return Status::ok();
}

}  // namespace

Result<JobRequest> parse_job_request(const http::Request& request,
                                     const inference::ModelRegistry& models) {
  auto parsed = read_json_body(request, [](JsonBody& body) -> Result<JobRequest> {
    JobRequest r;
    auto model = body.required_string("model", 64);
    if (!model.is_ok()) return model.status();
    r.model = std::move(*model);
    auto prompt = body.required_string("prompt", kPromptRule);
    if (!prompt.is_ok()) return prompt.status();
    r.prompt = std::move(*prompt);
    auto negative = body.optional_string("negative_prompt", kNegativeRule);
    if (!negative.is_ok()) return negative.status();
    r.negative_prompt = std::move(*negative);
    // Wide bounds here; the model's own ranges are checked below with a precise message.
    struct IntField {
      std::string_view name;
      std::optional<int64_t>* out;
      int64_t lo, hi;
    };
    for (IntField f :
         {IntField{"width", &r.width, 1, 1 << 16}, IntField{"height", &r.height, 1, 1 << 16},
          IntField{"steps", &r.steps, 1, 10000}, IntField{"count", &r.count, 1, 1000},
          IntField{"seed", &r.seed, -1, kMaxSeed},
          IntField{"parent_image_id", &r.parent_image_id, 1, INT64_MAX},
          IntField{"priority", &r.priority, -10, 10}}) {
      auto v = body.optional_int(f.name, f.lo, f.hi);
      if (!v.is_ok()) return v.status();
      *f.out = *v;
    }
    auto guidance = body.optional_number("guidance", -1e6, 1e6);
    if (!guidance.is_ok()) return guidance.status();
    r.guidance = *guidance;
    auto strength = body.optional_number("strength", -1e6, 1e6);
    if (!strength.is_ok()) return strength.status();
    r.strength = *strength;
    auto sampler = body.optional_string("sampler", 64);
    if (!sampler.is_ok()) return sampler.status();
    r.sampler = std::move(*sampler);
    auto mode = body.optional_enum("mode", {"txt2img", "variation", "remix", "upscale"});
    if (!mode.is_ok()) return mode.status();
    if (*mode) r.mode = *inference::parse_mode(**mode);
    return r;
  });
  if (!parsed.is_ok()) return parsed.status();
  const inference::ModelEntry* entry = models.find(parsed->model);
  if (!entry) {
    std::string list;
    for (const auto& m : models.models()) list += (list.empty() ? "" : ", ") + m.info.id;
    return Status::invalid_argument("unknown model; this server offers: " + list, "model");
  }
  ATELIER_RETURN_IF_ERROR(check_against_model(*parsed, entry->info));
  parsed->canonical_hash = canonical_hash(*parsed);
  return parsed;
}

Result<jobs::JobParams> resolve_job_params(store::Db& db, const JobRequest& r, const ModelInfo& m,
                                           int64_t project_id, int64_t random_seed) {
  jobs::JobParams p;
  p.model = r.model;
  p.prompt = r.prompt;
  p.negative_prompt = r.negative_prompt.value_or("");
  p.steps = static_cast<int>(r.steps.value_or(m.steps.default_value));
  p.guidance = r.guidance.value_or(m.guidance.default_value);
  p.seed = (!r.seed || *r.seed < 0) ? random_seed : *r.seed;
  p.count = static_cast<int>(r.count.value_or(m.count.default_value));
  p.sampler = r.sampler.value_or(m.samplers.empty() ? "" : m.samplers.front());
  p.mode = r.mode;
  p.strength = r.strength.value_or(m.strength.default_value);
  p.priority = static_cast<int>(r.priority.value_or(0));
  p.parent_image_id = r.parent_image_id;
  int64_t width = r.width.value_or(m.width.default_value);
  int64_t height = r.height.value_or(m.height.default_value);

  if (r.mode != Mode::kTxt2Img) {
    auto parent = jobs::job_db::find_image(db, *r.parent_image_id);
    if (!parent.is_ok()) return parent.status();
    if (!*parent || (*parent)->project_id != project_id) {
      return Status::invalid_argument("field 'parent_image_id' names no image in this project",
                                      "parent_image_id");
    }
    auto parent_job = jobs::job_db::find_job(db, (*parent)->job_id);
    if (!parent_job.is_ok()) return parent_job.status();
    if (*parent_job && (*parent_job)->params.model != m.id) {
      return Status::invalid_argument("the parent image was made by model '" +
                                          (*parent_job)->params.model + "'; use that model",
                                      "model");
    }
    const int64_t pw = (*parent)->width, ph = (*parent)->height;
    if (r.mode == Mode::kUpscale) {
      if (m.upscale_factors.empty()) {
        return Status::invalid_argument("model '" + m.id + "' cannot upscale", "mode");
      }
      if (!r.width) {
        width = pw * m.upscale_factors.front();
        height = ph * m.upscale_factors.front();
      } else {
        bool ok = false;
        for (int f : m.upscale_factors) ok = ok || (width == pw * f && height == ph * f);
        if (!ok) {
          std::string factors;
          for (int f : m.upscale_factors)
            factors += (factors.empty() ? "" : " or ") + std::to_string(f);
          return Status::invalid_argument("an upscale must be " + factors + " times the parent's " +
                                              std::to_string(pw) + "x" + std::to_string(ph),
                                          "width");
        }
      }
    } else if (!r.width) {
      width = pw;
      height = ph;
    }
  }
  // Sizes taken from a parent (or multiplied for an upscale) are checked here too.
  ATELIER_RETURN_IF_ERROR(check_int("width", width, m.width));
  ATELIER_RETURN_IF_ERROR(check_int("height", height, m.height));
  p.width = static_cast<int>(width);
  p.height = static_cast<int>(height);
  return p;
}

}  // namespace atelier::api
