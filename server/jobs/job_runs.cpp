// JobService, the worker side: claiming under a lease, progress (which keeps the lease alive),
// and completion fenced by the attempt. See job_service.h for the contract.
#include <algorithm>
#include <utility>

#include "common/logging.h"
#include "server/jobs/job_db.h"
#include "server/jobs/job_service.h"
#include "server/jobs/job_service_events.h"

namespace atelier::jobs {

using detail::event_type_for;
using detail::record;
using detail::reload;

void JobService::complete_async(Claim claim,
                                Result<std::vector<inference::GeneratedImage>> outcome) {
  if (queued_count() == 0) {
    // Nothing waits for this worker: finishing here saves a thread hand-off on the latency of
    // a lone job, and costs no device time.
    return complete(claim, std::move(outcome));
  }
  auto task = std::make_shared<std::pair<Claim, Result<std::vector<inference::GeneratedImage>>>>(
      std::move(claim), std::move(outcome));
  if (!completions_.try_submit([this, task] { complete(task->first, std::move(task->second)); })) {
    complete(task->first, std::move(task->second));
  }
}

void JobService::drain_completions() {
  completions_.stop();
}

// ---------------------------------------------------------------------------------------------
// Workers

Result<std::optional<JobService::Claimed>> JobService::claim_in_txn(store::Db& db,
                                                                    const QueuedJob& picked,
                                                                    const std::string& worker,
                                                                    int64_t now) {
  auto job = job_db::claim(db, picked.id, worker, now + options_.lease_ms, now);
  if (!job.is_ok()) return job.status();
  if (!*job) return std::optional<Claimed>();  // cancelled (or deleted) since it was queued
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
      p.png_path = images_.path_for((*parent)->sha256).string();
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
    // Registered before the commit, so a cancel committed right after finds the run. The
    // caller removes it again if the transaction does not commit.
    std::lock_guard lock(mu_);
    running_[c.job.id] = Running{c.job.attempt, c.cancel, 0, now, false};
  }
  return std::optional<Claimed>(Claimed{std::move(c), std::move(*recorded)});
}

std::optional<JobService::Claim> JobService::next_job(const std::string& worker) {
  while (true) {
    std::optional<QueuedJob> picked;
    {
      std::unique_lock lock(mu_);
      idle_workers_.push_back(worker);
      work_cv_.wait(lock, [&] {
        // Reserved by a submit: wait for its commit (even when stopping: the claim may be
        // committed, and the run must then be interrupted properly, not left behind).
        if (auto r = handoffs_.find(worker); r != handoffs_.end()) return r->second.has_value();
        return stopping_ || scheduler_.size() > 0;
      });
      std::erase(idle_workers_, worker);
      if (auto r = handoffs_.find(worker); r != handoffs_.end()) {
        Claimed handed = std::move(*r->second);
        handoffs_.erase(r);
        if (stopping_) handed.claim.cancel->cancel();
        lock.unlock();
        publish(handed.started);
        return std::move(handed.claim);
      }
      if (stopping_) return std::nullopt;
      picked = scheduler_.pop_next(now_());
    }
    if (!picked) continue;
    std::optional<Claimed> claimed;
    Status st = store_.write([&](store::Db& db) -> Status {
      claimed.reset();
      auto c = claim_in_txn(db, *picked, worker, now_());
      if (!c.is_ok()) return c.status();
      claimed = std::move(*c);
      return Status::ok();
    });
    if (!st.is_ok()) {
      std::lock_guard lock(mu_);
      if (claimed) running_.erase(claimed->claim.job.id);
      if (stopping_) return std::nullopt;
      scheduler_.undo_pop(*picked);  // nothing changed in the database: it is still queued
      log::error("claiming job {} failed: {}", picked->id, st.to_string());
      continue;
    }
    if (!claimed) continue;
    {
      std::lock_guard lock(mu_);
      if (stopping_) claimed->claim.cancel->cancel();
    }
    publish(claimed->started);
    return std::move(claimed->claim);
  }
}

void JobService::report_progress(const Claim& claim, int step, int steps,
                                 const image::Image* preview) {
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
  if (step_hooks_.on_step) step_hooks_.on_step(claim.job, step, steps, preview);
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
    std::vector<std::string> warnings;  // each text once, in the order first seen
    for (size_t i = 0; i < outcome->size() && st.is_ok(); ++i) {
      const inference::GeneratedImage& g = (*outcome)[i];
      for (const std::string& w : g.warnings) {
        if (std::find(warnings.begin(), warnings.end(), w) == warnings.end()) warnings.push_back(w);
      }
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
      st = finish_run(claim, JobState::kDone, "", std::move(stored), updates, warnings);
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
                              std::vector<NewImage> images, std::vector<JobUpdate>& updates,
                              const std::vector<std::string>& warnings) {
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
      if (!warnings.empty()) {
        auto set = job_db::set_warnings(db, claim.job.id, claim.job.attempt, warnings, now);
        if (!set.is_ok()) return set.status();
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

}  // namespace atelier::jobs
