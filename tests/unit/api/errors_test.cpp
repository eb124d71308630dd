#include "server/api/errors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api/json_body.h"

namespace atelier::api {
namespace {

nlohmann::json body_of(const http::Response& r) {
  return nlohmann::json::parse(r.body);
}

TEST(ErrorsTest, MapsEveryStatusCode) {
  struct Case {
    StatusCode code;
    int http_status;
    const char* error_code;
  };
  const Case cases[] = {
      {StatusCode::kInvalidArgument, 400, "invalid_argument"},
      {StatusCode::kNotFound, 404, "not_found"},
      {StatusCode::kAlreadyExists, 409, "conflict"},
      {StatusCode::kPermissionDenied, 403, "forbidden"},
      {StatusCode::kUnauthenticated, 401, "unauthenticated"},
      {StatusCode::kFailedPrecondition, 409, "failed_precondition"},
      {StatusCode::kResourceExhausted, 429, "rate_limited"},
      {StatusCode::kUnavailable, 503, "unavailable"},
      {StatusCode::kIoError, 500, "internal"},
      {StatusCode::kCorruption, 500, "internal"},
      {StatusCode::kInternal, 500, "internal"},
  };
  for (const Case& c : cases) {
    Status s(c.code, "message for the client");
    HttpError mapped = http_error_for(s);
    EXPECT_EQ(mapped.http_status, c.http_status) << status_code_name(c.code);
    EXPECT_EQ(mapped.code, c.error_code) << status_code_name(c.code);
    http::Response r = error_response(s);
    EXPECT_EQ(r.status, c.http_status) << status_code_name(c.code);
    EXPECT_EQ(body_of(r)["error"]["code"], c.error_code) << status_code_name(c.code);
  }
}

TEST(ErrorsTest, ClientErrorsKeepMessageAndFieldInTheOneShape) {
  http::Response r =
      error_response(Status::invalid_argument("field 'max_uses' must be an integer", "max_uses"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.headers.get("Content-Type"), "application/json");
  nlohmann::json j = body_of(r);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 1u);
  ASSERT_TRUE(j["error"].is_object());
  EXPECT_EQ(j["error"].size(), 3u);
  EXPECT_EQ(j["error"]["code"], "invalid_argument");
  EXPECT_EQ(j["error"]["message"], "field 'max_uses' must be an integer");
  EXPECT_EQ(j["error"]["field"], "max_uses");
}

TEST(ErrorsTest, NoFieldMeansNoFieldKey) {
  nlohmann::json j = body_of(error_response(Status::not_found("no such project")));
  EXPECT_EQ(j["error"]["message"], "no such project");
  EXPECT_FALSE(j["error"].contains("field"));
}

TEST(ErrorsTest, ContentTypeFieldMeansUnsupportedMediaType) {
  Status s = unsupported_media_type("Content-Type must be application/json");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.field(), kContentTypeField);
  http::Response r = error_response(s);
  EXPECT_EQ(r.status, 415);
  nlohmann::json j = body_of(r);
  EXPECT_EQ(j["error"]["code"], "unsupported_media_type");
  EXPECT_EQ(j["error"]["field"], "Content-Type");
  // Only InvalidArgument turns into 415; other codes about the header keep their own status.
  EXPECT_EQ(http_error_for(Status(StatusCode::kNotFound, "x", "Content-Type")).http_status, 404);
  EXPECT_EQ(error_response(Status::invalid_argument("x", "content_type")).status, 400);
}

TEST(ErrorsTest, InternalErrorsLeakNothing) {
  for (StatusCode code : {StatusCode::kInternal, StatusCode::kIoError, StatusCode::kCorruption}) {
    http::Response r =
        error_response(Status(code, "SQLITE_ERROR near users.password_hash at /var/lib/db", "pw"));
    EXPECT_EQ(r.status, 500);
    nlohmann::json j = body_of(r);
    EXPECT_EQ(j["error"]["code"], "internal");
    EXPECT_EQ(j["error"]["message"], "internal server error");
    EXPECT_FALSE(j["error"].contains("field"));
    EXPECT_EQ(r.body.find("SQLITE"), std::string::npos);
    EXPECT_EQ(r.body.find("password_hash"), std::string::npos);
  }
}

TEST(ErrorsTest, OkStatusIsACallerBugAnsweredWith500) {
  http::Response r = error_response(Status::ok());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(body_of(r)["error"]["code"], "internal");
}

TEST(ErrorsTest, InvalidUtf8InAMessageStillGivesValidJson) {
  http::Response r = error_response(Status::invalid_argument("bad \xff byte", "f\xfe"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(body_of(r));
}

TEST(ErrorsTest, JsonBodyErrorsMapTo400And415) {
  http::Request req;
  req.method = http::Method::kPost;
  req.body = R"({"name":1})";
  req.headers.set("Content-Type", "text/plain");
  http::Response r415 = error_response(JsonBody::parse(req).status());
  EXPECT_EQ(r415.status, 415);
  EXPECT_EQ(body_of(r415)["error"]["field"], "Content-Type");

  req.headers.set("Content-Type", "application/json");
  auto name = read_json_body(req, [](JsonBody& b) { return b.required_string("name", 10); });
  http::Response r400 = error_response(name.status());
  EXPECT_EQ(r400.status, 400);
  nlohmann::json j = body_of(r400);
  EXPECT_EQ(j["error"]["code"], "invalid_argument");
  EXPECT_EQ(j["error"]["field"], "name");
  EXPECT_EQ(j["error"]["message"],
            "field 'name' must be a string of at most 10 characters, got a number");

  req.body = "{";
  EXPECT_EQ(body_of(error_response(JsonBody::parse(req).status()))["error"]["field"], "body");
}

}  // namespace
}  // namespace atelier::api
