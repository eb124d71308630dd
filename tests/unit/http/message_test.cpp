#include "server/http/message.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace atelier::http {
namespace {

TEST(MessageTest, HeadersAreCaseInsensitiveAndOrdered) {
  Headers h;
  h.add("Set-Cookie", "a=1");
  h.add("set-cookie", "b=2");
  h.set("Content-Type", "text/plain");
  EXPECT_EQ(*h.get("SET-COOKIE"), "a=1");
  EXPECT_EQ(h.fields().size(), 3u);
  h.set("content-type", "application/json");
  EXPECT_EQ(*h.get("Content-Type"), "application/json");
  EXPECT_EQ(h.fields().size(), 3u);
  h.remove("Set-Cookie");
  EXPECT_FALSE(h.has("set-cookie"));
}

TEST(MessageTest, PercentDecode) {
  EXPECT_EQ(*percent_decode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(*percent_decode("a+b"), "a+b");
  EXPECT_EQ(*percent_decode("a+b", true), "a b");
  EXPECT_EQ(*percent_decode("%2e%2E"), "..");
  EXPECT_EQ(percent_decode("%00").value(), std::string(1, '\0'));
  EXPECT_FALSE(percent_decode("%").has_value());
  EXPECT_FALSE(percent_decode("%4").has_value());
  EXPECT_FALSE(percent_decode("ab%zz").has_value());
}

TEST(MessageTest, QueryParams) {
  Request r;
  r.query = "limit=10&q=hello+world&empty=&x=%41%42";
  EXPECT_EQ(r.query_param("limit"), "10");
  EXPECT_EQ(r.query_param("q"), "hello world");
  EXPECT_EQ(r.query_param("empty"), "");
  EXPECT_EQ(r.query_param("x"), "AB");
  EXPECT_FALSE(r.query_param("missing").has_value());
}

TEST(MessageTest, ErrorBodyShape) {
  auto r = Response::error(400, "invalid_argument", "port is bad", "port");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(*r.headers.get("Content-Type"), "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"]["code"], "invalid_argument");
  EXPECT_EQ(j["error"]["message"], "port is bad");
  EXPECT_EQ(j["error"]["field"], "port");
  auto no_field = nlohmann::json::parse(Response::error(404, "not_found", "x").body);
  EXPECT_FALSE(no_field["error"].contains("field"));
}

TEST(MessageTest, ErrorBodyToleratesInvalidUtf8) {
  auto r = Response::error(400, "bad", std::string("bad \xff\xfe bytes"));
  EXPECT_NO_THROW(nlohmann::json::parse(r.body));
}

TEST(MessageTest, MethodsAndReasons) {
  EXPECT_EQ(parse_method("GET"), Method::kGet);
  EXPECT_EQ(parse_method("get"), Method::kOther);  // methods are case-sensitive
  EXPECT_EQ(method_name(Method::kDelete), "DELETE");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
}

}  // namespace
}  // namespace atelier::http
