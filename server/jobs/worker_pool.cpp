#include "server/jobs/worker_pool.h"

#include <map>

#include "common/logging.h"
#include "common/thread_name.h"
#include "server/inference/edit.h"
#include "server/inference/prompt_loras.h"

namespace atelier::jobs {

namespace {

// Feeds a generator's steps to the job service.
class ServiceProgress final : public inference::ProgressSink {
 public:
  ServiceProgress(JobService& service, const Run& claim) : service_(service), claim_(claim) {}
  void on_step(int step, int steps, const image::Image* preview) override {
    service_.report_progress(claim_, step, steps, preview);
  }
  bool wants_preview() const override { return service_.wants_preview(claim_); }

 private:
  JobService& service_;
  const Run& claim_;
};

// The generator gets the prompt without its `<lora:...>` tags (they were resolved into
// `loras` at submission; the stored prompt keeps them, as A1111 does).
inference::GenerateRequest request_for(const Run& claim) {
  const JobParams& p = claim.job.params;
  inference::GenerateRequest r;
  r.model = p.model;
  r.prompt = inference::split_prompt_loras(p.prompt).prompt;
  r.loras = p.loras;
  r.size_conditioning = p.size_conditioning;
  r.negative_prompt = p.negative_prompt;
  r.width = p.width;
  r.height = p.height;
  r.steps = p.steps;
  r.guidance = p.guidance;
  r.seed = p.seed;
  r.count = p.count;
  r.sampler = p.sampler;
  r.mode = p.mode;
  r.strength = p.strength;
  if (p.mode != inference::Mode::kTxt2Img) {
    r.parent = claim.parent;
    if (r.parent) r.parent->prompt = inference::split_prompt_loras(r.parent->prompt).prompt;
  }
  r.edit = p.edit;
  r.mask_png_path = claim.mask_png_path;
  return r;
}

// What the registry of this run says against a job stored earlier (the files may have changed
// across a restart): the model must be available and each LoRA still offered and available.
Status check_still_offered(const inference::ModelRegistry& models,
                           const inference::ModelEntry& entry, const JobParams& p) {
  if (!entry.info.available) {
    return Status::failed_precondition("model '" + entry.info.id +
                                       "' is unavailable: " + entry.info.unavailable_reason);
  }
  for (const inference::LoraRef& l : p.loras) {
    const inference::LoraInfo* lora = models.find_lora(l.name);
    if (!lora) return Status::failed_precondition("LoRA '" + l.name + "' is no longer offered");
    if (!lora->available) {
      return Status::failed_precondition("LoRA '" + l.name + "' is unavailable: " + lora->reason);
    }
  }
  return Status::ok();
}

}  // namespace

WorkerPool::WorkerPool(JobService& service, const inference::ModelRegistry& models,
                       WorkerPoolOptions options)
    : service_(service), models_(models), options_(std::move(options)) {}

WorkerPool::~WorkerPool() {
  stop();
}

Status WorkerPool::start() {
  if (options_.devices.empty()) return Status::invalid_argument("no worker devices", "workers");
  for (size_t i = 0; i < options_.devices.size(); ++i) {
    threads_.emplace_back([this, i] {
      set_current_thread_name("worker-" + options_.devices[i]);
      run(i, options_.devices[i]);
    });
  }
  return Status::ok();
}

void WorkerPool::stop() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkerPool::run(size_t index, const std::string& device) {
  std::shared_ptr<void> thread_state;
  if (options_.thread_init) thread_state = options_.thread_init(device);
  const std::string name = options_.name_prefix + "-" + std::to_string(index) + "-" + device;
  // This worker's model instances, built on first use and kept for the thread's life.
  std::map<std::string, std::unique_ptr<inference::Generator>> generators;
  while (auto claim = service_.next_job(name)) {
    const std::string& model = claim->job.params.model;
    if (const inference::ModelEntry* entry = models_.find(model)) {
      if (Status st = check_still_offered(models_, *entry, claim->job.params); !st.is_ok()) {
        service_.complete(*claim, st);
        continue;
      }
    }
    auto it = generators.find(model);
    if (it == generators.end()) {
      const inference::ModelEntry* entry = models_.find(model);
      if (!entry) {
        service_.complete(*claim, Status::invalid_argument("model '" + model +
                                                           "' is not offered by this server"));
        continue;
      }
      auto created = entry->create(device);
      if (!created.is_ok()) {
        log::error("{}: cannot load model {}: {}", name, model, created.status().to_string());
        service_.complete(*claim, created.status().with_context("loading model " + model));
        continue;
      }
      it = generators.emplace(model, std::move(*created)).first;
    }
    inference::GenerateRequest request = request_for(*claim);
    if (request.mode != inference::Mode::kTxt2Img && !request.parent) {
      service_.complete(*claim, Status::failed_precondition("the parent image no longer exists"));
      continue;
    }
    ServiceProgress progress(service_, *claim);
    Result<std::vector<inference::GeneratedImage>> outcome = Status::internal("not run");
    try {
      // Inpaint and outpaint go through edit.h, which prepares the canvas and composites.
      outcome = inference::is_edit(request.mode)
                    ? inference::run_edit(*it->second, request, progress, *claim->cancel)
                    : it->second->generate(request, progress, *claim->cancel);
    } catch (const std::exception& e) {
      // A model bug (or a torch error) fails this job, not the worker.
      outcome = Status::internal(std::string("the model failed: ") + e.what());
    }
    service_.complete_async(std::move(*claim), std::move(outcome));
  }
}

}  // namespace atelier::jobs
