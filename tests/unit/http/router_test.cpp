#include "server/http/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace atelier::http {
namespace {

// Dispatches a request synchronously and returns the response the router produced.
Response run(const Router& router, Method method, const std::string& target,
             std::string method_text = {}) {
  Request req;
  req.method = method;
  req.method_text = method_text.empty() ? std::string(method_name(method)) : method_text;
  req.target = target;
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  std::optional<Response> out;
  {
    auto ex = std::make_shared<Exchange>(std::move(req), [&](Response r) { out = std::move(r); });
    router.dispatch(ex);
  }
  EXPECT_TRUE(out.has_value());
  return out.value_or(Response{});
}

Handler reply(std::string body) {
  return [body](const ExchangePtr& ex) { ex->respond(Response::text(200, body)); };
}

TEST(RouterTest, LiteralAndTypedParams) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/api/v1/jobs/{id:int}", [](const ExchangePtr& ex) {
                 ex->respond(Response::text(200, std::to_string(ex->params().get_int("id") * 2)));
               }).is_ok());
  ASSERT_TRUE(r.add(Method::kGet, "/api/v1/users/{name}", [](const ExchangePtr& ex) {
                 ex->respond(Response::text(200, std::string(ex->params().get("name"))));
               }).is_ok());
  EXPECT_EQ(run(r, Method::kGet, "/api/v1/jobs/21").body, "42");
  EXPECT_EQ(run(r, Method::kGet, "/api/v1/users/ada%20l").body, "ada l");
  EXPECT_EQ(run(r, Method::kGet, "/api/v1/users/a%2Fb").body, "a/b");  // encoded slash stays
}

TEST(RouterTest, TypedParamMismatchIs400NamingIt) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/jobs/{id:int}", reply("x")).is_ok());
  auto resp = run(r, Method::kGet, "/jobs/abc");
  EXPECT_EQ(resp.status, 400);
  auto j = nlohmann::json::parse(resp.body);
  EXPECT_EQ(j["error"]["field"], "id");
  EXPECT_EQ(run(r, Method::kGet, "/jobs/99999999999999999999").status, 400);  // overflow
}

// One id, one spelling: "/jobs/01" is not job 1 but a bad path, as are signs and overflow.
TEST(RouterTest, IntParamsMustBeCanonicalIds) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/jobs/{id:int}", [](const ExchangePtr& ex) {
                 ex->respond(Response::text(200, std::to_string(ex->params().get_int("id"))));
               }).is_ok());
  EXPECT_EQ(run(r, Method::kGet, "/jobs/0").body, "0");
  EXPECT_EQ(run(r, Method::kGet, "/jobs/10").body, "10");
  EXPECT_EQ(run(r, Method::kGet, "/jobs/9223372036854775807").body, "9223372036854775807");
  for (const char* path : {"/jobs/01", "/jobs/00", "/jobs/007", "/jobs/-1", "/jobs/-0", "/jobs/+1",
                           "/jobs/%2B1", "/jobs/%301", "/jobs/1%20", "/jobs/%201", "/jobs/1.0",
                           "/jobs/0x1", "/jobs/9223372036854775808"}) {
    SCOPED_TRACE(path);
    auto resp = run(r, Method::kGet, path);
    EXPECT_EQ(resp.status, 400);
    auto j = nlohmann::json::parse(resp.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << resp.body;
    EXPECT_EQ(j["error"]["code"], "invalid_parameter");
    EXPECT_EQ(j["error"]["field"], "id");
  }
}

TEST(CanonicalInt, OneSpellingPerNumber) {
  EXPECT_EQ(parse_canonical_int64("0"), 0);
  EXPECT_EQ(parse_canonical_int64("42"), 42);
  EXPECT_EQ(parse_canonical_int64("-42"), -42);
  EXPECT_EQ(parse_canonical_int64("-9223372036854775808"), INT64_MIN);
  for (const char* bad : {"", "-", "-0", "00", "042", "-042", "+1", " 1", "1 ", "1e3", "0x10",
                          "9223372036854775808", "--1"}) {
    EXPECT_FALSE(parse_canonical_int64(bad).has_value()) << bad;
  }
}

TEST(RouterTest, MostLiteralSegmentsWin) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/jobs/{id}", reply("param")).is_ok());
  ASSERT_TRUE(r.add(Method::kGet, "/jobs/latest", reply("literal")).is_ok());
  EXPECT_EQ(run(r, Method::kGet, "/jobs/latest").body, "literal");
  EXPECT_EQ(run(r, Method::kGet, "/jobs/7").body, "param");
}

TEST(RouterTest, NotFoundAndMethodNotAllowed) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/items", reply("list")).is_ok());
  ASSERT_TRUE(r.add(Method::kPost, "/items", reply("made")).is_ok());
  auto nf = run(r, Method::kGet, "/nothing");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nlohmann::json::parse(nf.body)["error"]["code"], "not_found");
  auto na = run(r, Method::kDelete, "/items");
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(*na.headers.get("Allow"), "GET, POST, HEAD, OPTIONS");
  EXPECT_EQ(run(r, Method::kOther, "/items", "BREW").status, 405);
  EXPECT_EQ(run(r, Method::kGet, "/items/").status, 404);  // no silent normalisation
  EXPECT_EQ(run(r, Method::kGet, "//items").status, 404);
}

