// The job state machine in the database. Each transition is one function over the caller's
// write transaction: it changes the row (fenced by the attempt where a run is involved),
// re-reads it and records the matching domain event (JobChanged) in the project's log, which
// the bus publishes once the transaction commits. No locks, no threads, no memory state: the
// caller (JobService) mirrors the outcome in its Dispatcher and RunTable after the commit.
//
//   queued --claim--> running --finish--> done | failed | cancelled
//     ^                  |--interrupt--> cancelled, or queued (shutdown)
//     +----release-------+  (worker gone: lease expired or server restarted; failed when the
//                             attempts are used up)
//   queued --cancel--> cancelled;  running --cancel--> running with cancel_requested
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/events/event_log.h"
#include "server/jobs/image_store.h"
#include "server/jobs/job.h"
#include "server/jobs/run.h"
#include "server/jobs/scheduler.h"
#include "server/store/sqlite.h"

namespace atelier::jobs::transitions {

// What every transition needs: the transaction, the log its event goes to, and the time.
struct Txn {
  store::Db& db;
  const events::EventLog& events;
  SysTime now;
};

// The committed row of a job that must exist (kNotFound otherwise).
Result<Job> load(store::Db& db, int64_t job_id);
// Records `job`'s current state as its event (job.queued, job.started, ...).
Status record(Txn& t, const Job& job, int64_t actor);

// queued -> running for `worker` under a lease until `lease_until`, with the parent image's
// lineage; nullopt when the job is no longer queued (cancelled or deleted since it was picked).
Result<std::optional<Run>> claim(Txn& t, const QueuedJob& picked, const std::string& worker,
                                 SysTime lease_until, const ImageStore& images);
// running -> `to` (done, failed; done becomes cancelled when a cancel was requested), with the
// images and warnings of a done run. kFailedPrecondition when `run` no longer holds the job.
Result<Job> finish(Txn& t, const Run& run, JobState to, const std::string& error,
                   const std::vector<NewImage>& images, const std::vector<std::string>& warnings);
// The generator stopped early: cancelled, or back to queued when the server is shutting down
// and nobody asked for the cancel. kFailedPrecondition when `run` no longer holds the job.
Result<Job> interrupt(Txn& t, const Run& run, bool shutting_down);
// Running jobs whose worker is gone: each back to queued, or failed once its attempts are used
// up. Returns the jobs that changed, as committed.
Result<std::vector<Job>> release(Txn& t, const std::vector<Job>& running,
                                 const std::string& reason);
// A queued job is cancelled at once; a running one gets cancel_requested (its worker stops at
// the next step). `authorize` runs first with the current row. kFailedPrecondition when the
// job has already finished.
Result<Job> cancel(Txn& t, int64_t job_id, int64_t actor,
                   const std::function<Status(store::Db&, const Job&)>& authorize);

}  // namespace atelier::jobs::transitions
