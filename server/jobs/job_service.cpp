#include "server/jobs/job_service.h"

#include <utility>

#include "common/logging.h"
#include "common/thread_name.h"
#include "server/jobs/job_db.h"
#include "server/jobs/job_json.h"
#include "server/jobs/job_service_events.h"

namespace atelier::jobs {

using detail::record;
using detail::reload;

JobService::JobService(store::Store& store, ImageStore& images, JobServiceOptions options,
                       Clock now_ms)
    : store_(store),
      images_(images),
      options_(options),
      now_(std::move(now_ms)),
      scheduler_(FairScheduler::Options{.ageing_ms = options.ageing_ms}),
      completions_(std::max<size_t>(1, options.completion_threads), options.completion_queue,
                   "job-complete") {}

JobService::~JobService() {
  stop();
  drain_completions();
}

Status JobService::start() {
  std::vector<JobUpdate> updates;
  Status st = store_.write([&](store::Db& db) -> Status {
    updates.clear();
    const int64_t now = now_();
    auto running = job_db::jobs_in_state(db, JobState::kRunning);
    if (!running.is_ok()) return running.status();
    return detail::release_all(db, *running, "the server stopped while running this job", now,
                               updates);
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
  reaper_ = std::thread([this] {
    set_current_thread_name("job-reaper");
    reaper_loop();
  });
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

size_t JobService::idle_workers() const {
  std::lock_guard lock(mu_);
  return idle_workers_.size();
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
  auto dispatch = std::make_shared<std::optional<Dispatch>>();
  store_.submit_write(
      [this, req, result, update, dispatch](store::Db& db) -> Status {
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
        return dispatch_in_txn(db, now, *dispatch);
      },
      [this, result, update, dispatch, done = std::move(done)](Status st) {
        if (!st.is_ok()) {
          // Rolled back: forget the job we queued in memory, and any claim made with it.
          std::lock_guard lock(mu_);
          if (*dispatch) undo_dispatch(**dispatch);
          if (*update) scheduler_.remove((*update)->job.id);
          return done(st);
        }
        if (*update) publish(**update);
        if (*dispatch) {
          std::lock_guard lock(mu_);
          if ((*dispatch)->claimed) {
            // The worker publishes job.started itself, before it reports any progress.
            handoffs_[(*dispatch)->worker] = std::move((*dispatch)->claimed);
          } else {
            // The picked job was no longer queued: the worker goes back to waiting.
            handoffs_.erase((*dispatch)->worker);
            idle_workers_.push_back((*dispatch)->worker);
          }
        }
        // All: a reserved worker must wake, and waiters may pick up what is left queued.
        if (*update) work_cv_.notify_all();
        SubmitResult out = std::move(**result);
        decorate(out.job);
        done(std::move(out));
      });
}

Status JobService::dispatch_in_txn(store::Db& db, int64_t now, std::optional<Dispatch>& out) {
  out.reset();
  {
    std::lock_guard lock(mu_);
    if (stopping_ || idle_workers_.empty()) return Status::ok();
    auto picked = scheduler_.pop_next(now);
    if (!picked) return Status::ok();
    out = Dispatch{idle_workers_.back(), *picked, std::nullopt};
    idle_workers_.pop_back();
    handoffs_[out->worker] = std::nullopt;  // reserved: the worker now waits for this commit
  }
  auto claimed = claim_in_txn(db, out->picked, out->worker, now);
  if (!claimed.is_ok()) return claimed.status();  // the submit rolls back with it
  out->claimed = std::move(*claimed);
  return Status::ok();
}

void JobService::undo_dispatch(Dispatch& d) {
  if (d.claimed) running_.erase(d.claimed->claim.job.id);
  scheduler_.undo_pop(d.picked);
  handoffs_.erase(d.worker);
  idle_workers_.push_back(d.worker);
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
  decorate(std::span<Job>(&job, 1));
}

void JobService::decorate(std::span<Job> jobs) const {
  std::vector<int64_t> queued;
  for (const Job& job : jobs) {
    if (job.state == JobState::kQueued) queued.push_back(job.id);
  }
  std::lock_guard lock(mu_);
  // One simulation of the queue for every queued job in the list.
  auto places = queued.empty() ? std::unordered_map<int64_t, int64_t>()
                               : scheduler_.positions(queued, now_());
  for (Job& job : jobs) {
    if (job.state == JobState::kQueued) {
      // Not in the scheduler while queued: a worker has just picked it and is claiming it.
      auto it = places.find(job.id);
      job.position = it == places.end() ? 1 : it->second;
    } else if (job.state == JobState::kRunning) {
      auto it = running_.find(job.id);
      if (it != running_.end() && it->second.attempt == job.attempt) {
        job.progress_step = std::max(job.progress_step, it->second.step);
      }
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

bool JobService::wants_preview(const Claim& claim) const {
  return step_hooks_.wants_preview && step_hooks_.wants_preview(claim.job);
}

// ---------------------------------------------------------------------------------------------
// Leases

Status JobService::reap_expired() {
  std::vector<JobUpdate> updates;
  Status st = store_.write([&](store::Db& db) -> Status {
    updates.clear();
    const int64_t now = now_();
    auto expired = job_db::expired_leases(db, now);
    if (!expired.is_ok()) return expired.status();
    return detail::release_all(db, *expired, "the worker stopped responding (its lease expired)",
                               now, updates);
  });
  if (!st.is_ok()) return st;
  if (updates.empty()) return Status::ok();
  {
    std::lock_guard lock(mu_);
    for (const JobUpdate& u : updates) {
      // Releasing keeps the attempt number, so it still names the run that lost the job.
      auto it = running_.find(u.job.id);
      if (it != running_.end() && it->second.attempt == u.job.attempt) {
        it->second.lost = true;
        it->second.cancel->cancel();
      }
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
