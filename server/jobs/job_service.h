// JobService: the one owner of job state changes. Everything that moves a job (submit, claim,
// progress, completion, cancellation, lease expiry, start-up recovery) goes through here. It
// composes pieces that each have one job and their own contract:
//
//   run_transitions.h  the state machine in the database: each change is one transaction that
//                      also records the job's event (JobChanged) in the project's log; the
//                      event bus publishes it after the commit (server/events)
//   dispatcher.h       the queue in memory (fair scheduler, positions), waiting workers, and
//                      the hand-off of a run to a worker, at submit when one is idle
//   run_table.h        the runs in progress: attempts (fencing), cancel tokens, steps, and
//                      when a step must extend the lease
//   reap_expired()     run every reaper_interval by a PeriodicThread ("job-reaper"): takes
//                      jobs back from workers whose lease ran out
//   sweep_orphans()    run every orphan_sweep_interval by a PeriodicThread ("image-sweep"):
//                      removes image files no row refers to, older than orphan_grace
//
// Workers never touch SQLite or sockets: a worker thread calls next_job() (blocks, then claims
// with one fenced UPDATE under a lease), report_progress() after every step (publishes the
// step on the bus, extends the lease, notices cancellation or a lost lease) and complete() with
// the outcome (the PNGs go into the image store first, then one transaction commits the images
// and the state only if this run still holds the job). A worker that stalls past its lease
// loses the job to the lease reaper; its late completion changes nothing. Files whose rows were
// not committed (cancelled, failed, fenced out, or the commit failed) are removed right after
// the transaction, unless another row or run uses the same bytes (ImageStore::discard).
//
// Thread-safety: every public method may be called from any thread. submit()/cancel() never
// block (their callbacks run on the store's writer thread: post elsewhere for real work);
// next_job(), report_progress() and complete() block on the store and are for worker threads.
// Locks: Dispatcher and RunTable each take their own, briefly, never one inside the other.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/periodic_thread.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "server/events/event_log.h"
#include "server/inference/generator.h"
#include "server/jobs/dispatcher.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job.h"
#include "server/jobs/run.h"
#include "server/jobs/run_table.h"
#include "server/store/store.h"

