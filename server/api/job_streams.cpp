#include "server/api/job_streams.h"

#include <utility>
#include <vector>

#include "server/api/job_json.h"
#include "server/jobs/job_service.h"

namespace atelier::api {

bool JobEventStream::send(const jobs::Job& job) {
  MutexLock lock(mu_);
  if (finished_) return false;
  std::string event =
      jobs::is_terminal(job.state) ? std::string(jobs::state_name(job.state)) : "progress";
  std::string frame = "event: " + event + "\nid: " + std::to_string(job.id) + "-" +
                      std::to_string(++sent_) + "\ndata: " + job_json(job).dump() + "\n\n";
  if (!write_locked(std::move(frame))) return false;
  if (jobs::is_terminal(job.state)) {
    finished_ = true;
    writer_->close();
  }
  return !finished_;
}

void JobEventStream::keep_alive() {
  MutexLock lock(mu_);
  if (!finished_) write_locked(": keep-alive\n\n");
}

bool JobEventStream::write_locked(std::string bytes) {
  if (!watch_) {
    writer_->write(std::move(bytes));
    return true;
  }
  if (watch_->if_valid([&] { writer_->write(std::move(bytes)); })) return true;
  finished_ = true;  // the watch has closed the writer
  return false;
}

// The open streams by job id; shared with the streams' on_close callbacks (by weak_ptr).
struct JobStreams::Registry {
  mutable Mutex mu;
  std::multimap<int64_t, std::shared_ptr<JobEventStream>> by_job ATELIER_GUARDED_BY(mu);

  std::vector<std::shared_ptr<JobEventStream>> of(int64_t job_id) const {
    MutexLock lock(mu);
    std::vector<std::shared_ptr<JobEventStream>> out;
    auto [first, last] = by_job.equal_range(job_id);
    for (auto it = first; it != last; ++it) out.push_back(it->second);
    return out;
  }
  void remove(int64_t job_id, const JobEventStream* stream) {
    std::shared_ptr<JobEventStream> gone;  // ends (and leaves the watch) after the lock
    MutexLock lock(mu);
    auto [first, last] = by_job.equal_range(job_id);
    for (auto it = first; it != last; ++it) {
      if (it->second.get() == stream) {
        gone = std::move(it->second);
        by_job.erase(it);
        return;
      }
    }
  }
};

JobStreams::JobStreams(events::EventBus& bus, const jobs::JobService& jobs,
                       std::chrono::milliseconds keep_alive, CredentialWatch* watch)
    : bus_(bus),
      watch_(watch),
      registry_(std::make_shared<Registry>()),
      keep_alive_("sse-keepalive", keep_alive, [this] { keep_alive_all(); }) {
  std::weak_ptr<Registry> weak = registry_;
  const jobs::JobService* service = &jobs;
  subscription_ = bus_.subscribe({.committed =
                                      [weak, service](const events::CommittedEvent& e) {
                                        const auto* changed =
                                            std::get_if<events::JobChanged>(&e.event);
                                        if (!changed) return;
                                        auto registry = weak.lock();
                                        if (!registry) return;
                                        auto streams = registry->of(changed->job.id);
                                        if (streams.empty()) return;
                                        jobs::Job job = changed->job;
                                        service->decorate(job);
                                        for (const auto& s : streams) {
                                          if (!s->send(job)) registry->remove(job.id, s.get());
                                        }
                                      },
                                  .progress =
                                      [weak](const events::JobProgress& p) {
                                        auto registry = weak.lock();
                                        if (!registry) return;
                                        for (const auto& s : registry->of(p.job->id))
                                          s->send(*p.job);
                                      }});
  keep_alive_.start();
}

JobStreams::~JobStreams() {
  bus_.unsubscribe(subscription_);
  keep_alive_.stop();
}

std::shared_ptr<JobEventStream> JobStreams::open(int64_t job_id,
                                                 const std::shared_ptr<http::StreamWriter>& writer,
                                                 const auth::Principal& principal) {
  std::unique_ptr<CredentialWatch::Handle> watched;
  if (watch_) {
    watched = watch_->watch(principal.credential_id, principal.user.id,
                            [weak = std::weak_ptr<http::StreamWriter>(writer)] {
                              if (auto w = weak.lock()) w->close();
                            });
  }
  auto stream = std::make_shared<JobEventStream>(writer, std::move(watched));
  {
    MutexLock lock(registry_->mu);
    registry_->by_job.emplace(job_id, stream);
  }
  std::weak_ptr<Registry> weak = registry_;
  writer->on_close([weak, job_id, raw = stream.get()] {
    if (auto registry = weak.lock()) registry->remove(job_id, raw);
  });
  return stream;
}

size_t JobStreams::open_streams() const {
  MutexLock lock(registry_->mu);
  return registry_->by_job.size();
}

void JobStreams::keep_alive_all() {
  std::vector<std::shared_ptr<JobEventStream>> all;
  {
    MutexLock lock(registry_->mu);
    for (const auto& [id, s] : registry_->by_job) all.push_back(s);
  }
  for (const auto& s : all) s->keep_alive();
}

}  // namespace atelier::api
