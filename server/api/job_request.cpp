#include "server/api/job_request.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "server/api/json_body.h"
#include "server/auth/token.h"
#include "server/inference/prompt_loras.h"
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

nlohmann::json opt_pair(const std::optional<std::array<int64_t, 2>>& v) {
  return v ? nlohmann::json::array({(*v)[0], (*v)[1]}) : nlohmann::json(nullptr);
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
  // Fields added later join the hash only when given, so a request without them hashes as it
  // did before they existed (retries across an upgrade still match).
  if (r.loras) {
    nlohmann::json loras = nlohmann::json::array();
    for (const auto& l : *r.loras) loras.push_back({{"name", l.name}, {"weight", l.weight}});
    j["loras"] = loras;
  }
  if (r.original_size) j["original_size"] = opt_pair(r.original_size);
  if (r.target_size) j["target_size"] = opt_pair(r.target_size);
  if (r.crop_top_left) j["crop_top_left"] = opt_pair(r.crop_top_left);
  const EditFields& e = r.edit;
  if (e.mask_image_id) j["mask_image_id"] = *e.mask_image_id;
  if (e.mask_blur) j["mask_blur"] = *e.mask_blur;
  if (e.inpaint_area) j["inpaint_area"] = inference::inpaint_area_name(*e.inpaint_area);
  if (e.extend) {
    j["extend"] = {{"left", e.extend->left},
                   {"right", e.extend->right},
                   {"top", e.extend->top},
                   {"bottom", e.extend->bottom}};
  }
  return auth::sha256_hex(j.dump());
}

