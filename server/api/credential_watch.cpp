#include "server/api/credential_watch.h"

#include <utility>

#include "common/logging.h"

namespace atelier::api {

struct CredentialWatch::State {
  mutable Mutex mu;
  // By credential id. A revoked entry leaves at once, so that check() asks only about live ones.
  std::multimap<int64_t, std::shared_ptr<Entry>> by_credential ATELIER_GUARDED_BY(mu);

  void remove(const Entry* entry) ATELIER_EXCLUDES(mu) {
    MutexLock lock(mu);
    auto [first, last] = by_credential.equal_range(entry->credential_id);
    for (auto it = first; it != last; ++it) {
      if (it->second.get() == entry) {
        by_credential.erase(it);
        return;
      }
    }
  }
};

namespace {

// Sets the flag (waiting for a send under way to finish), then closes, outside every lock.
void revoke_entry(CredentialWatch::Entry& entry) {
  std::function<void()> close;
  {
    MutexLock lock(entry.mu);
    if (entry.revoked) return;
    entry.revoked = true;
    close = std::move(entry.on_revoked);
  }
  if (close) close();
}

void revoke_all(const std::vector<std::shared_ptr<CredentialWatch::Entry>>& entries) {
  for (const auto& e : entries) revoke_entry(*e);
}

}  // namespace

CredentialWatch::Handle::Handle(std::shared_ptr<Entry> entry, std::weak_ptr<State> state)
    : entry_(std::move(entry)), state_(std::move(state)) {}

CredentialWatch::Handle::~Handle() {
  {
    // A revocation racing with the end of the connection has nothing left to close.
    MutexLock lock(entry_->mu);
    entry_->revoked = true;
    entry_->on_revoked = nullptr;
  }
  if (auto state = state_.lock()) state->remove(entry_.get());
}

bool CredentialWatch::Handle::revoked() const {
  MutexLock lock(entry_->mu);
  return entry_->revoked;
}

CredentialWatch::CredentialWatch(Checker checker, std::chrono::milliseconds interval)
    : checker_(std::move(checker)),
      state_(std::make_shared<State>()),
      thread_("cred-watch", interval, [this] {
        Status st = check();
        if (!st.is_ok() && !failing_) {
          log::warn("cannot check the credentials of live connections: {}", st.to_string());
        }
        failing_ = !st.is_ok();
      }) {}

CredentialWatch::~CredentialWatch() {
  stop();
}

void CredentialWatch::start() {
  thread_.start();
}

void CredentialWatch::stop() {
  thread_.stop();
}

std::unique_ptr<CredentialWatch::Handle> CredentialWatch::watch(int64_t credential_id,
                                                                int64_t user_id,
                                                                std::function<void()> on_revoked) {
  auto entry = std::make_shared<Entry>(credential_id, user_id, std::move(on_revoked));
  {
    MutexLock lock(state_->mu);
    state_->by_credential.emplace(credential_id, entry);
  }
  return std::make_unique<Handle>(std::move(entry), state_);
}

void CredentialWatch::revoke_credential(int64_t credential_id) {
  std::vector<std::shared_ptr<Entry>> hit;
  {
    MutexLock lock(state_->mu);
    auto [first, last] = state_->by_credential.equal_range(credential_id);
    for (auto it = first; it != last; ++it) hit.push_back(std::move(it->second));
    state_->by_credential.erase(first, last);
  }
  revoke_all(hit);
}

void CredentialWatch::revoke_user(int64_t user_id, std::optional<int64_t> keep) {
  std::vector<std::shared_ptr<Entry>> hit;
  {
    MutexLock lock(state_->mu);
    for (auto it = state_->by_credential.begin(); it != state_->by_credential.end();) {
      if (it->second->user_id == user_id && it->first != keep) {
        hit.push_back(std::move(it->second));
        it = state_->by_credential.erase(it);
      } else {
        ++it;
      }
    }
  }
  revoke_all(hit);
}

Status CredentialWatch::check() {
  std::vector<int64_t> ids;
  {
    MutexLock lock(state_->mu);
    for (const auto& [id, entry] : state_->by_credential) {
      if (ids.empty() || ids.back() != id) ids.push_back(id);  // sorted: the map's order
    }
  }
  if (ids.empty()) return Status::ok();
  ATELIER_ASSIGN_OR_RETURN(const std::vector<int64_t> unusable, checker_(ids));
  for (int64_t id : unusable) revoke_credential(id);
  return Status::ok();
}

size_t CredentialWatch::watched() const {
  MutexLock lock(state_->mu);
  return state_->by_credential.size();
}

void revoke_after_commit(store::Db& db, CredentialWatch* watch, int64_t credential_id) {
  if (watch) db.after_commit([watch, credential_id] { watch->revoke_credential(credential_id); });
}

void revoke_user_after_commit(store::Db& db, CredentialWatch* watch, int64_t user_id,
                              std::optional<int64_t> keep) {
  if (watch) db.after_commit([watch, user_id, keep] { watch->revoke_user(user_id, keep); });
}

}  // namespace atelier::api
