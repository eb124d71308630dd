#include "server/api/api_json.h"

#include <ctime>
#include <memory>

#include "server/api/errors.h"

namespace atelier::api {

std::string format_time(SysTime time) {
  std::time_t t = static_cast<std::time_t>(to_unix_s(time));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

nlohmann::json user_json(const auth::User& user) {
  return {{"id", user.id},
          {"username", user.username},
          {"is_admin", user.is_admin},
          {"disabled", user.disabled},
          {"created_at", format_time(user.created_at)}};
}

nlohmann::json api_token_json(const auth::ApiTokenInfo& token) {
  nlohmann::json j = {{"id", token.id},
                      {"name", token.name},
                      {"scope", auth::scope_name(token.scope)},
                      {"created_at", format_time(token.created_at)},
                      {"expires_at", nullptr},
                      {"last_used_at", nullptr}};
  if (token.expires_at) j["expires_at"] = format_time(*token.expires_at);
  if (token.last_used_at) j["last_used_at"] = format_time(*token.last_used_at);
  return j;
}

nlohmann::json project_json(const projects::Project& p, projects::Role role) {
  return {{"id", p.id},
          {"name", p.name},
          {"description", p.description},
          {"created_by", p.created_by},
          {"created_at", format_time(p.created_at)},
          {"updated_at", format_time(p.updated_at)},
          {"role", projects::role_name(role)}};
}

nlohmann::json member_json(const projects::Member& m) {
  return {{"user_id", m.user_id},
          {"username", m.username},
          {"role", projects::role_name(m.role)},
          {"added_at", format_time(m.added_at)}};
}

http::Response json_response(int status, const nlohmann::json& body) {
  return http::Response::json_text(
      status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void respond_error(const http::ExchangePtr& ex, const Status& status) {
  ex->respond(error_response(status));
}

void respond_after_write(const http::ExchangePtr& ex, store::Store& store,
                         std::function<Result<http::Response>(store::Db&)> txn) {
  auto response = std::make_shared<http::Response>();
  store.submit_write(
      [response, txn = std::move(txn)](store::Db& db) -> Status {
        auto r = txn(db);
        if (!r.is_ok()) return r.status();
        *response = std::move(*r);
        return Status::ok();
      },
      [ex, response](Status st) {
        if (st.is_ok()) {
          ex->respond(std::move(*response));
        } else {
          ex->respond(error_response(st));
        }
      });
}

void respond_after_read(const http::ExchangePtr& ex, store::Store& store,
                        const std::function<Result<http::Response>(store::Db&)>& fn) {
  http::Response out;
  Status st = store.read([&](store::Db& db) -> Status {
    auto r = fn(db);
    if (!r.is_ok()) return r.status();
    out = std::move(*r);
    return Status::ok();
  });
  if (!st.is_ok()) return ex->respond(error_response(st));
  ex->respond(std::move(out));
}

}  // namespace atelier::api