// Checks every value that does not depend on the parent image against the model.
Status check_against_model(const JobRequest& r, const ModelInfo& m) {
  // Edit modes refuse a size (check_edit_fields says so); the ranges do not apply to them.
  if (!inference::is_edit(r.mode)) {
    if (r.width) ATELIER_RETURN_IF_ERROR(check_int("width", *r.width, m.width));
    if (r.height) ATELIER_RETURN_IF_ERROR(check_int("height", *r.height, m.height));
  }
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
  // Its UNet needs a mask, which variation, remix and upscale do not have (whatever it lists).
  if (m.inpainting_model && r.mode != Mode::kTxt2Img && !inference::is_edit(r.mode)) {
    return Status::invalid_argument("model '" + m.id +
                                        "' is an inpainting model: of the modes with a parent it "
                                        "takes only inpaint and outpaint",
                                    "mode");
  }
  if (r.mode == Mode::kTxt2Img && r.parent_image_id) {
    return Status::invalid_argument(
        "field 'parent_image_id' is only for the variation, remix, upscale, inpaint and "
        "outpaint modes",
        "parent_image_id");
  }
  if (r.mode != Mode::kTxt2Img && !r.parent_image_id) {
    return Status::invalid_argument("field 'parent_image_id' is required for mode '" +
                                        std::string(inference::mode_name(r.mode)) + "'",
                                    "parent_image_id");
  }
  if ((r.width.has_value() != r.height.has_value()) && r.mode != Mode::kTxt2Img &&
      !inference::is_edit(r.mode)) {
    return Status::invalid_argument(
        "give both width and height, or neither to take the "
        "size from the parent image",
        r.width ? "height" : "width");
  }
  return Status::ok();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Size conditioning is SDXL's: refused for models that do not take it.
Status check_size_conditioning(const JobRequest& r, const ModelInfo& m) {
  if (m.size_conditioning) return Status::ok();
  for (auto [name, given] :
       {std::pair<const char*, bool>{"original_size", r.original_size.has_value()},
        {"target_size", r.target_size.has_value()},
        {"crop_top_left", r.crop_top_left.has_value()}}) {
    if (given) {
      return Status::invalid_argument("field '" + std::string(name) +
                                          "' is for models with size "
                                          "conditioning (SDXL); model '" +
                                          m.id + "' does not take it",
                                      name);
    }
  }
  return Status::ok();
}

// One LoRA against the registry and the model. `field` is what an error names (`loras[i].name`,
// or `prompt` for a tag); `where` says which in the message.
Status check_lora(const inference::LoraRef& lora, const ModelInfo& m,
                  const inference::ModelRegistry& models, const std::string& field,
                  const std::string& where, std::map<std::string, std::string>& hashes) {
  const inference::LoraInfo* info = models.find_lora(lora.name);
  if (!info) {
    // The name is the client's: not echoed (see json_body.h), but what would fit is listed.
    std::string fits = m.loras.empty() ? "none" : join(m.loras);
    return Status::invalid_argument(
        where + " names no LoRA this server offers; LoRAs for model '" + m.id + "': " + fits,
        field);
  }
  if (!info->available) {
    return Status::invalid_argument(
        where + ": LoRA '" + info->name + "' is unavailable: " + info->reason, field);
  }
  if (info->family != m.family) {
    return Status::invalid_argument(
        where + ": LoRA '" + info->name + "' is for " +
            (info->family.empty() ? "an unknown family" : info->family) + " models; model '" +
            m.id + "' is " + (m.family.empty() ? "not a Stable Diffusion model" : m.family),
        field);
  }
  if (!(lora.weight >= -kMaxLoraWeight && lora.weight <= kMaxLoraWeight)) {
    char msg[160];
    std::snprintf(msg, sizeof(msg), ": the weight of LoRA '%s' must be between %g and %g",
                  info->name.c_str(), -kMaxLoraWeight, kMaxLoraWeight);
    return Status::invalid_argument(where + msg, field);
  }
  hashes[info->name] = info->hash;
  return Status::ok();
}

// Merges `loras` with the prompt's tags and checks every one; fills resolved_loras/lora_hashes.
Status resolve_loras(JobRequest& r, const ModelInfo& m, const inference::ModelRegistry& models) {
  const std::vector<inference::LoraRef> given = r.loras.value_or(std::vector<inference::LoraRef>{});
  const std::vector<inference::LoraRef> tags = inference::split_prompt_loras(r.prompt).loras;
  if (given.empty() && tags.empty()) return Status::ok();
  if (m.max_loras <= 0) {
    return Status::invalid_argument(
        "model '" + m.id + "' takes no LoRAs" +
            (given.empty() ? std::string(" (the prompt has a <lora:...> tag)") : std::string()),
        given.empty() ? "prompt" : "loras");
  }
  std::vector<inference::LoraRef> merged;
  auto named = [&merged](const std::string& name) {
    return std::any_of(merged.begin(), merged.end(),
                       [&name](const inference::LoraRef& l) { return l.name == name; });
  };
  for (size_t i = 0; i < given.size(); ++i) {
    const std::string field = "loras[" + std::to_string(i) + "].name";
    if (named(given[i].name)) {
      return Status::invalid_argument("field '" + field +
                                          "' names the same LoRA as an earlier "
                                          "entry",
                                      field);
    }
    ATELIER_RETURN_IF_ERROR(
        check_lora(given[i], m, models, field, "field '" + field + "'", r.lora_hashes));
    merged.push_back(given[i]);
  }
  size_t from_prompt = 0;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (named(tags[i].name)) continue;  // the field (or an earlier tag) wins
    ATELIER_RETURN_IF_ERROR(check_lora(tags[i], m, models, "prompt",
                                       "the prompt's <lora:...> tag " + std::to_string(i + 1),
                                       r.lora_hashes));
    merged.push_back(tags[i]);
    ++from_prompt;
  }
  const size_t limit = std::min(kMaxLorasPerJob, static_cast<size_t>(m.max_loras));
  if (merged.size() > limit) {
    return Status::invalid_argument(
        "at most " + std::to_string(limit) + " LoRAs per job for model '" + m.id + "', got " +
            std::to_string(merged.size()) + " (" + std::to_string(given.size()) + " in 'loras', " +
            std::to_string(from_prompt) + " more in the prompt)",
        given.size() > limit || from_prompt == 0 ? "loras" : "prompt");
  }
  r.resolved_loras = std::move(merged);
  return Status::ok();
}

// Variation, remix and upscale: a generated parent must be the model's own (an upload is any
// model's; so is an image whose job is gone).
Status check_parent_model(store::Db& db, const jobs::ImageRecord& parent, const ModelInfo& m) {
  if (!parent.job_id) return Status::ok();
  auto parent_job = jobs::job_db::find_job(db, *parent.job_id);
  if (!parent_job.is_ok() && parent_job.status().code() != StatusCode::kNotFound) {
    return parent_job.status();
  }
  if (parent_job.is_ok() && parent_job->params.model != m.id) {
    return Status::invalid_argument(
        "the parent image was made by model '" + parent_job->params.model + "'; use that model",
        "model");
  }
  return Status::ok();
}

