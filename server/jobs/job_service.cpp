#include "server/jobs/job_service.h"

#include <utility>

#include "common/logging.h"
#include "server/jobs/job_db.h"
#include "server/jobs/job_json.h"
#include "server/projects/project_db.h"

namespace atelier::jobs {

namespace pdb = projects::project_db;

namespace {

// Appends the event that records `job`'s new state, carrying the job as GET /jobs/{id} shows it.
Result<JobUpdate> record(store::Db& db, const Job& job, std::string type, int64_t actor,
                         int64_t now_ms) {
  nlohmann::json data = {{"job", job_json(job)}};
  auto seq = pdb::append_event(db, job.project_id, type, actor, data.dump(), now_ms / 1000);
  if (!seq.is_ok()) return seq.status();
  return JobUpdate{JobUpdate::Kind::kChanged, job, std::move(type), *seq};
}

std::string event_type_for(JobState state) {
  return "job." + std::string(state_name(state));
}

// Re-reads the job inside the transaction (the event must show the committed row).
Result<Job> reload(store::Db& db, int64_t job_id) {
  auto job = job_db::find_job(db, job_id);
  if (!job.is_ok()) return job.status();
  if (!*job) return Status::internal("job " + std::to_string(job_id) + " vanished");
  return std::move(**job);
}

}  // namespace

JobService::JobService(store::Store& store, ImageStore& images, JobServiceOptions options,
                       Clock now_ms)
    : store_(store),
      images_(images),
      options_(options),
      now_(std::move(now_ms)),
      scheduler_(FairScheduler::Options{.ageing_ms = options.ageing_ms}),
      completions_(std::max<size_t>(1, options.completion_threads), options.completion_queue) {}

JobService::~JobService() {
  stop();
  drain_completions();
}

void JobService::complete_async(Claim claim,
                                Result<std::vector<inference::GeneratedImage>> outcome) {
  auto task = std::make_shared<std::pair<Claim, Result<std::vector<inference::GeneratedImage>>>>(
      std::move(claim), std::move(outcome));
  if (!completions_.try_submit([this, task] { complete(task->first, std::move(task->second)); })) {
    complete(task->first, std::move(task->second));
  }
}

void JobService::drain_completions() {
  completions_.stop();
}

Status JobService::start() {
  std::vector<JobUpdate> updates;
  Status st = store_.write([&](store::Db& db) -> Status {
    updates.clear();
    const int64_t now = now_();
    auto running = job_db::jobs_in_state(db, JobState::kRunning);
    if (!running.is_ok()) return running.status();
    for (const Job& job : *running) {
      auto to = job_db::release(db, job, "the server stopped while running this job", now);
      if (!to.is_ok()) return to.status();
      if (!*to) continue;
      auto fresh = reload(db, job.id);
      if (!fresh.is_ok()) return fresh.status();
      auto update = record(db, *fresh, event_type_for(**to), 0, now);
      if (!update.is_ok()) return update.status();
      updates.push_back(std::move(*update));
    }
    return Status::ok();
  });
  if (!st.is_ok()) return st.with_context("recovering jobs");
  if (!updates.empty()) log::info("start-up: released {} job(s) left running", updates.size());

  std::vector<Job> queued;
  std::unordered_set<std::string> referenced;
  st = store_.read([&](store::Db& db) -> Status {
    auto q = job_db::jobs_in_state(db, JobState::kQueued);
    if (!q.is_ok()) return q.status();
    queued = std::move(*q);
    auto shas = job_db::referenced_shas(db);
    if (!shas.is_ok()) return shas.status();
    referenced = std::move(*shas);
    return Status::ok();
  });
  if (!st.is_ok()) return st.with_context("loading the queue");
  auto swept = images_.sweep(referenced);
  if (!swept.is_ok()) return swept.status();
  if (swept->temp_files_removed + swept->orphans_removed > 0) {
    log::info("start-up: removed {} temporary and {} unreferenced image file(s)",
              swept->temp_files_removed, swept->orphans_removed);
  }
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
    for (const Job& job : queued) scheduler_.add(queued_entry(job));
  }
  publish_changes(std::move(updates));
  reaper_ = std::thread([this] { reaper_loop(); });
  return Status::ok();
}

void JobService::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, run] : running_) run.cancel->cancel();
  }
  work_cv_.notify_all();
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
}

QueuedJob JobService::queued_entry(const Job& job) const {
  return QueuedJob{job.id, job.project_id, job.submitted_by.value_or(0), job.params.priority,
                   job.queued_at};
}

