// JobService: the one owner of job state changes. Everything that moves a job (submit, claim,
// progress, completion, cancellation, lease expiry, start-up recovery) goes through here, and
// each change is one store transaction that also appends the matching project event
// (job.queued, job.started, job.done, job.failed, job.cancelled, each with data {"job": ...}),
// so the event log never disagrees with the jobs table. Listeners hear about a change only
// after its commit.
//
// Workers never touch SQLite or sockets: a worker thread calls next_job() (blocks, then claims
// with one fenced UPDATE under a lease), report_progress() after every step (extends the lease,
// notices cancellation or a lost lease) and complete() with the outcome (the PNGs go into the
// image store first, then one transaction commits the images and the state only if this attempt
// still holds the job). A worker that stalls past its lease loses the job to the reaper; its late
// completion changes nothing.
//
// Thread-safety: every public method may be called from any thread. submit()/cancel() never
// block (their callbacks run on the store's writer thread: post elsewhere for real work);
// next_job(), report_progress() and complete() block on the store and are for worker threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/thread_pool.h"
#include "server/inference/generator.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job.h"
#include "server/jobs/scheduler.h"
#include "server/store/store.h"

namespace atelier::jobs {

struct JobServiceOptions {
  int64_t lease_ms = 30'000;  // how long a claim holds without progress
  int max_attempts = 3;       // claims before a job that keeps dying is failed
  int64_t reaper_interval_ms = 1'000;
  int64_t max_queued_per_user = 1'000;  // over it, submit fails with kResourceExhausted (429)
  int64_t ageing_ms = 60'000;           // scheduler: +1 effective priority per this much waiting
  int64_t heartbeat_ms = 15'000;        // keep-alive ticks to listeners (SSE comments)
  size_t completion_threads = 4;        // encode + store + commit finished jobs off the workers
  size_t completion_queue = 64;         // finished jobs waiting for those threads
};

// What listeners hear. kChanged: a committed state change (`event_type`/`event_seq` set) or
// progress of a running job (event_type empty; not durable, may be dropped). kTick: nothing
// happened; streams use it to keep idle connections alive.
struct JobUpdate {
  enum class Kind { kChanged, kTick };
  Kind kind = Kind::kChanged;
  Job job;
  std::string event_type;  // "job.done", ... ; empty for progress
  int64_t event_seq = 0;
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
  using Clock = std::function<int64_t()>;  // Unix ms
  using Listener = std::function<void(const JobUpdate&)>;

  struct Claim {
    Job job;
    std::optional<inference::ParentImage> parent;
    std::shared_ptr<inference::CancelToken> cancel;
    std::string worker;
  };

  JobService(store::Store& store, ImageStore& images, JobServiceOptions options, Clock now_ms);
  ~JobService();
  JobService(const JobService&) = delete;
  JobService& operator=(const JobService&) = delete;

  // Start-up recovery, then the reaper thread. Jobs a dead process left running are re-queued
  // (or failed once max_attempts are used, or cancelled when a cancel was requested), the
  // scheduler is rebuilt from the queued rows and the image store swept of temporary and
  // unreferenced files. Call before any worker runs.
  Status start();
  // Stops the reaper, wakes next_job() callers (they get nullopt) and cancels running
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

  // ---- listeners (called outside any lock, on the thread that made the change: be quick) ----
  // job_id 0: every job.
  uint64_t subscribe(int64_t job_id, Listener listener);
  void unsubscribe(uint64_t subscription);

  // What the live rooms hear from workers on every step (progress, and a preview when they
  // want one). Called on worker threads; must be quick. Set before the workers start.
  struct StepHooks {
    std::function<bool(const Job&)> wants_preview;
    std::function<void(const Job&, int step, int steps, const image::Image* preview)> on_step;
  };
  void set_step_hooks(StepHooks hooks) { step_hooks_ = std::move(hooks); }

