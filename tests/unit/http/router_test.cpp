#include "server/http/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

TEST(RouterTest, BodyLimitIsTheMatchedRoutesOwn) {
  Router r;
  r.set_fallback(reply("static"));
  const uint64_t k4MiB = uint64_t{4} << 20;
  ASSERT_TRUE(
      r.add(Method::kPost, "/p/{id:int}/uploads", reply("upload"), {.max_body_bytes = k4MiB})
          .is_ok());
  ASSERT_TRUE(r.add(Method::kPost, "/p/{id:int}/jobs", reply("job")).is_ok());
  ASSERT_TRUE(
      r.add(Method::kGet, "/p/{id:int}/uploads", reply("list"), {.max_body_bytes = 9}).is_ok());
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/1/uploads"), k4MiB);
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/1/uploads?filename=a.png&alpha=keep"), k4MiB);
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/%31/upl%6Fads"), k4MiB);  // decoded as dispatch does
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/1/jobs"), std::nullopt);  // no limit of its own
  EXPECT_EQ(r.body_limit(Method::kHead, "/p/1/uploads"), 9u);         // HEAD is served by GET
  // No route runs: the server's default applies.
  EXPECT_EQ(r.body_limit(Method::kPut, "/p/1/uploads"), std::nullopt);     // 405
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/01/uploads"), std::nullopt);   // 400: not an id
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/%zz/uploads"), std::nullopt);  // 400: bad escape
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/1/uploads/"), std::nullopt);   // 404
  EXPECT_EQ(r.body_limit(Method::kPost, "/p/1/uploads/x"), std::nullopt);
  EXPECT_EQ(r.body_limit(Method::kGet, "/elsewhere"), std::nullopt);  // the fallback
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "/p";
  EXPECT_EQ(r.body_limit(Method::kPost, deep), std::nullopt);
}

// body_limit() decides as dispatch() does, whichever route that is: each route's limit is its
// index, and every handler answers with its index.
TEST(RouterTest, BodyLimitAgreesWithDispatch) {
  Router r;
  const std::vector<std::pair<Method, std::string>> routes = {
      {Method::kPost, "/files/{name}"},        {Method::kPost, "/files/big"},
      {Method::kPost, "/files/{id:int}/x"},    {Method::kPost, "/files/{name}/x"},
      {Method::kPut, "/files/{name}"},         {Method::kGet, "/files/{name}"},
      {Method::kPost, "/a/{b}/{c:int}/d/{e}"}, {Method::kPost, "/"},
  };
  for (size_t i = 0; i < routes.size(); ++i) {
    ASSERT_TRUE(
        r.add(routes[i].first, routes[i].second, reply(std::to_string(i)), {.max_body_bytes = i})
            .is_ok());
  }
  for (const auto& [method, target] : std::vector<std::pair<Method, std::string>>{
           {Method::kPost, "/files/big"},
           {Method::kPost, "/files/b%69g"},
           {Method::kPost, "/files/big?x=1"},
           {Method::kPost, "/files/small"},
           {Method::kPost, "/files/%2F"},
           {Method::kPost, "/files/"},
           {Method::kPost, "/files/7/x"},
           {Method::kPost, "/files/07/x"},
           {Method::kPost, "/files/%37/x"},
           {Method::kPost, "/files/seven/x"},
           {Method::kPost, "/files/-7/x"},
           {Method::kPut, "/files/big"},
           {Method::kHead, "/files/big"},
           {Method::kDelete, "/files/big"},
           {Method::kPost, "/a/b/1/d/e"},
           {Method::kPost, "/a/b/1/d/%"},
           {Method::kPost, "/a/b/99999999999999999999/d/e"},
           {Method::kPost, "/"},
           {Method::kPost, ""},
           {Method::kPost, "//"},
           {Method::kPost, "/files//x"},
       }) {
    SCOPED_TRACE(target);
    Response resp = run(r, method, target);
    std::optional<uint64_t> expected;
    if (resp.status == 200) expected = std::stoull(resp.body);
    EXPECT_EQ(r.body_limit(method, target), expected) << resp.status << " " << resp.body;
  }
}

TEST(RouterTest, PatternsHaveAtMostMaxSegments) {
  Router r;
  std::string pattern;
  for (size_t i = 0; i < Router::kMaxSegments; ++i) pattern += "/s";
  EXPECT_TRUE(r.add(Method::kPost, pattern, reply(""), {.max_body_bytes = 5}).is_ok());
  EXPECT_EQ(r.body_limit(Method::kPost, pattern), 5u);
  EXPECT_FALSE(r.add(Method::kPost, pattern + "/s", reply("")).is_ok());
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