TEST(RouterTest, HeadUsesGetAndOptionsListsMethods) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/x", reply("body")).is_ok());
  EXPECT_EQ(run(r, Method::kHead, "/x").status, 200);
  auto opt = run(r, Method::kOptions, "/x");
  EXPECT_EQ(opt.status, 204);
  EXPECT_EQ(*opt.headers.get("Allow"), "GET, HEAD, OPTIONS");
}

TEST(RouterTest, MalformedEscapeIs400) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/x/{p}", reply("ok")).is_ok());
  EXPECT_EQ(run(r, Method::kGet, "/x/%zz").status, 400);
}

TEST(RouterTest, RejectsBadPatternsAndDuplicates) {
  Router r;
  EXPECT_FALSE(r.add(Method::kGet, "nope", reply("")).is_ok());
  EXPECT_FALSE(r.add(Method::kGet, "/a/{id:float}", reply("")).is_ok());
  EXPECT_FALSE(r.add(Method::kGet, "/a//b", reply("")).is_ok());
  EXPECT_TRUE(r.add(Method::kGet, "/a", reply("")).is_ok());
  EXPECT_EQ(r.add(Method::kGet, "/a", reply("")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(r.routes().size(), 1u);
}

TEST(RouterTest, FallbackOnlyForUnmatchedGetAndHead) {
  Router r;
  r.set_fallback(reply("static"));
  ASSERT_TRUE(r.add(Method::kPost, "/form", reply("posted")).is_ok());
  EXPECT_EQ(run(r, Method::kGet, "/anything/else").body, "static");
  EXPECT_EQ(run(r, Method::kHead, "/index.html").body, "static");
  EXPECT_EQ(run(r, Method::kPost, "/anything").status, 404);
  EXPECT_EQ(run(r, Method::kGet, "/form").status, 405);  // known path: not the fallback
}

TEST(RouterTest, MiddlewareRunsInOrderAndCanShortCircuit) {
  Router r;
  std::vector<std::string> order;
  r.use([&](const ExchangePtr& ex, const Next& next) {
    order.push_back("a");
    ex->on_response([&](Exchange&, Response& resp) {
      order.push_back("a-hook");
      resp.headers.set("X-A", "1");
    });
    next();
  });
  r.use([&](const ExchangePtr& ex, const Next& next) {
    order.push_back("b:" + ex->route());
    if (ex->request().query == "deny") return ex->respond(Response::error(401, "no", "no"));
    ex->on_response([&](Exchange&, Response&) { order.push_back("b-hook"); });
    next();
  });
  ASSERT_TRUE(r.add(Method::kGet, "/p/{id:int}", [&](const ExchangePtr& ex) {
                 order.push_back("handler");
                 ex->respond(Response::text(200, "ok"));
               }).is_ok());
  auto ok = run(r, Method::kGet, "/p/1");
  EXPECT_EQ(*ok.headers.get("X-A"), "1");
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b:/p/{id:int}", "handler", "b-hook", "a-hook"}));
  order.clear();
  auto denied = run(r, Method::kGet, "/p/1?deny");
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b:/p/{id:int}", "a-hook"}));
}

TEST(RouterTest, ThrowingHandlerGives500) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/boom", [](const ExchangePtr&) {
                 throw std::runtime_error("kaboom");
               }).is_ok());
  auto resp = run(r, Method::kGet, "/boom");
  EXPECT_EQ(resp.status, 500);
  EXPECT_EQ(resp.body.find("kaboom"), std::string::npos);  // no internals leak to clients
}

TEST(RouterTest, DroppedExchangeStillAnswers500) {
  Router r;
  ASSERT_TRUE(r.add(Method::kGet, "/lost", [](const ExchangePtr&) {}).is_ok());
  EXPECT_EQ(run(r, Method::kGet, "/lost").status, 500);
}

TEST(RouterTest, AsyncAnswerFromAnotherThreadOnlyOnce) {
  Router r;
  std::thread worker;
  ASSERT_TRUE(r.add(Method::kGet, "/later", [&](const ExchangePtr& ex) {
                 worker = std::thread([ex] {
                   ex->respond(Response::text(202, "first"));
                   ex->respond(Response::text(500, "second"));
                 });
               }).is_ok());
  std::vector<Response> got;
  std::mutex mu;
  {
    Request req;
    req.method = Method::kGet;
    req.path = req.target = "/later";
    auto ex = std::make_shared<Exchange>(std::move(req), [&](Response resp) {
      std::lock_guard lock(mu);
      got.push_back(std::move(resp));
    });
    r.dispatch(ex);
  }
  worker.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].status, 202);
}

}  // namespace
}  // namespace atelier::http