  // ---- workers (block on the store) ----
  std::optional<Claim> next_job(const std::string& worker);
  void report_progress(const Claim& claim, int step, int steps, const image::Image* preview);
  // Whether anyone watches this job's previews right now.
  bool wants_preview(const Claim& claim) const;
  void complete(const Claim& claim, Result<std::vector<inference::GeneratedImage>> outcome);
  // complete() on the completion threads, so the worker's device starts the next job while this
  // one's PNGs are encoded, fsynced and committed. Runs complete() on the calling thread instead
  // when no job is queued (nothing to overlap with), or when those threads are all busy and their
  // queue is full (backpressure on a disk that cannot keep up).
  void complete_async(Claim claim, Result<std::vector<inference::GeneratedImage>> outcome);
  // Waits for every completion handed to complete_async() and stops its threads. Call after
  // the workers have stopped and before the store closes.
  void drain_completions();

  // ---- tests and diagnostics ----
  // One reaper pass now (the reaper thread calls it every reaper_interval_ms).
  Status reap_expired();
  // Called at named points of a job's completion: "after_rename" (the files are in the image
  // store, nothing committed) and "after_commit" (committed, listeners not yet told). Crash
  // tests kill the process there. Set before start().
  std::function<void(std::string_view point)> test_hook;
  size_t queued_count() const;
  // Workers waiting in next_job() for work (and not yet handed a job).
  size_t idle_workers() const;

 private:
  struct Running {
    int attempt = 0;
    std::shared_ptr<inference::CancelToken> cancel;
    int step = 0;
    int64_t lease_extended_at = 0;
    bool lost = false;  // the attempt no longer holds the job
  };

  struct Claimed {
    Claim claim;
    JobUpdate started;  // the job.started event, to publish once committed
  };
  // Claims `picked` for `worker` inside a write transaction: the row (attempt + 1, lease), the
  // parent image's lineage, the job.started event, and the run registered in running_ (which the
  // caller must erase if the transaction does not commit). Empty when the job is no longer
  // queued.
  Result<std::optional<Claimed>> claim_in_txn(store::Db& db, const QueuedJob& picked,
                                              const std::string& worker, int64_t now);
  struct Dispatch {
    std::string worker;  // reserved in handoffs_
    QueuedJob picked;    // popped from the scheduler
    std::optional<Claimed> claimed;
  };
  // Inside the submit transaction, after the job is queued: when a worker waits idle, claims
  // the scheduler's next job for it (usually the one just submitted) in the same transaction.
  Status dispatch_in_txn(store::Db& db, int64_t now, std::optional<Dispatch>& out);
  // The submit rolled back: the claim never happened. Under mu_.
  void undo_dispatch(Dispatch& d);
  void publish(const JobUpdate& update);
  void publish_changes(std::vector<JobUpdate> updates);
  QueuedJob queued_entry(const Job& job) const;
  Status finish_run(const Claim& claim, JobState to, const std::string& error,
                    std::vector<NewImage> images, std::vector<JobUpdate>& updates,
                    const std::vector<std::string>& warnings = {});
  Status interrupt_run(const Claim& claim, std::vector<JobUpdate>& updates);
  void reaper_loop();
  void hook(std::string_view point) {
    if (test_hook) test_hook(point);
  }

  store::Store& store_;
  ImageStore& images_;
  const JobServiceOptions options_;
  const Clock now_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait here for queued jobs
  std::condition_variable reaper_cv_;
  FairScheduler scheduler_;                                     // guarded by mu_
  std::unordered_map<int64_t, Running> running_;                // by job id; guarded by mu_
  std::map<uint64_t, std::pair<int64_t, Listener>> listeners_;  // guarded by mu_
  StepHooks step_hooks_;            // set before workers run, then read-only
  uint64_t next_subscription_ = 1;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  // Dispatch at submit: when a worker is waiting in next_job(), the submit transaction claims
  // the next job for it too, so a lone job costs one commit and one writer round trip less.
  // idle_workers_: waiting in next_job() and not reserved. handoffs_: reserved workers, with
  // their claim once the submit committed (empty while it is in flight).
  std::vector<std::string> idle_workers_;                             // guarded by mu_
  std::unordered_map<std::string, std::optional<Claimed>> handoffs_;  // guarded by mu_
  std::thread reaper_;
  ThreadPool completions_;
};

}  // namespace atelier::jobs
