// JobService: start-up recovery, requests (submit, cancel), queue decoration and lease expiry.
// The worker side is in job_service_workers.cpp. See job_service.h for the contract.
#include "server/jobs/job_service.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "common/logging.h"
#include "server/jobs/job_db.h"
#include "server/jobs/run_transitions.h"

namespace atelier::jobs {

JobService::JobService(store::Store& store, ImageStore& images, const events::EventLog& events,
                       JobServiceOptions options, Clock now)
    : store_(store),
      images_(images),
      events_(events),
      options_(options),
      now_(std::move(now)),
      dispatcher_(FairScheduler::Options{.ageing = options.ageing}),
      lease_reaper_("job-reaper", options.reaper_interval,
                    [this] {
                      if (Status st = reap_expired(); !st.is_ok()) {
                        log::warn("lease reaper: {}", st.to_string());
                      }
                    }),
      orphan_sweeper_("image-sweep", options.orphan_sweep_interval,
                      [this] {
                        auto swept = sweep_orphans();
                        if (!swept.is_ok())
                          log::warn("image sweep: {}", swept.status().to_string());
                      }),
      completions_(std::max<size_t>(1, options.completion_threads), options.completion_queue,
                   "job-complete") {}

JobService::~JobService() {
  stop();
  drain_completions();
}

Status JobService::start() {
  size_t released = 0;
  Status st = store_.write([&](store::Db& db) -> Status {
    transitions::Txn t{db, events_, now_()};
    ATELIER_ASSIGN_OR_RETURN(std::vector<Job> running,
                             job_db::jobs_in_state(db, JobState::kRunning));
    ATELIER_ASSIGN_OR_RETURN(
        std::vector<Job> changed,
        transitions::release(t, running, "the server stopped while running this job"));
    released = changed.size();
    return Status::ok();
  });
  if (!st.is_ok()) return st.with_context("recovering jobs");
  if (released > 0) log::info("start-up: released {} job(s) left running", released);

  std::vector<Job> queued;
  std::unordered_set<std::string> referenced;
  st = store_.read([&](store::Db& db) -> Status {
    ATELIER_ASSIGN_OR_RETURN(queued, job_db::jobs_in_state(db, JobState::kQueued));
    ATELIER_ASSIGN_OR_RETURN(referenced, job_db::referenced_shas(db));
    return Status::ok();
  });
  if (!st.is_ok()) return st.with_context("loading the queue");
  ATELIER_ASSIGN_OR_RETURN(auto swept, images_.sweep(referenced));
  if (swept.temp_files_removed + swept.orphans_removed > 0) {
    log::info("start-up: removed {} temporary and {} unreferenced image file(s)",
              swept.temp_files_removed, swept.orphans_removed);
  }
  dispatcher_.restart();
  for (const Job& job : queued) dispatcher_.add(job);
  lease_reaper_.start();
  orphan_sweeper_.start();
  return Status::ok();
}

void JobService::stop() {
  dispatcher_.stop();
  runs_.cancel_all();
  lease_reaper_.stop();
  orphan_sweeper_.stop();
}

// ---------------------------------------------------------------------------------------------
// Requests

void JobService::submit(SubmitRequest request, std::function<void(Result<SubmitResult>)> done) {
  // What the transaction did in memory, to keep on commit or undo on rollback.
  struct Submitted {
    SubmitRequest request;
    std::optional<SubmitResult> result;
    int64_t queued_id = 0;  // added to the dispatcher
    std::optional<Dispatcher::Reservation> reservation;
    std::optional<Run> run;  // claimed for the reserved worker
  };
  auto s = std::make_shared<Submitted>();
  s->request = std::move(request);
  store_.submit_write(
      [this, s](store::Db& db) -> Status {
        const SubmitRequest& req = s->request;
        ATELIER_ASSIGN_OR_RETURN(JobParams params, req.prepare(db));
        if (req.idempotency_key) {
          ATELIER_ASSIGN_OR_RETURN(
              auto match,
              job_db::find_idempotent(db, req.user_id, req.project_id, *req.idempotency_key));
          if (match) {
            if (match->request_hash != req.request_hash) {
              return Status::unprocessable(
                  "this Idempotency-Key was already used for a different request",
                  "Idempotency-Key");
            }
            ATELIER_ASSIGN_OR_RETURN(Job job, transitions::load(db, match->job_id));
            s->result = SubmitResult{std::move(job), true};
            return Status::ok();
          }
        }
        ATELIER_ASSIGN_OR_RETURN(int64_t queued, job_db::count_queued_for_user(db, req.user_id));
        if (queued >= options_.max_queued_per_user) {
          return Status::resource_exhausted("you already have " + std::to_string(queued) +
                                            " jobs queued (the limit is " +
                                            std::to_string(options_.max_queued_per_user) +
                                            "); wait for some to finish or cancel them");
        }
        transitions::Txn t{db, events_, now_()};
        ATELIER_ASSIGN_OR_RETURN(
            int64_t id,
            job_db::insert_job(db,
                               {req.project_id, req.user_id, std::move(params),
                                options_.max_attempts, req.idempotency_key, req.request_hash},
                               t.now));
        ATELIER_ASSIGN_OR_RETURN(Job job, transitions::load(db, id));
        // Queued in memory now so the event shows the job's position; nobody can claim it
        // before the commit (claims run on this same writer thread, after this transaction).
        dispatcher_.add(job);
        s->queued_id = id;
        job.position = dispatcher_.position(id, t.now);
        ATELIER_RETURN_IF_ERROR(transitions::record(t, job, req.user_id));
        s->result = SubmitResult{std::move(job), false};
        // Dispatch at submit: a worker waits idle, so claim its next job in this transaction.
        s->reservation = dispatcher_.reserve(t.now);
        if (!s->reservation) return Status::ok();
        ATELIER_ASSIGN_OR_RETURN(
            s->run, transitions::claim(t, s->reservation->picked, s->reservation->worker,
                                       t.now + options_.lease, images_));
        if (s->run) runs_.add(*s->run, t.now);
        return Status::ok();
      },
      [this, s, done = std::move(done)](Status st) {
        if (!st.is_ok()) {
          // Rolled back: forget the job queued in memory, and any claim made with it.
          if (s->run) runs_.remove(s->run->job.id, s->run->job.attempt);
          if (s->reservation) dispatcher_.cancel_reservation(*s->reservation);
          if (s->queued_id != 0) dispatcher_.remove(s->queued_id);
          return done(st);
        }
        if (s->reservation) dispatcher_.hand_over(*s->reservation, std::move(s->run));
        dispatcher_.wake();  // waiting workers may pick up what is left queued
        SubmitResult out = std::move(*s->result);
        decorate(out.job);
        done(std::move(out));
      });
}

void JobService::cancel(int64_t job_id, int64_t actor,
                        std::function<Status(store::Db&, const Job&)> authorize,
                        std::function<void(Result<Job>)> done) {
  auto out = std::make_shared<std::optional<Job>>();
  store_.submit_write(
      [this, job_id, actor, authorize = std::move(authorize), out](store::Db& db) -> Status {
        transitions::Txn t{db, events_, now_()};
        ATELIER_ASSIGN_OR_RETURN(*out, transitions::cancel(t, job_id, actor, authorize));
        return Status::ok();
      },
      [this, out, done = std::move(done)](Status st) {
        if (!st.is_ok()) return done(st);
        Job job = std::move(**out);
        if (job.state == JobState::kCancelled) dispatcher_.remove(job.id);
        if (job.cancel_requested) runs_.cancel(job.id);
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
  // One simulation of the queue for every queued job in the list.
  auto places = queued.empty() ? std::unordered_map<int64_t, int64_t>()
                               : dispatcher_.positions(queued, now_());
  for (Job& job : jobs) {
    if (job.state == JobState::kQueued) {
      // Not in the dispatcher while queued: a worker has just picked it and is claiming it.
      auto it = places.find(job.id);
      job.position = it == places.end() ? 1 : it->second;
    } else if (job.state == JobState::kRunning) {
      if (auto step = runs_.step(job.id, job.attempt)) {
        job.progress_step = std::max(job.progress_step, *step);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Leases

Status JobService::reap_expired() {
  std::vector<Job> released;
  ATELIER_RETURN_IF_ERROR(store_.write([&](store::Db& db) -> Status {
    transitions::Txn t{db, events_, now_()};
    ATELIER_ASSIGN_OR_RETURN(std::vector<Job> expired, job_db::expired_leases(db, t.now));
    ATELIER_ASSIGN_OR_RETURN(
        released,
        transitions::release(t, expired, "the worker stopped responding (its lease expired)"));
    return Status::ok();
  }));
  if (released.empty()) return Status::ok();
  for (const Job& job : released) {
    // Releasing keeps the attempt number, so it still names the run that lost the job.
    runs_.lose(job.id, job.attempt);
    if (job.state == JobState::kQueued) dispatcher_.add(job);
  }
  log::warn("re-queued or failed {} job(s) whose lease expired", released.size());
  dispatcher_.wake();
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Image files

ReferenceCheck JobService::reference_check() {
  return [this](std::span<const std::string> shas) -> Result<std::unordered_set<std::string>> {
    std::unordered_set<std::string> found;
    ATELIER_RETURN_IF_ERROR(store_.read([&](store::Db& db) -> Status {
      ATELIER_ASSIGN_OR_RETURN(found, job_db::referenced_among(db, shas));
      return Status::ok();
    }));
    return found;
  };
}

Result<SweepReport> JobService::sweep_orphans() {
  ATELIER_ASSIGN_OR_RETURN(SweepReport swept,
                           images_.sweep_unreferenced(options_.orphan_grace, reference_check()));
  if (swept.temp_files_removed + swept.orphans_removed + swept.thumbs_removed > 0) {
    log::info("image sweep: removed {} temporary, {} unreferenced and {} thumbnail file(s)",
              swept.temp_files_removed, swept.orphans_removed, swept.thumbs_removed);
  }
  return swept;
}

}  // namespace atelier::jobs
