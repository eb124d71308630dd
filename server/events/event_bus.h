// EventBus: the one path from a change to everyone who reacts to it. Committed domain events
// (event_log.h publishes them after their commit) and ephemeral job progress go through it to
// every subscriber: the live rooms, SSE streams, and later webhooks and remote workers.
//
// Rules:
//   * publish(CommittedEvent) is called on the store's writer thread, in commit order (hence in
//     seq order within a project), never for a rolled-back change. publish(JobProgress) is called
//     on worker threads. Handlers run on the publishing thread, outside any lock of the bus:
//     they must be quick and must not block (post real work elsewhere).
//   * A handler that throws is logged and skipped; the others still run.
//   * unsubscribe() may race with a publish already under way, which can still call the
//     handler once: handlers hold what they use by shared_ptr, or outlive the publishers.
//   * The preview demand is the one question workers ask: "does anyone watch this job's
//     previews now?" (the rooms answer, with their throttle). Set it before workers start.
//
// Costs: a publish copies one shared_ptr to the subscriber list; subscribe/unsubscribe copy the
// list (they are rare: a room hub, one per SSE stream).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "server/events/domain_event.h"

namespace atelier::events {

class EventBus {
 public:
  struct Handlers {
    std::function<void(const CommittedEvent&)> committed;  // may be empty
    std::function<void(const JobProgress&)> progress;      // may be empty
  };
  using PreviewDemand = std::function<bool(const jobs::Job&)>;

  uint64_t subscribe(Handlers handlers) ATELIER_EXCLUDES(mu_);
  void unsubscribe(uint64_t subscription) ATELIER_EXCLUDES(mu_);

  void publish(const CommittedEvent& event) const ATELIER_EXCLUDES(mu_);
  void publish(const JobProgress& progress) const ATELIER_EXCLUDES(mu_);

  void set_preview_demand(PreviewDemand demand) ATELIER_EXCLUDES(mu_);
  bool wants_preview(const jobs::Job& job) const ATELIER_EXCLUDES(mu_);

  size_t subscribers() const ATELIER_EXCLUDES(mu_);

 private:
  using List = std::vector<std::pair<uint64_t, std::shared_ptr<const Handlers>>>;
  std::shared_ptr<const List> snapshot() const ATELIER_EXCLUDES(mu_);

  mutable Mutex mu_;
  std::shared_ptr<const List> subscribers_ ATELIER_GUARDED_BY(mu_) = std::make_shared<List>();
  uint64_t next_id_ ATELIER_GUARDED_BY(mu_) = 1;
  std::shared_ptr<const PreviewDemand> demand_ ATELIER_GUARDED_BY(mu_);
};

}  // namespace atelier::events
