// The Server-Sent Events streams of GET /jobs/{id}/events. JobStreams subscribes once to the
// event bus and feeds every open stream of a job: its committed changes (decorated with the
// queue position or the current step, as GET /jobs/{id} shows them) and its progress, until the
// job's terminal event ends the stream. An idle stream gets a `: keep-alive` comment every
// `keep_alive`, so proxies do not drop it.
//
// Revocation: with a CredentialWatch, each stream is watched by the credential that opened it;
// once that is revoked or expires, or its user is disabled, the stream sends nothing more and
// ends (within the watch's check interval for revocations made by another process).
//
// Threads: committed changes arrive on the store's writer thread, progress on worker threads,
// keep-alives on JobStreams' own thread; a stream's mutex keeps each SSE event whole and in order.
// A stream leaves the registry when its connection ends (its on_close) or after its terminal
// event. Destroying JobStreams unsubscribes and joins its thread; callbacks of streams that end
// later find it gone and do nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>

#include "common/mutex.h"
#include "common/periodic_thread.h"
#include "server/api/credential_watch.h"
#include "server/auth/account_db.h"
#include "server/events/event_bus.h"
#include "server/http/message.h"
#include "server/jobs/job.h"

namespace atelier::jobs {
class JobService;
}

namespace atelier::api {

// One job's SSE stream: `event: progress` (or the terminal state's name) with the Job object.
class JobEventStream {
 public:
  // `watch` (may be null): the stream's registration; nothing is written once it is revoked.
  JobEventStream(std::shared_ptr<http::StreamWriter> writer,
                 std::unique_ptr<CredentialWatch::Handle> watch = nullptr)
      : writer_(std::move(writer)), watch_(std::move(watch)) {}
  // Sends the job; a terminal state ends the stream. Returns false once the stream is over.
  bool send(const jobs::Job& job) ATELIER_EXCLUDES(mu_);
  void keep_alive() ATELIER_EXCLUDES(mu_);

 private:
  // Writes unless the credential was revoked; false when it was.
  bool write_locked(std::string bytes) ATELIER_REQUIRES(mu_);

  Mutex mu_;
  const std::shared_ptr<http::StreamWriter> writer_;
  const std::unique_ptr<CredentialWatch::Handle> watch_;
  bool finished_ ATELIER_GUARDED_BY(mu_) = false;
  int64_t sent_ ATELIER_GUARDED_BY(mu_) = 0;
};

class JobStreams {
 public:
  // `watch` (may be null) must outlive the streams' connections.
  JobStreams(events::EventBus& bus, const jobs::JobService& jobs,
             std::chrono::milliseconds keep_alive, CredentialWatch* watch = nullptr);
  ~JobStreams();
  JobStreams(const JobStreams&) = delete;
  JobStreams& operator=(const JobStreams&) = delete;

  // Registers the stream of `job_id` (before its first send, so no change is missed) and
  // removes it when `writer` closes. With a watch, the stream is also watched as `principal`'s
  // until it ends: the caller checks the credential once more after this (a revocation that
  // committed before the watch saw the stream).
  std::shared_ptr<JobEventStream> open(int64_t job_id,
                                       const std::shared_ptr<http::StreamWriter>& writer,
                                       const auth::Principal& principal);
  size_t open_streams() const;

 private:
  struct Registry;
  void keep_alive_all();

  events::EventBus& bus_;
  CredentialWatch* const watch_;
  const std::shared_ptr<Registry> registry_;
  uint64_t subscription_ = 0;
  PeriodicThread keep_alive_;  // "sse-keepalive"
};

}  // namespace atelier::api
