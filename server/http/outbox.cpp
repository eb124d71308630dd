#include "server/http/outbox.h"

#include <algorithm>

namespace atelier::http {

bool Outbox::fits(size_t more) const {
  return bytes() + more <= max_bytes_ || (bytes() == 0);
}

bool Outbox::make_room(size_t more) {
  for (auto it = queue_.begin(); !fits(more) && it != queue_.end();) {
    if (it->kind == OutMessage::Kind::kEphemeral) {
      queued_bytes_ -= it->bytes();
      it = queue_.erase(it);
      ++stats_.dropped_ephemeral;
    } else {
      ++it;
    }
  }
  return fits(more);
}

Outbox::Push Outbox::push(OutMessage message) {
  const size_t size = message.bytes();
  if (message.kind == OutMessage::Kind::kEphemeral && !message.coalesce_key.empty()) {
    auto same = std::find_if(queue_.begin(), queue_.end(), [&](const OutMessage& m) {
      return m.kind == OutMessage::Kind::kEphemeral && m.coalesce_key == message.coalesce_key;
    });
    if (same != queue_.end()) {
      const size_t old_size = same->bytes();
      ++stats_.replaced;
      if (bytes() - old_size + size <= max_bytes_) {
        // In its place: the key keeps its turn, and only the newest content is sent.
        queued_bytes_ = queued_bytes_ - old_size + size;
        *same = std::move(message);
        return Push::kReplaced;
      }
      // Superseded either way; the newer one goes through the usual path below.
      queued_bytes_ -= old_size;
      queue_.erase(same);
    }
  }
  if (!make_room(size)) {
    if (message.kind == OutMessage::Kind::kEphemeral) {
      ++stats_.dropped_ephemeral;
      return Push::kDropped;
    }
    return Push::kOverflow;
  }
  queued_bytes_ += size;
  queue_.push_back(std::move(message));
  return Push::kQueued;
}

std::optional<OutMessage> Outbox::start_write() {
  if (in_flight_ || queue_.empty()) return std::nullopt;
  OutMessage next = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= next.bytes();
  in_flight_bytes_ = next.bytes();
  in_flight_ = true;
  return next;
}

void Outbox::clear_queued() {
  queue_.clear();
  queued_bytes_ = 0;
}

void Outbox::finish_write() {
  in_flight_ = false;
  in_flight_bytes_ = 0;
}

}  // namespace atelier::http