size_t JobService::queued_count() const {
  std::lock_guard lock(mu_);
  return scheduler_.size();
}

// ---------------------------------------------------------------------------------------------
// Requests

void JobService::submit(SubmitRequest request, std::function<void(Result<SubmitResult>)> done) {
  auto result = std::make_shared<std::optional<SubmitResult>>();
  auto update = std::make_shared<std::optional<JobUpdate>>();
  auto req = std::make_shared<SubmitRequest>(std::move(request));
  store_.submit_write(
      [this, req, result, update](store::Db& db) -> Status {
        auto params = req->prepare(db);
        if (!params.is_ok()) return params.status();
        if (req->idempotency_key) {
          auto match =
              job_db::find_idempotent(db, req->user_id, req->project_id, *req->idempotency_key);
          if (!match.is_ok()) return match.status();
          if (*match) {
            if ((*match)->request_hash != req->request_hash) {
              return Status::unprocessable(
                  "this Idempotency-Key was already used for a different request",
                  "Idempotency-Key");
            }
            auto job = reload(db, (*match)->job_id);
            if (!job.is_ok()) return job.status();
            *result = SubmitResult{std::move(*job), true};
            return Status::ok();
          }
        }
        auto queued = job_db::count_queued_for_user(db, req->user_id);
        if (!queued.is_ok()) return queued.status();
        if (*queued >= options_.max_queued_per_user) {
          return Status::resource_exhausted("you already have " + std::to_string(*queued) +
                                            " jobs queued (the limit is " +
                                            std::to_string(options_.max_queued_per_user) +
                                            "); wait for some to finish or cancel them");
        }
        const int64_t now = now_();
        auto id =
            job_db::insert_job(db,
                               {req->project_id, req->user_id, std::move(*params),
                                options_.max_attempts, req->idempotency_key, req->request_hash},
                               now);
        if (!id.is_ok()) return id.status();
        auto job = reload(db, *id);
        if (!job.is_ok()) return job.status();
        {
          // Queued now so the event shows the job's position; nobody can claim it before the
          // commit (claims run on this same writer thread, after this transaction).
          std::lock_guard lock(mu_);
          scheduler_.add(queued_entry(*job));
          job->position = scheduler_.position(job->id, now);
        }
        auto recorded = record(db, *job, "job.queued", req->user_id, now);
        if (!recorded.is_ok()) {
          std::lock_guard lock(mu_);
          scheduler_.remove(job->id);
          return recorded.status();
        }
        *update = std::move(*recorded);
        *result = SubmitResult{std::move(*job), false};
        return Status::ok();
      },
      [this, result, update, done = std::move(done)](Status st) {
        if (!st.is_ok()) {
          // Rolled back: forget the job we queued in memory.
          if (*update) {
            std::lock_guard lock(mu_);
            scheduler_.remove((*update)->job.id);
          }
          return done(st);
        }
        if (*update) {
          work_cv_.notify_one();
          publish(**update);
        }
        SubmitResult out = std::move(**result);
        decorate(out.job);
        done(std::move(out));
      });
}

void JobService::cancel(int64_t job_id, int64_t actor,
                        std::function<Status(store::Db&, const Job&)> authorize,
                        std::function<void(Result<Job>)> done) {
  auto out = std::make_shared<std::optional<Job>>();
  auto update = std::make_shared<std::optional<JobUpdate>>();
  store_.submit_write(
      [this, job_id, actor, authorize = std::move(authorize), out, update](store::Db& db) {
        auto job = job_db::find_job(db, job_id);
        if (!job.is_ok()) return job.status();
        if (!*job) return Status::not_found("no such job");
        ATELIER_RETURN_IF_ERROR(authorize(db, **job));
        if (is_terminal((*job)->state)) {
          return Status::failed_precondition("the job has already finished (" +
                                             std::string(state_name((*job)->state)) + ")");
        }
        const int64_t now = now_();
        if ((*job)->state == JobState::kQueued) {
          auto cancelled = job_db::cancel_queued(db, job_id, now);
          if (!cancelled.is_ok()) return cancelled.status();
          auto fresh = reload(db, job_id);
          if (!fresh.is_ok()) return fresh.status();
          auto recorded = record(db, *fresh, "job.cancelled", actor, now);
          if (!recorded.is_ok()) return recorded.status();
          *update = std::move(*recorded);
          *out = std::move(*fresh);
          return Status::ok();
        }
        auto flagged = job_db::request_cancel(db, job_id, now);
        if (!flagged.is_ok()) return flagged.status();
        auto fresh = reload(db, job_id);
        if (!fresh.is_ok()) return fresh.status();
        *out = std::move(*fresh);
        return Status::ok();
      },
      [this, out, update, done = std::move(done)](Status st) {
        if (!st.is_ok()) return done(st);
        Job job = std::move(**out);
        {
          std::lock_guard lock(mu_);
          if (job.state == JobState::kCancelled) scheduler_.remove(job.id);
          auto it = running_.find(job.id);
          if (it != running_.end() && job.cancel_requested) it->second.cancel->cancel();
        }
        if (*update) publish(**update);
        decorate(job);
        done(std::move(job));
      });
}

