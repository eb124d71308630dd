#include "server/http/middleware.h"

#include <gtest/gtest.h>

namespace atelier::http {
namespace {

Response run(const Router& router, Request req) {
  std::optional<Response> out;
  {
    auto ex = std::make_shared<Exchange>(std::move(req), [&](Response r) { out = std::move(r); });
    router.dispatch(ex);
  }
  return out.value_or(Response{});
}

Request get(const std::string& path) {
  Request r;
  r.method = Method::kGet;
  r.method_text = "GET";
  r.path = r.target = path;
  return r;
}

TEST(MiddlewareTest, RequestIdGeneratedOrAccepted) {
  Router r;
  r.use(request_id_middleware());
  std::string seen;
  ASSERT_TRUE(r.add(Method::kGet, "/x", [&](const ExchangePtr& ex) {
                 seen = ex->request_id;
                 ex->respond(Response::text(200, "ok"));
               }).is_ok());
  auto a = run(r, get("/x"));
  EXPECT_FALSE(seen.empty());
  EXPECT_EQ(*a.headers.get("X-Request-Id"), seen);
  EXPECT_EQ(a.headers.get("X-Content-Type-Options").value_or(""), "nosniff");
  auto b = run(r, get("/x"));
  EXPECT_NE(*b.headers.get("X-Request-Id"), *a.headers.get("X-Request-Id"));

  Request given = get("/x");
  given.headers.set("X-Request-Id", "client-abc.1");
  EXPECT_EQ(*run(r, given).headers.get("X-Request-Id"), "client-abc.1");
  Request hostile = get("/x");
  hostile.headers.set("X-Request-Id", "bad id\r\ninjected");
  EXPECT_NE(*run(r, hostile).headers.get("X-Request-Id"), "bad id\r\ninjected");
}

TEST(MiddlewareTest, RecorderCountsByRouteNotPath) {
  metrics::Registry reg;
  RequestRecorder rec(&reg);
  Router r;
  r.use(rec.middleware());
  ASSERT_TRUE(r.add(Method::kGet, "/items/{id:int}", [](const ExchangePtr& ex) {
                 ex->respond(Response::text(200, "ok"));
               }).is_ok());
  run(r, get("/items/1"));
  run(r, get("/items/2"));
  run(r, get("/missing"));
  std::string text = reg.render();
  EXPECT_NE(text.find("atelier_http_requests_total{route=\"/items/{id:int}\",method=\"GET\","
                      "status=\"200\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("route=\"unmatched\",method=\"GET\",status=\"404\"} 1"), std::string::npos);
  EXPECT_EQ(text.find("/items/1"), std::string::npos);  // raw paths never become labels
  EXPECT_NE(text.find("atelier_http_request_duration_seconds_count{route=\"/items/{id:int}\"} 2"),
            std::string::npos);
}

TEST(MiddlewareTest, SecretsInPathsAreRedactedForLogs) {
  EXPECT_EQ(redact_secrets("/api/v1/invites/atl_i_abcdefSECRET/accept"),
            "/api/v1/invites/atl_i_[redacted]/accept");
  EXPECT_EQ(redact_secrets("/api/v1/projects/12"), "/api/v1/projects/12");
  EXPECT_EQ(redact_secrets("/"), "/");
  EXPECT_EQ(redact_secrets("/x/atl_t_zzzzzzzz"), "/x/atl_t_[redacted]");
}

TEST(MiddlewareTest, CorsOffByDefault) {
  Router r;
  r.use(cors_middleware({}));
  ASSERT_TRUE(r.add(Method::kGet, "/x", [](const ExchangePtr& ex) {
                 ex->respond(Response::text(200, "ok"));
               }).is_ok());
  Request req = get("/x");
  req.headers.set("Origin", "https://evil.example");
  EXPECT_FALSE(run(r, req).headers.has("Access-Control-Allow-Origin"));
}

TEST(MiddlewareTest, CorsAllowsConfiguredOriginsOnly) {
  Router r;
  r.use(cors_middleware({"https://app.example"}));
  ASSERT_TRUE(r.add(Method::kPost, "/x", [](const ExchangePtr& ex) {
                 ex->respond(Response::text(200, "ok"));
               }).is_ok());
  Request pre;
  pre.method = Method::kOptions;
  pre.method_text = "OPTIONS";
  pre.path = pre.target = "/x";
  pre.headers.set("Origin", "https://app.example");
  pre.headers.set("Access-Control-Request-Method", "POST");
  auto p = run(r, pre);
  EXPECT_EQ(p.status, 204);
  EXPECT_EQ(*p.headers.get("Access-Control-Allow-Origin"), "https://app.example");

  Request other = pre;
  other.headers.set("Origin", "https://evil.example");
  auto o = run(r, other);
  EXPECT_FALSE(o.headers.has("Access-Control-Allow-Origin"));

  Request post;
  post.method = Method::kPost;
  post.method_text = "POST";
  post.path = post.target = "/x";
  post.headers.set("Origin", "https://app.example");
  auto resp = run(r, post);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(*resp.headers.get("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(*resp.headers.get("Vary"), "Origin");
}

}  // namespace
}  // namespace atelier::http
