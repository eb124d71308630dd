// JobService, the worker side: claiming under a lease, progress (published on the bus; it keeps
// the lease alive), and completion fenced by the attempt, which keeps the image files only when
// their rows were committed. See job_service.h for the contract.
#include <algorithm>
#include <memory>
#include <utility>

#include "common/logging.h"
#include "server/jobs/job_db.h"
#include "server/jobs/job_service.h"
#include "server/jobs/run_transitions.h"

namespace atelier::jobs {

std::optional<Run> JobService::next_job(const std::string& worker) {
  for (;;) {
    Dispatcher::Work work = dispatcher_.wait_for_work(worker, now_());
    if (work.handed) return std::move(work.handed);  // claimed by a submit for this worker
    if (!work.picked) return std::nullopt;           // stopping
    std::optional<Run> run;
    Status st = store_.write([&](store::Db& db) -> Status {
      if (run) runs_.remove(run->job.id, run->job.attempt);  // a retried transaction
      run.reset();
      transitions::Txn t{db, events_, now_()};
      ATELIER_ASSIGN_OR_RETURN(
          run, transitions::claim(t, *work.picked, worker, t.now + options_.lease, images_));
      // Registered before the commit, so a cancel committed right after finds the run.
      if (run) runs_.add(*run, t.now);
      return Status::ok();
    });
    if (!st.is_ok()) {
      if (run) runs_.remove(run->job.id, run->job.attempt);
      if (dispatcher_.stopping()) return std::nullopt;
      dispatcher_.undo_pop(*work.picked);  // nothing changed in the database: still queued
      log::error("claiming job {} failed: {}", work.picked->id, st.to_string());
      continue;
    }
    if (!run) continue;  // cancelled (or deleted) since it was queued
    if (dispatcher_.stopping()) run->cancel->cancel();
    return run;
  }
}

void JobService::report_progress(const Run& run, int step, int steps, const image::Image* preview) {
  const SysTime now = now_();
  const RunTable::StepNoted noted = runs_.note_step(run, step, now, options_.lease / 3);
  if (!noted.current) return;
  Job job = run.job;
  job.progress_step = step;
  job.params.steps = steps;
  events_.bus().publish(
      events::JobProgress{&job, step, steps, std::chrono::system_clock::now(), preview});
  if (!noted.extend_lease) return;
  job_db::LeaseCheck check{true, false};
  Status st = store_.write([&](store::Db& db) -> Status {
    ATELIER_ASSIGN_OR_RETURN(check, job_db::extend_lease(db, run.job.id, run.job.attempt,
                                                         now + options_.lease, step, now));
    return Status::ok();
  });
  if (!st.is_ok()) {
    log::warn("extending the lease of job {} failed: {}", run.job.id, st.to_string());
    return;
  }
  if (!check.held) runs_.lose(run.job.id, run.job.attempt);
  if (!check.held || check.cancel_requested) run.cancel->cancel();
}

bool JobService::wants_preview(const Run& run) const {
  return events_.bus().wants_preview(run.job);
}

Status JobService::store_images(const Run& run,
                                const std::vector<inference::GeneratedImage>& images,
                                std::vector<NewImage>& stored, std::vector<std::string>& warnings) {
  for (size_t i = 0; i < images.size(); ++i) {
    const inference::GeneratedImage& g = images[i];
    for (const std::string& w : g.warnings) {  // each text once, in the order first seen
      if (std::find(warnings.begin(), warnings.end(), w) == warnings.end()) warnings.push_back(w);
    }
    image::TextChunks text = {
        {"parameters", a1111_parameters(run.job.params, g.seed, g.image.width, g.image.height)}};
    ATELIER_ASSIGN_OR_RETURN(auto png, image::encode_png(g.image, text));
    ATELIER_ASSIGN_OR_RETURN(auto file, images_.put(png));
    stored.push_back(NewImage{static_cast<int>(i), file.sha256, file.bytes, g.image.width,
                              g.image.height, g.seed, g.lineage});
  }
  return Status::ok();
}

void JobService::settle_files(const Run& run, const std::vector<NewImage>& files, bool committed) {
  for (const NewImage& file : files) {
    if (committed) {
      images_.unpin(file.sha256);
      continue;
    }
    Result<bool> removed = images_.discard(file.sha256, reference_check());
    if (!removed.is_ok()) {
      // The running sweep retries once the file is past its grace period.
      log::warn("job {}: removing the uncommitted image {} failed: {}", run.job.id, file.sha256,
                removed.status().to_string());
    }
  }
}

void JobService::complete(const Run& run, Outcome outcome) {
  // The transition that ends the run, inside its write transaction.
  std::function<Result<Job>(transitions::Txn&)> end;
  std::vector<NewImage> stored;
  std::vector<std::string> warnings;
  if (outcome.is_ok()) {
    Status files = store_images(run, *outcome, stored, warnings);
    if (files.is_ok()) {
      hook("after_rename");
      end = [&](transitions::Txn& t) {
        return transitions::finish(t, run, JobState::kDone, "", stored, warnings);
      };
    } else {
      log::error("storing the images of job {} failed: {}", run.job.id, files.to_string());
      end = [&](transitions::Txn& t) {
        return transitions::finish(t, run, JobState::kFailed, "storing the images failed", {}, {});
      };
    }
  } else if (outcome.status().code() == StatusCode::kCancelled) {
    const bool shutting_down = dispatcher_.stopping();
    end = [&, shutting_down](transitions::Txn& t) {
      return transitions::interrupt(t, run, shutting_down);
    };
  } else {
    end = [&](transitions::Txn& t) {
      return transitions::finish(t, run, JobState::kFailed, outcome.status().message(), {}, {});
    };
  }
  std::optional<Job> ended;
  Status st = store_.write([&](store::Db& db) -> Status {
    transitions::Txn t{db, events_, now_()};
    ATELIER_ASSIGN_OR_RETURN(ended, end(t));
    return Status::ok();
  });
  runs_.remove(run.job.id, run.job.attempt);
  // The rows exist only for a job committed as done (a cancel requested meanwhile turns done
  // into cancelled without them); every other file goes now rather than at a later sweep.
  settle_files(run, stored, st.is_ok() && ended && ended->state == JobState::kDone);
  if (!st.is_ok()) {
    log::warn("job {} attempt {}: {}", run.job.id, run.job.attempt, st.to_string());
    return;
  }
  hook("after_commit");
  if (ended && ended->state == JobState::kQueued) dispatcher_.add(*ended);  // shutdown: requeued
  dispatcher_.wake();
}

void JobService::complete_async(Run run, Outcome outcome) {
  if (queued_count() == 0) {
    // Nothing waits for this worker: finishing here saves a thread hand-off on the latency of
    // a lone job, and costs no device time.
    return complete(run, std::move(outcome));
  }
  auto task = std::make_shared<std::pair<Run, Outcome>>(std::move(run), std::move(outcome));
  if (!completions_.try_submit([this, task] { complete(task->first, std::move(task->second)); })) {
    complete(task->first, std::move(task->second));
  }
}

void JobService::drain_completions() {
  completions_.stop();
}

}  // namespace atelier::jobs