void JobService::decorate(Job& job) const {
  std::lock_guard lock(mu_);
  if (job.state == JobState::kQueued) {
    // Not in the scheduler while queued: a worker has just picked it and is claiming it.
    job.position = scheduler_.position(job.id, now_()).value_or(1);
  } else if (job.state == JobState::kRunning) {
    auto it = running_.find(job.id);
    if (it != running_.end() && it->second.attempt == job.attempt) {
      job.progress_step = std::max(job.progress_step, it->second.step);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Listeners

uint64_t JobService::subscribe(int64_t job_id, Listener listener) {
  std::lock_guard lock(mu_);
  uint64_t id = next_subscription_++;
  listeners_.emplace(id, std::make_pair(job_id, std::move(listener)));
  return id;
}

void JobService::unsubscribe(uint64_t subscription) {
  std::lock_guard lock(mu_);
  listeners_.erase(subscription);
}

void JobService::publish(const JobUpdate& update) {
  std::vector<Listener> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, entry] : listeners_) {
      if (update.kind == JobUpdate::Kind::kTick || entry.first == 0 ||
          entry.first == update.job.id) {
        targets.push_back(entry.second);
      }
    }
  }
  for (const Listener& l : targets) {
    try {
      l(update);
    } catch (const std::exception& e) {
      log::warn("a job listener threw: {}", e.what());
    }
  }
}

void JobService::publish_changes(std::vector<JobUpdate> updates) {
  for (JobUpdate& u : updates) {
    decorate(u.job);
    publish(u);
  }
}

bool JobService::wants_preview(const Claim&) const {
  // Previews go to room members over WebSocket (a later layer); nobody consumes them yet.
  return false;
}

// ---------------------------------------------------------------------------------------------
// Workers

std::optional<JobService::Claim> JobService::next_job(const std::string& worker) {
  while (true) {
    std::optional<QueuedJob> picked;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || scheduler_.size() > 0; });
      if (stopping_) return std::nullopt;
      picked = scheduler_.pop_next(now_());
    }
    if (!picked) continue;
    std::optional<Claim> claim;
    std::optional<JobUpdate> update;
    Status st = store_.write([&](store::Db& db) -> Status {
      claim.reset();
      update.reset();
      const int64_t now = now_();
      auto job = job_db::claim(db, picked->id, worker, now + options_.lease_ms, now);
      if (!job.is_ok()) return job.status();
      if (!*job) return Status::ok();  // cancelled (or deleted) since it was queued
      Claim c{std::move(**job), std::nullopt, std::make_shared<inference::CancelToken>(), worker};
      if (c.job.params.parent_image_id) {
        auto parent = job_db::find_image(db, *c.job.params.parent_image_id);
        if (!parent.is_ok()) return parent.status();
        if (*parent) {
          auto parent_job = job_db::find_job(db, (*parent)->job_id);
          if (!parent_job.is_ok()) return parent_job.status();
          inference::ParentImage p;
          p.width = (*parent)->width;
          p.height = (*parent)->height;
          p.seed = (*parent)->seed;
          p.lineage = (*parent)->lineage;
          if (*parent_job) {
            p.prompt = (*parent_job)->params.prompt;
            p.negative_prompt = (*parent_job)->params.negative_prompt;
          }
          c.parent = std::move(p);
        }
      }
      auto recorded = record(db, c.job, "job.started", 0, now);
      if (!recorded.is_ok()) return recorded.status();
      {
        // Registered before the commit, so a cancel committed right after finds the run.
        std::lock_guard lock(mu_);
        running_[c.job.id] = Running{c.job.attempt, c.cancel, 0, now, false};
      }
      update = std::move(*recorded);
      claim = std::move(c);
      return Status::ok();
    });
    if (!st.is_ok()) {
      std::lock_guard lock(mu_);
      if (claim) running_.erase(claim->job.id);
      if (stopping_) return std::nullopt;
      scheduler_.undo_pop(*picked);  // nothing changed in the database: it is still queued
      log::error("claiming job {} failed: {}", picked->id, st.to_string());
      continue;
    }
    if (!claim) continue;
    {
      std::lock_guard lock(mu_);
      if (stopping_) claim->cancel->cancel();
    }
    publish(*update);
    return claim;
  }
}

