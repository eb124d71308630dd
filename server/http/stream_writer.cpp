#include "server/http/stream_writer.h"

#include <algorithm>
#include <exception>

#include "common/logging.h"
#include "server/http/session.h"

namespace atelier::http {

SessionStreamWriter::SessionStreamWriter(std::weak_ptr<Session> session, size_t byte_cap)
    : session_(std::move(session)), byte_cap_(byte_cap) {}

bool SessionStreamWriter::write(std::string bytes) {
  bool wake_session = false;
  bool accepted = false;
  {
    MutexLock lock(mu_);
    if (!open_) return false;
    if (bytes.empty()) return true;
    const size_t queued = pending_bytes_ + in_flight_bytes_;
    if (queued > byte_cap_ || bytes.size() > byte_cap_ - queued) {
      // The client is too far behind: cut it off and free what waits for it now, rather than
      // when the connection is finally torn down.
      open_ = false;
      cut_off_ = true;
      pending_.clear();
      pending_bytes_ = 0;
      wake_session = true;
    } else {
      // A wake is needed only when the queue goes from empty to not: otherwise one is already
      // on its way, or the write in flight will take these bytes when it completes.
      wake_session = pending_.empty();
      pending_bytes_ += bytes.size();
      pending_.push_back(std::move(bytes));
      accepted = true;
    }
  }
  if (wake_session) wake();
  return accepted;
}

void SessionStreamWriter::close() {
  {
    MutexLock lock(mu_);
    if (!open_) return;
    open_ = false;
    closing_ = true;
  }
  wake();
}

bool SessionStreamWriter::is_open() const {
  MutexLock lock(mu_);
  return open_;
}

void SessionStreamWriter::on_close(std::function<void()> callback) {
  if (!callback) return;
  {
    MutexLock lock(mu_);
    if (!ended_) {
      callbacks_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

SessionStreamWriter::Taken SessionStreamWriter::take(std::vector<std::string>& out) {
  MutexLock lock(mu_);
  Taken t;
  t.closing = closing_;
  if (cut_off_ || ended_) return t;
  t.bytes = pending_bytes_;
  for (auto& s : pending_) out.push_back(std::move(s));
  pending_.clear();
  in_flight_bytes_ += pending_bytes_;
  pending_bytes_ = 0;
  return t;
}

bool SessionStreamWriter::cut_off() const {
  MutexLock lock(mu_);
  return cut_off_;
}

void SessionStreamWriter::written(size_t bytes) {
  MutexLock lock(mu_);
  in_flight_bytes_ -= std::min(bytes, in_flight_bytes_);
}

void SessionStreamWriter::stop_accepting() {
  MutexLock lock(mu_);
  if (!open_) return;
  open_ = false;
  closing_ = true;
}

void SessionStreamWriter::end() {
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(mu_);
    if (ended_) return;
    ended_ = true;
    open_ = false;
    pending_.clear();
    pending_bytes_ = 0;
    callbacks.swap(callbacks_);
  }
  // Outside the lock: a callback may well call back into this writer.
  for (auto& cb : callbacks) {
    try {
      cb();
    } catch (const std::exception& e) {
      log::error("stream on_close callback threw: {}", e.what());
    } catch (...) {
      log::error("stream on_close callback threw");
    }
  }
}

void SessionStreamWriter::wake() const {
  if (auto session = session_.lock()) session->wake_stream();
}

}  // namespace atelier::http