// An upscale's size from the parent's (pw x ph, already fitted): the model's first factor, or
// the size given when it is one of the factors.
Status upscale_size(const JobRequest& r, const ModelInfo& m, int64_t pw, int64_t ph, int64_t& width,
                    int64_t& height) {
  if (m.upscale_factors.empty()) {
    return Status::invalid_argument("model '" + m.id + "' cannot upscale", "mode");
  }
  if (!r.width) {
    width = pw * m.upscale_factors.front();
    height = ph * m.upscale_factors.front();
    return Status::ok();
  }
  for (int f : m.upscale_factors) {
    if (width == pw * f && height == ph * f) return Status::ok();
  }
  std::string factors;
  for (int f : m.upscale_factors) factors += (factors.empty() ? "" : " or ") + std::to_string(f);
  return Status::invalid_argument("an upscale must be " + factors + " times the parent's " +
                                      std::to_string(pw) + "x" + std::to_string(ph),
                                  "width");
}

}  // namespace

Result<JobRequest> parse_job_request(const http::Request& request,
                                     const inference::ModelRegistry& models) {
  auto parsed = read_json_body(request, [](JsonBody& body) -> Result<JobRequest> {
    JobRequest r;
    ATELIER_ASSIGN_OR_RETURN(r.model, body.required_string("model", 64));
    ATELIER_ASSIGN_OR_RETURN(r.prompt, body.required_string("prompt", kPromptRule));
    ATELIER_ASSIGN_OR_RETURN(r.negative_prompt,
                             body.optional_string("negative_prompt", kNegativeRule));
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
      ATELIER_ASSIGN_OR_RETURN(*f.out, body.optional_int(f.name, f.lo, f.hi));
    }
    ATELIER_ASSIGN_OR_RETURN(r.guidance, body.optional_number("guidance", -1e6, 1e6));
    ATELIER_ASSIGN_OR_RETURN(r.strength, body.optional_number("strength", -1e6, 1e6));
    ATELIER_ASSIGN_OR_RETURN(r.sampler, body.optional_string("sampler", 64));
    ATELIER_ASSIGN_OR_RETURN(std::optional<std::string> mode,
                             body.optional_enum("mode", {"txt2img", "variation", "remix", "upscale",
                                                         "inpaint", "outpaint"}));
    if (mode) r.mode = *inference::parse_mode(*mode);
    ATELIER_ASSIGN_OR_RETURN(r.edit, read_edit_fields(body));
    auto loras = body.optional_object_array("loras", kMaxLorasPerJob);
    if (!loras.is_ok()) return loras.status();
    if (*loras) {
      r.loras.emplace();
      for (size_t i = 0; i < (*loras)->size(); ++i) {
        JsonBody& item = (**loras)[i];
        const std::string prefix = "loras[" + std::to_string(i) + "].";
        ATELIER_ASSIGN_OR_RETURN(
            std::string name,
            item.required_string(prefix + "name",
                                 TextRule{.min_chars = 1, .max_chars = kMaxLoraNameChars}));
        ATELIER_ASSIGN_OR_RETURN(
            std::optional<double> weight,
            item.optional_number(prefix + "weight", -kMaxLoraWeight, kMaxLoraWeight));
        ATELIER_RETURN_IF_ERROR(item.finish());
        r.loras->push_back(inference::LoraRef{std::move(name), weight.value_or(1.0)});
      }
    }
    struct PairField {
      std::string_view name;
      std::optional<std::array<int64_t, 2>>* out;
      int64_t lo, hi;
    };
    for (PairField f :
         {PairField{"original_size", &r.original_size, kMinConditioningSize, kMaxConditioningSize},
          PairField{"target_size", &r.target_size, kMinConditioningSize, kMaxConditioningSize},
          PairField{"crop_top_left", &r.crop_top_left, 0, kMaxConditioningCrop}}) {
      ATELIER_ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> v,
                               body.optional_int_array(f.name, 2, f.lo, f.hi));
      if (v) *f.out = std::array<int64_t, 2>{(*v)[0], (*v)[1]};
    }
    return r;
  });
  if (!parsed.is_ok()) return parsed.status();
  const inference::ModelEntry* entry = models.find(parsed->model);
  if (!entry) {
    std::string list;
    for (const auto& m : models.models()) list += (list.empty() ? "" : ", ") + m.info.id;
    return Status::invalid_argument("unknown model; this server offers: " + list, "model");
  }
  if (!entry->info.available) {
    // Listed (with its reason) so people see it, but no job can run on it: 400, like an
    // unknown model, naming the field to change.
    return Status::invalid_argument(
        "model '" + entry->info.id + "' is unavailable: " + entry->info.unavailable_reason,
        "model");
  }
  ATELIER_RETURN_IF_ERROR(check_against_model(*parsed, entry->info));
  ATELIER_RETURN_IF_ERROR(check_edit_fields(parsed->mode, parsed->edit, parsed->width.has_value(),
                                            parsed->height.has_value()));
  ATELIER_RETURN_IF_ERROR(check_size_conditioning(*parsed, entry->info));
  ATELIER_RETURN_IF_ERROR(resolve_loras(*parsed, entry->info, models));
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

  const bool edit = inference::is_edit(r.mode);
  if (r.mode != Mode::kTxt2Img) {
    // A missing parent is the request's fault (400), like one in another project.
    auto parent = jobs::job_db::find_image(db, *r.parent_image_id);
    if (!parent.is_ok() && parent.status().code() != StatusCode::kNotFound) return parent.status();
    if (!parent.is_ok() || parent->project_id != project_id) {
      return Status::invalid_argument("field 'parent_image_id' names no image in this project",
                                      "parent_image_id");
    }
    if (edit) {
      // Edits work on pixels: any image of the project, by any model or uploaded.
      ATELIER_ASSIGN_OR_RETURN(ResolvedEdit e,
                               resolve_edit(db, r.mode, r.edit, *parent, project_id));
      width = e.width;
      height = e.height;
      p.edit = e.spec;
      p.mask_image_id = e.mask_image_id;
      // The new border has nothing to keep: outpaint regenerates fully unless told otherwise.
      if (r.mode == Mode::kOutpaint && !r.strength) p.strength = m.strength.max;
    } else {
      ATELIER_RETURN_IF_ERROR(check_parent_model(db, *parent, m));
      // An upload (or an edit's result) may have any size: it counts as the nearest size the
      // model takes.
      const auto [pw, ph] = fit_size(parent->width, parent->height, m.width, m.height);
      if (r.mode == Mode::kUpscale) {
        ATELIER_RETURN_IF_ERROR(upscale_size(r, m, pw, ph, width, height));
      } else if (!r.width) {
        width = pw;
        height = ph;
      }
    }
  }
  // Sizes taken from a parent (or multiplied for an upscale) are checked here too; an edit's
  // output follows the parent instead (resolve_edit bounds it).
  if (!edit) {
    ATELIER_RETURN_IF_ERROR(check_int("width", width, m.width));
    ATELIER_RETURN_IF_ERROR(check_int("height", height, m.height));
  }
  p.width = static_cast<int>(width);
  p.height = static_cast<int>(height);
  p.loras = r.resolved_loras;
  p.lora_hashes = r.lora_hashes;
  p.model_hash = m.hash;
  if (m.size_conditioning) {
    // diffusers' defaults: both sizes the output size, no crop.
    inference::SizeConditioning sc;
    const std::array<int64_t, 2> out_size{width, height};
    const auto original = r.original_size.value_or(out_size);
    const auto target = r.target_size.value_or(out_size);
    const auto crop = r.crop_top_left.value_or(std::array<int64_t, 2>{0, 0});
    sc.original_width = static_cast<int>(original[0]);
    sc.original_height = static_cast<int>(original[1]);
    sc.target_width = static_cast<int>(target[0]);
    sc.target_height = static_cast<int>(target[1]);
    sc.crop_top = static_cast<int>(crop[0]);
    sc.crop_left = static_cast<int>(crop[1]);
    p.size_conditioning = sc;
  }
  return p;
}

}  // namespace atelier::api