void JobService::report_progress(const Claim& claim, int step, int steps, const image::Image*) {
  const int64_t now = now_();
  bool extend = false;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(claim.job.id);
    if (it == running_.end() || it->second.attempt != claim.job.attempt || it->second.lost) return;
    it->second.step = step;
    if (now - it->second.lease_extended_at >= options_.lease_ms / 3) {
      extend = true;
      it->second.lease_extended_at = now;
    }
  }
  JobUpdate progress{JobUpdate::Kind::kChanged, claim.job, "", 0};
  progress.job.progress_step = step;
  progress.job.params.steps = steps;
  publish(progress);
  if (!extend) return;
  job_db::LeaseCheck check{true, false};
  Status st = store_.write([&](store::Db& db) -> Status {
    auto r = job_db::extend_lease(db, claim.job.id, claim.job.attempt, now + options_.lease_ms,
                                  step, now);
    if (!r.is_ok()) return r.status();
    check = *r;
    return Status::ok();
  });
  if (!st.is_ok()) {
    log::warn("extending the lease of job {} failed: {}", claim.job.id, st.to_string());
    return;
  }
  if (!check.held) {
    std::lock_guard lock(mu_);
    auto it = running_.find(claim.job.id);
    if (it != running_.end() && it->second.attempt == claim.job.attempt) it->second.lost = true;
  }
  if (!check.held || check.cancel_requested) claim.cancel->cancel();
}

void JobService::complete(const Claim& claim,
                          Result<std::vector<inference::GeneratedImage>> outcome) {
  std::vector<JobUpdate> updates;
  Status st;
  if (outcome.is_ok()) {
    std::vector<NewImage> stored;
    for (size_t i = 0; i < outcome->size() && st.is_ok(); ++i) {
      const inference::GeneratedImage& g = (*outcome)[i];
      image::TextChunks text = {{"parameters", a1111_parameters(claim.job.params, g.seed,
                                                                g.image.width, g.image.height)}};
      auto png = image::encode_png(g.image, text);
      if (!png.is_ok()) {
        st = png.status();
        break;
      }
      auto file = images_.put(*png);
      if (!file.is_ok()) {
        st = file.status();
        break;
      }
      stored.push_back(NewImage{static_cast<int>(i), file->sha256, file->bytes, g.image.width,
                                g.image.height, g.seed, g.lineage});
    }
    if (st.is_ok()) {
      hook("after_rename");
      st = finish_run(claim, JobState::kDone, "", std::move(stored), updates);
    } else {
      log::error("storing the images of job {} failed: {}", claim.job.id, st.to_string());
      st = finish_run(claim, JobState::kFailed, "storing the images failed", {}, updates);
    }
  } else if (outcome.status().code() == StatusCode::kCancelled) {
    st = interrupt_run(claim, updates);
  } else {
    st = finish_run(claim, JobState::kFailed, outcome.status().message(), {}, updates);
  }
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(claim.job.id);
    if (it != running_.end() && it->second.attempt == claim.job.attempt) running_.erase(it);
  }
  if (!st.is_ok()) {
    log::warn("job {} attempt {}: {}", claim.job.id, claim.job.attempt, st.to_string());
    return;
  }
  hook("after_commit");
  work_cv_.notify_all();
  publish_changes(std::move(updates));
}

Status JobService::finish_run(const Claim& claim, JobState to, const std::string& error,
                              std::vector<NewImage> images, std::vector<JobUpdate>& updates) {
  return store_.write([&](store::Db& db) -> Status {
    updates.clear();
    auto job = job_db::find_job(db, claim.job.id);
    if (!job.is_ok()) return job.status();
    if (!*job || (*job)->state != JobState::kRunning || (*job)->attempt != claim.job.attempt) {
      // Fencing: another attempt owns the job now, or it was cancelled or deleted.
      return Status::failed_precondition("stale attempt: its result was discarded");
    }
    JobState target = to;
    if (to == JobState::kDone && (*job)->cancel_requested) target = JobState::kCancelled;
    const int64_t now = now_();
    if (target == JobState::kDone) {
      for (const NewImage& image : images) {
        auto id = job_db::insert_image(db, **job, image, now);
        if (!id.is_ok()) return id.status();
      }
    }
    auto changed = job_db::finish(db, claim.job.id, claim.job.attempt, target, error, now);
    if (!changed.is_ok()) return changed.status();
    if (!*changed) return Status::internal("a running job did not change state");
    auto fresh = reload(db, claim.job.id);
    if (!fresh.is_ok()) return fresh.status();
    auto recorded = record(db, *fresh, event_type_for(target), 0, now);
    if (!recorded.is_ok()) return recorded.status();
    updates.push_back(std::move(*recorded));
    return Status::ok();
  });
}

