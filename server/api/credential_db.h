// The two credential queries that revocation of live connections needs, over a store::Db (the
// caller picks the transaction, as in server/auth/account_db.h, whose conventions they follow:
// times are SysTime, stored as Unix seconds).
#pragma once

#include <cstdint>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/api/credential_watch.h"
#include "server/store/sqlite.h"
#include "server/store/store.h"

namespace atelier::api::credential_db {

// Of `credential_ids`, those that can no longer be used at `now`: revoked, expired, gone, or of
// a disabled user (what auth::account_db::find_principal refuses). One query, in id order.
Result<std::vector<int64_t>> unusable_credentials(store::Db& db,
                                                  const std::vector<int64_t>& credential_ids,
                                                  SysTime now);

// Revokes every credential of `user_id` but `keep` (a password change keeps the session or
// token that made it). Nothing to revoke is fine.
Status revoke_other_credentials(store::Db& db, int64_t user_id, int64_t keep, SysTime now);

// The CredentialWatch checker for the app: unusable_credentials() in a read of `store`.
// `store` and `now` must outlive the checker.
CredentialWatch::Checker store_checker(store::Store& store, std::function<SysTime()> now);

}  // namespace atelier::api::credential_db
