#include "server/api/job_json.h"

#include <ctime>

namespace atelier::api {

namespace {

template <typename T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json opt_time(const std::optional<SysTime>& t) {
  return t ? nlohmann::json(format_time_ms(*t)) : nlohmann::json(nullptr);
}

}  // namespace

std::string format_time_ms(SysTime t) {
  // Whole seconds rounded down, so a time before the epoch borrows one: -1 ms is 23:59:59.999.
  const auto whole = std::chrono::floor<std::chrono::seconds>(t);
  const std::time_t secs = static_cast<std::time_t>(whole.time_since_epoch().count());
  const int millis = static_cast<int>((t - whole).count());
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", millis);
  return buf;
}

nlohmann::json image_json(const ImageRecord& image) {
  return {{"id", image.id},
          {"project_id", image.project_id},
          {"job_id", opt(image.job_id)},
          {"source", jobs::source_name(image.source)},
          {"original_name", image.original_name.empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(image.original_name)},
          {"index", image.idx},
          {"created_by", opt(image.created_by)},
          {"width", image.width},
          {"height", image.height},
          {"seed", image.seed},
          {"parent_image_id", opt(image.parent_image_id)},
          {"sha256", image.sha256},
          {"bytes", image.bytes},
          {"url", "/api/v1/images/" + std::to_string(image.id) + "/file"},
          {"thumb_url", "/api/v1/images/" + std::to_string(image.id) + "/thumb"},
          {"created_at", format_time_ms(image.created_at)}};
}

nlohmann::json loras_json(const JobParams& p) {
  nlohmann::json out = nlohmann::json::array();
  for (const inference::LoraRef& l : p.loras) {
    auto hash = p.lora_hashes.find(l.name);
    out.push_back({{"name", l.name},
                   {"weight", l.weight},
                   {"hash", hash == p.lora_hashes.end() || hash->second.empty()
                                ? nlohmann::json(nullptr)
                                : nlohmann::json(hash->second)}});
  }
  return out;
}

void add_generation_fields(nlohmann::json& out, const JobParams& p) {
  out["loras"] = loras_json(p);
  out["model_hash"] = p.model_hash.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.model_hash);
  const auto& sc = p.size_conditioning;
  out["original_size"] = sc ? nlohmann::json::array({sc->original_width, sc->original_height})
                            : nlohmann::json(nullptr);
  out["target_size"] =
      sc ? nlohmann::json::array({sc->target_width, sc->target_height}) : nlohmann::json(nullptr);
  out["crop_top_left"] =
      sc ? nlohmann::json::array({sc->crop_top, sc->crop_left}) : nlohmann::json(nullptr);
  // Inpaint and outpaint only (null otherwise).
  const auto& e = p.edit;
  out["mask_image_id"] = opt(p.mask_image_id);
  out["mask_blur"] = e ? nlohmann::json(e->mask_blur) : nlohmann::json(nullptr);
  out["inpaint_area"] =
      e ? nlohmann::json(inference::inpaint_area_name(e->area)) : nlohmann::json(nullptr);
  out["extend"] = e && p.mode == inference::Mode::kOutpaint
                      ? nlohmann::json{{"left", e->extend.left},
                                       {"right", e->extend.right},
                                       {"top", e->extend.top},
                                       {"bottom", e->extend.bottom}}
                      : nlohmann::json(nullptr);
}

nlohmann::json job_json(const Job& job) {
  const JobParams& p = job.params;
  nlohmann::json images = nlohmann::json::array();
  for (const ImageRecord& image : job.images) images.push_back(image_json(image));
  nlohmann::json out = {
      {"id", job.id},
      {"project_id", job.project_id},
      {"state", jobs::state_name(job.state)},
      {"model", p.model},
      {"prompt", p.prompt},
      {"negative_prompt", p.negative_prompt},
      {"width", p.width},
      {"height", p.height},
      {"steps", p.steps},
      {"guidance", p.guidance},
      {"seed", p.seed},
      {"count", p.count},
      {"sampler", p.sampler},
      {"mode", inference::mode_name(p.mode)},
      {"strength", p.strength},
      {"parent_image_id", opt(p.parent_image_id)},
      {"priority", p.priority},
      {"progress", {{"step", job.progress_step}, {"steps", p.steps}}},
      {"attempt", job.attempt},
      {"max_attempts", job.max_attempts},
      {"position", opt(job.position)},
      {"cancel_requested", job.cancel_requested},
      {"images", images},
      {"error", job.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(job.error)},
      {"submitted_by", opt(job.submitted_by)},
      {"created_at", format_time_ms(job.created_at)},
      {"queued_at", format_time_ms(job.queued_at)},
      {"started_at", opt_time(job.started_at)},
      {"finished_at", opt_time(job.finished_at)},
      {"updated_at", format_time_ms(job.updated_at)},
      {"warnings", job.warnings},
  };
  add_generation_fields(out, p);
  return out;
}

}  // namespace atelier::api