// The generator stopped early: a requested cancel, a lost lease or a shutdown.
Status JobService::interrupt_run(const Claim& claim, std::vector<JobUpdate>& updates) {
  bool stopping;
  {
    std::lock_guard lock(mu_);
    stopping = stopping_;
  }
  std::optional<Job> requeued;
  Status st = store_.write([&](store::Db& db) -> Status {
    updates.clear();
    requeued.reset();
    auto job = job_db::find_job(db, claim.job.id);
    if (!job.is_ok()) return job.status();
    if (!*job || (*job)->state != JobState::kRunning || (*job)->attempt != claim.job.attempt) {
      return Status::failed_precondition("stale attempt: nothing to record");
    }
    const int64_t now = now_();
    JobState target = JobState::kCancelled;
    if (!(*job)->cancel_requested && stopping) {
      // A shutdown is not the job's fault: back in the queue for the next start.
      auto back = job_db::requeue(db, claim.job.id, claim.job.attempt, now);
      if (!back.is_ok()) return back.status();
      target = JobState::kQueued;
    } else {
      auto changed = job_db::finish(db, claim.job.id, claim.job.attempt, target, "", now);
      if (!changed.is_ok()) return changed.status();
    }
    auto fresh = reload(db, claim.job.id);
    if (!fresh.is_ok()) return fresh.status();
    auto recorded = record(db, *fresh, event_type_for(target), 0, now);
    if (!recorded.is_ok()) return recorded.status();
    if (target == JobState::kQueued) requeued = *fresh;
    updates.push_back(std::move(*recorded));
    return Status::ok();
  });
  if (st.is_ok() && requeued) {
    std::lock_guard lock(mu_);
    scheduler_.add(queued_entry(*requeued));
  }
  return st;
}

// ---------------------------------------------------------------------------------------------
// Leases

Status JobService::reap_expired() {
  std::vector<JobUpdate> updates;
  std::vector<std::pair<int64_t, int>> released;  // (job, attempt that lost it)
  Status st = store_.write([&](store::Db& db) -> Status {
    updates.clear();
    released.clear();
    const int64_t now = now_();
    auto expired = job_db::expired_leases(db, now);
    if (!expired.is_ok()) return expired.status();
    for (const Job& job : *expired) {
      auto to = job_db::release(db, job, "the worker stopped responding (its lease expired)", now);
      if (!to.is_ok()) return to.status();
      if (!*to) continue;
      auto fresh = reload(db, job.id);
      if (!fresh.is_ok()) return fresh.status();
      auto recorded = record(db, *fresh, event_type_for(**to), 0, now);
      if (!recorded.is_ok()) return recorded.status();
      released.emplace_back(job.id, job.attempt);
      updates.push_back(std::move(*recorded));
    }
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  if (updates.empty()) return Status::ok();
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, attempt] : released) {
      auto it = running_.find(id);
      if (it != running_.end() && it->second.attempt == attempt) {
        it->second.lost = true;
        it->second.cancel->cancel();
      }
    }
    for (const JobUpdate& u : updates) {
      if (u.job.state == JobState::kQueued) scheduler_.add(queued_entry(u.job));
    }
  }
  log::warn("re-queued or failed {} job(s) whose lease expired", updates.size());
  work_cv_.notify_all();
  publish_changes(std::move(updates));
  return Status::ok();
}

void JobService::reaper_loop() {
  int64_t last_tick = now_();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lock, std::chrono::milliseconds(options_.reaper_interval_ms));
    if (stopping_) break;
    lock.unlock();
    if (Status st = reap_expired(); !st.is_ok()) {
      log::warn("lease reaper: {}", st.to_string());
    }
    if (int64_t now = now_(); now - last_tick >= options_.heartbeat_ms) {
      last_tick = now;
      publish(JobUpdate{JobUpdate::Kind::kTick, Job{}, "", 0});
    }
    lock.lock();
  }
}

}  // namespace atelier::jobs
