#include "server/events/event_bus.h"

#include <exception>

#include "common/logging.h"

namespace atelier::events {

uint64_t EventBus::subscribe(Handlers handlers) {
  MutexLock lock(mu_);
  auto next = std::make_shared<List>(*subscribers_);
  const uint64_t id = next_id_++;
  next->emplace_back(id, std::make_shared<const Handlers>(std::move(handlers)));
  subscribers_ = std::move(next);
  return id;
}

void EventBus::unsubscribe(uint64_t subscription) {
  MutexLock lock(mu_);
  auto next = std::make_shared<List>(*subscribers_);
  std::erase_if(*next, [&](const auto& entry) { return entry.first == subscription; });
  subscribers_ = std::move(next);
}

std::shared_ptr<const EventBus::List> EventBus::snapshot() const {
  MutexLock lock(mu_);
  return subscribers_;
}

void EventBus::publish(const CommittedEvent& event) const {
  // Held for the loop: a range-for over `*snapshot()` would let the list go with the temporary.
  const std::shared_ptr<const List> subscribers = snapshot();
  for (const auto& [id, handlers] : *subscribers) {
    if (!handlers->committed) continue;
    try {
      handlers->committed(event);
    } catch (const std::exception& e) {
      log::warn("event subscriber {} threw on {} of project {}: {}", id, event_type(event.event),
                event.project_id, e.what());
    }
  }
}

void EventBus::publish(const JobProgress& progress) const {
  const std::shared_ptr<const List> subscribers = snapshot();
  for (const auto& [id, handlers] : *subscribers) {
    if (!handlers->progress) continue;
    try {
      handlers->progress(progress);
    } catch (const std::exception& e) {
      log::warn("event subscriber {} threw on progress: {}", id, e.what());
    }
  }
}

void EventBus::set_preview_demand(PreviewDemand demand) {
  MutexLock lock(mu_);
  demand_ = demand ? std::make_shared<const PreviewDemand>(std::move(demand)) : nullptr;
}

bool EventBus::wants_preview(const jobs::Job& job) const {
  std::shared_ptr<const PreviewDemand> demand;
  {
    MutexLock lock(mu_);
    demand = demand_;
  }
  return demand && (*demand)(job);
}

size_t EventBus::subscribers() const {
  return snapshot()->size();
}

}  // namespace atelier::events
