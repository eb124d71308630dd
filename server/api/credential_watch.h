// CredentialWatch: the live connections (WebSockets, SSE streams) by the credential that opened
// them, so that revoking a credential, or every credential of a user, ends them at once rather
// than at their next request. REST needs none of this: every request is authenticated anew.
//
// Rules:
//   * A connection registers for its lifetime (watch() returns an RAII Handle) with its
//     credential id, its user id and a callback that closes it.
//   * It sends only through Handle::if_valid(). The revoked flag is set under the same lock, so
//     once revoke_*() has returned, nothing more goes out on a revoked connection, and no send
//     that began before it is still running.
//   * Revocations in this process call revoke_credential() / revoke_user() right after their
//     transaction commits (revoke_after_commit() and friends register that on the transaction),
//     before the request is answered and before any later transaction publishes its events.
//   * check() asks the Checker (the database) which watched credentials can no longer be used:
//     revoked by another process (`atelier admin reset-password`), expired, or their user
//     disabled; it revokes those. start() runs it every `interval` on its own thread, which
//     also catches a revocation that committed between a connection's authentication and its
//     registration (connections also re-check their credential once after registering).
//   * A handle's on_revoked runs at most once, on the revoking thread, after the flag is set and
//     outside every lock of the watch: it must be quick and must not block (post a close). It
//     may still run while its handle is being destroyed, so it must hold only weak references.
//
// Costs: watch(), a handle's end, and revoke_credential() are O(log n) in the connections
// watched; revoke_user() is O(n) (rare: disabling, password changes); check() is one query for
// all watched credentials, and none when nothing is watched. if_valid() takes one uncontended
// mutex per send.
//
// Threads: every member is thread-safe. A Handle may outlive its CredentialWatch (it then
// unregisters from nothing).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/mutex.h"
#include "common/periodic_thread.h"
#include "common/status.h"
#include "server/store/sqlite.h"

namespace atelier::api {

class CredentialWatch {
 public:
  // Of `credential_ids` (distinct), the ones that can no longer be used.
  using Checker =
      std::function<Result<std::vector<int64_t>>(const std::vector<int64_t>& credential_ids)>;

  struct Entry;  // one registration (internal)
  struct State;  // the registrations (internal)

  class Handle {
   public:
    Handle(std::shared_ptr<Entry> entry, std::weak_ptr<State> state);
    ~Handle();  // unregisters
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    bool revoked() const;
    // Runs `send` under the handle's lock unless the credential has been revoked; returns
    // whether it ran. `send` must be quick and non-blocking (queue the bytes).
    template <typename F>
    bool if_valid(F&& send);

   private:
    const std::shared_ptr<Entry> entry_;
    const std::weak_ptr<State> state_;
  };

  CredentialWatch(Checker checker, std::chrono::milliseconds interval);
  ~CredentialWatch();  // stops the periodic check
  CredentialWatch(const CredentialWatch&) = delete;
  CredentialWatch& operator=(const CredentialWatch&) = delete;

  std::unique_ptr<Handle> watch(int64_t credential_id, int64_t user_id,
                                std::function<void()> on_revoked);

  // Ends every connection of the credential.
  void revoke_credential(int64_t credential_id);
  // Ends every connection of the user, except those of `keep` (the session that changed the
  // password).
  void revoke_user(int64_t user_id, std::optional<int64_t> keep = std::nullopt);

  // Asks the checker about every watched credential and revokes the unusable ones. The
  // checker's error, if any, is returned and nothing is revoked.
  Status check();
  // The periodic check (thread "cred-watch"); stop() is idempotent and also run on destruction.
  void start();
  void stop();

  size_t watched() const;  // connections registered now

 private:
  const Checker checker_;
  const std::shared_ptr<State> state_;
  PeriodicThread thread_;
  bool failing_ = false;  // the periodic thread only: log a failing check once, not every time
};

// Registers, on the transaction running on `db`, the matching revocation for right after its
// COMMIT (nothing when it rolls back). No-ops when `watch` is null (generation-less test apps).
void revoke_after_commit(store::Db& db, CredentialWatch* watch, int64_t credential_id);
void revoke_user_after_commit(store::Db& db, CredentialWatch* watch, int64_t user_id,
                              std::optional<int64_t> keep = std::nullopt);

// ---------------------------------------------------------------------------------------------

struct CredentialWatch::Entry {
  Entry(int64_t credential, int64_t user, std::function<void()> callback)
      : credential_id(credential), user_id(user), on_revoked(std::move(callback)) {}
  const int64_t credential_id;
  const int64_t user_id;
  mutable Mutex mu;
  bool revoked ATELIER_GUARDED_BY(mu) = false;
  std::function<void()> on_revoked ATELIER_GUARDED_BY(mu);
};

template <typename F>
bool CredentialWatch::Handle::if_valid(F&& send) {
  MutexLock lock(entry_->mu);
  if (entry_->revoked) return false;
  std::forward<F>(send)();
  return true;
}

}  // namespace atelier::api
