// The JSON shapes of the REST API (proto/openapi.yaml), built from C++ types in one place, and
// the helpers handlers use to answer.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/auth/account_db.h"
#include "server/http/router.h"
#include "server/projects/project_db.h"
#include "server/store/store.h"

namespace atelier::api {

// RFC 3339 UTC in whole seconds ("2026-11-26T06:33:19Z"; a fraction is dropped).
std::string format_time(SysTime time);

nlohmann::json user_json(const auth::User& user);
nlohmann::json api_token_json(const auth::ApiTokenInfo& token);
nlohmann::json project_json(const projects::Project& project, projects::Role role);
nlohmann::json member_json(const projects::Member& member);

http::Response json_response(int status, const nlohmann::json& body);

// One page of a newest-first list: {"<key>": [...], "next_before": ...}. A page of `limit` rows
// always names the next one's cursor (that page may then be empty); a shorter page ends the list.
template <typename Row, typename ToJson, typename CursorOf>
http::Response page_response(std::string_view key, const std::vector<Row>& rows, int64_t limit,
                             ToJson to_json, CursorOf cursor_of) {
  nlohmann::json out = nlohmann::json::array();
  for (const Row& row : rows) out.push_back(to_json(row));
  nlohmann::json next = nlohmann::json(nullptr);
  if (!rows.empty() && static_cast<int64_t>(rows.size()) == limit) next = cursor_of(rows.back());
  return json_response(200, {{std::string(key), std::move(out)}, {"next_before", next}});
}
// Answers with error_response(status).
void respond_error(const http::ExchangePtr& ex, const Status& status);

// Runs `txn` on the store's writer thread in one transaction. `txn` returns the response to
// send once committed; an error status rolls everything back and is answered as an error.
// Nothing is answered before the commit, so a 2xx always means durable.
void respond_after_write(const http::ExchangePtr& ex, store::Store& store,
                         std::function<Result<http::Response>(store::Db&)> txn);

// Runs `fn` in one read transaction (on the calling thread: reads are short and never wait
// for the writer) and answers with the response it returns, or with its error.
void respond_after_read(const http::ExchangePtr& ex, store::Store& store,
                        const std::function<Result<http::Response>(store::Db&)>& fn);

}  // namespace atelier::api
