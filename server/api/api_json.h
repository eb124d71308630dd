// The JSON shapes of the REST API (proto/openapi.yaml), built from C++ types in one place, and
// the helpers handlers use to answer.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

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