namespace atelier::jobs {

struct JobServiceOptions {
  std::chrono::milliseconds lease{30'000};  // how long a claim holds without progress
  int max_attempts = 3;                     // claims before a job that keeps dying is failed
  std::chrono::milliseconds reaper_interval{1'000};
  int64_t max_queued_per_user = 1'000;       // over it, submit fails with kResourceExhausted (429)
  std::chrono::milliseconds ageing{60'000};  // scheduler: +1 effective priority per this wait
  size_t completion_threads = 4;  // encode + store + commit finished jobs off the workers
  size_t completion_queue = 64;   // finished jobs waiting for those threads
  // The running sweep of image files no row refers to (a crash between write and commit, a
  // deleted project), and how old such a file must be before it goes.
  std::chrono::milliseconds orphan_sweep_interval{10 * 60'000};
  std::chrono::milliseconds orphan_grace{10 * 60'000};
};

struct SubmitRequest {
  int64_t project_id = 0;
  int64_t user_id = 0;
  std::optional<std::string> idempotency_key;
  std::string request_hash;  // of the request body, to tell a retry from a key reused
  // Runs first inside the submit transaction: checks the caller may submit to the project and
  // resolves the parameters (defaults, parent image) into what will be stored. Its error
  // aborts the submission unchanged.
  std::function<Result<JobParams>(store::Db&)> prepare;
};

struct SubmitResult {
  Job job;
  bool replayed = false;  // an Idempotency-Key retry: the job from the first submission
};

class JobService {
 public:
  using Clock = std::function<SysTime()>;
  using Outcome = Result<std::vector<inference::GeneratedImage>>;

  JobService(store::Store& store, ImageStore& images, const events::EventLog& events,
             JobServiceOptions options, Clock now);
  ~JobService();
  JobService(const JobService&) = delete;
  JobService& operator=(const JobService&) = delete;

  // Start-up recovery, then the lease reaper. Jobs a dead process left running are re-queued
  // (or failed once max_attempts are used), the queue is rebuilt from the queued rows and the
  // image store swept of temporary and unreferenced files. Call before any worker runs, after
  // the bus's subscribers are in place (recovery publishes events).
  Status start();
  // Stops the lease reaper, wakes next_job() callers (they get nullopt) and cancels running
  // generators; complete() of such an interrupted run puts the job back in the queue.
  void stop();

  // ---- requests (never block) ----
  void submit(SubmitRequest request, std::function<void(Result<SubmitResult>)> done);
  // Cancels: a queued job at once, a running one at its next step boundary (the answer then
  // shows cancel_requested). `authorize` runs inside the transaction with the current job.
  // kFailedPrecondition when the job has already finished.
  void cancel(int64_t job_id, int64_t actor,
              std::function<Status(store::Db&, const Job&)> authorize,
              std::function<void(Result<Job>)> done);
  // Fills in what lives in memory only: a queued job's position, a running job's progress.
  void decorate(Job& job) const;
  void decorate(std::span<Job> jobs) const;  // one queue simulation for the whole list

  // ---- workers (block on the store) ----
  std::optional<Run> next_job(const std::string& worker);
  void report_progress(const Run& run, int step, int steps, const image::Image* preview);
  // Whether anyone watches this job's previews right now (the bus's preview demand).
  bool wants_preview(const Run& run) const;
  void complete(const Run& run, Outcome outcome);
  // complete() on the completion threads, so the worker's device starts the next job while this
  // one's PNGs are encoded, fsynced and committed. Runs complete() on the calling thread instead
  // when no job is queued (nothing to overlap with), or when those threads are all busy and their
  // queue is full (backpressure on a disk that cannot keep up).
  void complete_async(Run run, Outcome outcome);
  // Waits for every completion handed to complete_async() and stops its threads. Call after
  // the workers have stopped and before the store closes.
  void drain_completions();

  // ---- tests and diagnostics ----
  // One lease-reaper pass now (its thread calls it every reaper_interval).
  Status reap_expired();
  // One orphan-sweep pass now (its thread calls it every orphan_sweep_interval).
  Result<SweepReport> sweep_orphans();
  // Called at named points of a job's completion: "after_rename" (the files are in the image
  // store, nothing committed) and "after_commit" (committed and published). Crash tests kill
  // the process there. Set before start().
  std::function<void(std::string_view point)> test_hook;
  size_t queued_count() const { return dispatcher_.queued(); }
  // Workers waiting in next_job() for work (and not yet handed a job).
  size_t idle_workers() const { return dispatcher_.idle_workers(); }

 private:
  // Stores the PNGs of a done run in the image store, appending the records to commit to
  // `stored` (also those stored before a failure, so that they can be discarded).
  Status store_images(const Run& run, const std::vector<inference::GeneratedImage>& images,
                      std::vector<NewImage>& stored, std::vector<std::string>& warnings);
  // After the run's transaction: unpins the files when their rows were committed, else removes
  // them (ImageStore::discard).
  void settle_files(const Run& run, const std::vector<NewImage>& files, bool committed);
  // Asks the database which files image rows refer to (a read on the calling thread).
  ReferenceCheck reference_check();
  void hook(std::string_view point) {
    if (test_hook) test_hook(point);
  }

  store::Store& store_;
  ImageStore& images_;
  const events::EventLog& events_;
  const JobServiceOptions options_;
  const Clock now_;
  Dispatcher dispatcher_;
  RunTable runs_;
  PeriodicThread lease_reaper_;
  PeriodicThread orphan_sweeper_;
  ThreadPool completions_;
};

}  // namespace atelier::jobs
