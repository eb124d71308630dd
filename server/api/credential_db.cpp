#include "server/api/credential_db.h"

#include <string>
#include <string_view>
#include <utility>

#include "server/store/sql_bind.h"

namespace atelier::api::credential_db {

Result<std::vector<int64_t>> unusable_credentials(store::Db& db,
                                                  const std::vector<int64_t>& credential_ids,
                                                  SysTime now) {
  // One statement text whatever the number of ids (a JSON array), so the statement cache holds
  // one compiled copy. The conditions are find_principal's, negated.
  std::string ids = "[";
  for (int64_t id : credential_ids) {
    if (ids.size() > 1) ids += ',';
    ids += std::to_string(id);
  }
  ids += ']';
  ATELIER_ASSIGN_OR_RETURN(
      store::Statement stmt,
      store::prepare_bound(db,
                           "SELECT j.value FROM json_each(?1) j "
                           "LEFT JOIN credentials c ON c.id = j.value "
                           "LEFT JOIN users u ON u.id = c.user_id "
                           "WHERE c.id IS NULL OR c.revoked_at IS NOT NULL "
                           "OR (c.expires_at IS NOT NULL AND c.expires_at <= ?2) "
                           "OR u.disabled <> 0 "
                           "ORDER BY j.value",
                           std::string_view(ids), to_unix_s(now)));
  std::vector<int64_t> out;
  for (;;) {
    ATELIER_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) return out;
    out.push_back(stmt.column_int64(0));
  }
}

Status revoke_other_credentials(store::Db& db, int64_t user_id, int64_t keep, SysTime now) {
  return store::run(db,
                    "UPDATE credentials SET revoked_at = ? "
                    "WHERE user_id = ? AND id <> ? AND revoked_at IS NULL",
                    to_unix_s(now), user_id, keep);
}

CredentialWatch::Checker store_checker(store::Store& store, std::function<SysTime()> now) {
  return [&store,
          now = std::move(now)](const std::vector<int64_t>& ids) -> Result<std::vector<int64_t>> {
    std::vector<int64_t> unusable;
    ATELIER_RETURN_IF_ERROR(store.read([&](store::Db& db) -> Status {
      ATELIER_ASSIGN_OR_RETURN(unusable, unusable_credentials(db, ids, now()));
      return Status::ok();
    }));
    return unusable;
  };
}

}  // namespace atelier::api::credential_db
