#include "server/api/json_body.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace atelier::api {
namespace {

http::Request make_request(std::string body,
                           std::optional<std::string> content_type = "application/json") {
  http::Request r;
  r.method = http::Method::kPost;
  r.body = std::move(body);
  if (content_type) r.headers.set("Content-Type", *content_type);
  return r;
}

JsonBody must_parse(std::string text) {
  Result<JsonBody> body = JsonBody::parse(make_request(std::move(text)));
  EXPECT_TRUE(body.is_ok()) << body.status().to_string();
  return body.is_ok() ? std::move(body).value() : *JsonBody::parse_text("{}");
}

Status parse_error(std::string text, BodyPolicy policy = BodyPolicy::kRequired) {
  Result<JsonBody> body = JsonBody::parse(make_request(std::move(text)), policy);
  EXPECT_FALSE(body.is_ok()) << "parsed although it should not";
  return body.status();
}

// Checks that `s` is an InvalidArgument naming `field` whose message contains `fragment`.
void expect_invalid(const Status& s, std::string_view field, std::string_view fragment) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_EQ(s.field(), field) << s.to_string();
  EXPECT_NE(s.message().find(fragment), std::string::npos)
      << "message '" << s.message() << "' lacks '" << fragment << "'";
}

// ---------------------------------------------------------------------------------------------
// Happy paths

TEST(JsonBodyTest, ReadsEveryTypeAndFinishes) {
  JsonBody body = must_parse(R"({"username":"ada","password":"correct horse","max_uses":5,
      "expires_in_s":3600,"admin":false,"role":"editor","description":"a\nb","pinned":true})");
  EXPECT_EQ(body.size(), 8u);
  EXPECT_EQ(*body.required_string("username", {.min_chars = 1, .max_chars = 32}), "ada");
  EXPECT_EQ(*body.required_string("password", 128), "correct horse");
  EXPECT_EQ(*body.required_int("max_uses", 1, 1000), 5);
  EXPECT_EQ(*body.optional_int("expires_in_s", 60, 86400), std::optional<int64_t>(3600));
  EXPECT_EQ(*body.optional_bool("admin"), std::optional<bool>(false));
  EXPECT_TRUE(*body.required_bool("pinned"));
  EXPECT_EQ(*body.required_enum("role", {"viewer", "editor", "admin"}), "editor");
  auto description = body.optional_string("description", {.max_chars = 100, .multiline = true});
  ASSERT_TRUE(description.is_ok()) << description.status().to_string();
  EXPECT_EQ(**description, "a\nb");
  EXPECT_TRUE(body.finish().is_ok());
}

TEST(JsonBodyTest, OptionalFieldsAbsentOrNullAreNullopt) {
  JsonBody body = must_parse(R"({"description":null,"max_uses":null,"flag":null,"role":null})");
  EXPECT_EQ(*body.optional_string("description", 10), std::nullopt);
  EXPECT_EQ(*body.optional_int("max_uses", 1, 10), std::nullopt);
  EXPECT_EQ(*body.optional_bool("flag"), std::nullopt);
  EXPECT_EQ(*body.optional_enum("role", {"viewer"}), std::nullopt);
  EXPECT_EQ(*body.optional_string("absent", 10), std::nullopt);
  EXPECT_EQ(*body.optional_int("absent_int", 1, 10), std::nullopt);
  EXPECT_TRUE(body.finish().is_ok());  // null fields count as declared once read
}

TEST(JsonBodyTest, UnicodeEscapesDecodeAndLengthCountsCodePoints) {
  JsonBody body = must_parse(R"({"a":"\u00e9t\u00e9","b":"😀😀"})");
  EXPECT_EQ(*body.required_string("a", 3), "été");
  EXPECT_EQ(*body.required_string("b", {.min_chars = 2, .max_chars = 2}), "😀😀");
  EXPECT_TRUE(body.finish().is_ok());
}

TEST(JsonBodyTest, ReadingAFieldTwiceIsFine) {
  JsonBody body = must_parse(R"({"name":"x"})");
  EXPECT_TRUE(body.required_string("name", 5).is_ok());
  EXPECT_TRUE(body.required_string("name", 5).is_ok());
  EXPECT_TRUE(body.finish().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Unknown fields

TEST(JsonBodyTest, UnknownFieldIsRefusedAndNamed) {
  JsonBody body = must_parse(R"({"name":"p","owner_id":7,"description":"d"})");
  ASSERT_TRUE(body.required_string("name", 100).is_ok());
  ASSERT_TRUE(body.optional_string("description", 100).is_ok());
  Status s = body.finish();
  expect_invalid(s, "owner_id", "field 'owner_id' is not accepted");
  EXPECT_NE(s.message().find("accepted fields: name, description"), std::string::npos)
      << s.message();
}

TEST(JsonBodyTest, FinishNamesTheFirstUndeclaredFieldInBodyOrder) {
  JsonBody body = must_parse(R"({"state":"done","name":"p","role":"admin"})");
  ASSERT_TRUE(body.required_string("name", 100).is_ok());
  expect_invalid(body.finish(), "state", "not accepted");
}

TEST(JsonBodyTest, UnknownFieldWhenNoFieldsAreTaken) {
  JsonBody body = must_parse(R"({"id":1})");
  expect_invalid(body.finish(), "id", "this request takes no fields");
  EXPECT_TRUE(must_parse("{}").finish().is_ok());
}

TEST(JsonBodyTest, AbsentDeclaredFieldsStillCountAsAccepted) {
  JsonBody body = must_parse(R"({"name":"p","x":1})");
  ASSERT_TRUE(body.required_string("name", 10).is_ok());
  ASSERT_TRUE(body.optional_int("limit", 1, 10).is_ok());  // absent
  Status s = body.finish();
  EXPECT_NE(s.message().find("accepted fields: name, limit"), std::string::npos) << s.message();
}

TEST(JsonBodyTest, LongOrOddUnknownKeysAreShortenedAndCleaned) {
  std::string key(1000, 'k');
  JsonBody body = must_parse(R"({")" + key + R"(":1})");
  Status s = body.finish();
  EXPECT_EQ(s.field(), std::string(64, 'k') + "...");
  EXPECT_LT(s.message().size(), 200u);

  JsonBody odd = must_parse(R"({"a\nb\u0000c":1})");
  EXPECT_EQ(odd.finish().field(), "a?b?c");
}

struct NewInvite {
  std::string role;
  int64_t max_uses = 0;
};

Result<NewInvite> read_invite(JsonBody& body) {
  auto role = body.required_enum("role", {"viewer", "editor"});
  if (!role.is_ok()) return role.status();
  auto max_uses = body.required_int("max_uses", 1, 1000);
  if (!max_uses.is_ok()) return max_uses.status();
  return NewInvite{std::move(*role), *max_uses};
}

TEST(JsonBodyTest, ReadJsonBodyReadsAndRefusesUnknownFields) {
  auto ok = read_json_body(make_request(R"({"role":"viewer","max_uses":3})"), read_invite);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->role, "viewer");
  EXPECT_EQ(ok->max_uses, 3);

  auto extra =
      read_json_body(make_request(R"({"role":"viewer","max_uses":3,"project_id":9})"), read_invite);
  expect_invalid(extra.status(), "project_id", "not accepted");

  // The reader's own error comes first; parse errors come before it.
  auto bad = read_json_body(make_request(R"({"role":"owner","project_id":9})"), read_invite);
  expect_invalid(bad.status(), "role", "must be one of 'viewer', 'editor'");
  auto malformed = read_json_body(make_request("{"), read_invite);
  EXPECT_EQ(malformed.status().field(), "body");
  auto empty_ok = read_json_body(
      make_request(""), [](JsonBody& b) { return b.optional_bool("x"); }, BodyPolicy::kOptional);
  EXPECT_TRUE(empty_ok.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Missing, null and type mismatches

TEST(JsonBodyTest, MissingRequiredFieldIsNamed) {
  JsonBody body = must_parse("{}");
  expect_invalid(body.required_string("username", {.min_chars = 3, .max_chars = 32}).status(),
                 "username", "field 'username' is required: expected a string of 3 to 32");
  expect_invalid(body.required_int("max_uses", 1, 1000).status(), "max_uses",
                 "is required: expected an integer between 1 and 1000");
  expect_invalid(body.required_bool("b").status(), "b", "is required: expected a boolean");
  expect_invalid(body.required_enum("role", {"viewer", "admin"}).status(), "role",
                 "is required: expected one of 'viewer', 'admin'");
}

TEST(JsonBodyTest, NullForRequiredFieldIsRefused) {
  JsonBody body = must_parse(R"({"name":null,"n":null})");
  expect_invalid(body.required_string("name", 10).status(), "name", "got null");
  expect_invalid(body.required_int("n", 0, 1).status(), "n", "got null");
}

TEST(JsonBodyTest, EachTypeMismatchIsNamed) {
  JsonBody body = must_parse(
      R"({"s_num":5,"s_bool":true,"s_obj":{},"s_arr":[],"i_str":"5","i_bool":true,
          "i_obj":{"a":1},"b_num":1,"b_str":"true","e_num":1,"e_arr":["viewer"]})");
  expect_invalid(body.required_string("s_num", 10).status(), "s_num",
                 "must be a string of at most 10 characters, got a number");
  expect_invalid(body.required_string("s_bool", 10).status(), "s_bool", "got a boolean");
  expect_invalid(body.optional_string("s_obj", 10).status(), "s_obj", "got an object");
  expect_invalid(body.optional_string("s_arr", 10).status(), "s_arr", "got an array");
  expect_invalid(body.required_int("i_str", 0, 9).status(), "i_str",
                 "must be an integer between 0 and 9, got a string");
  expect_invalid(body.required_int("i_bool", 0, 9).status(), "i_bool", "got a boolean");
  expect_invalid(body.optional_int("i_obj", 0, 9).status(), "i_obj", "got an object");
  expect_invalid(body.required_bool("b_num").status(), "b_num", "must be a boolean, got a number");
  expect_invalid(body.optional_bool("b_str").status(), "b_str", "got a string");
  expect_invalid(body.required_enum("e_num", {"viewer"}).status(), "e_num", "got a number");
  expect_invalid(body.optional_enum("e_arr", {"viewer"}).status(), "e_arr", "got an array");
}

// ---------------------------------------------------------------------------------------------
// Bounds

TEST(JsonBodyTest, IntegerBounds) {
  JsonBody body = must_parse(R"({"lo":1,"hi":1000,"below":0,"above":1001,"neg":-5,"zero":-0})");
  EXPECT_EQ(*body.required_int("lo", 1, 1000), 1);
  EXPECT_EQ(*body.required_int("hi", 1, 1000), 1000);
  expect_invalid(body.required_int("below", 1, 1000).status(), "below",
                 "must be an integer between 1 and 1000, got an integer outside that range");
  expect_invalid(body.required_int("above", 1, 1000).status(), "above", "outside that range");
  EXPECT_EQ(*body.required_int("neg", -10, 10), -5);
  EXPECT_EQ(*body.required_int("zero", 0, 0), 0);
}

TEST(JsonBodyTest, IntegersMustBeInt64IntegerLiterals) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  JsonBody body = must_parse(
      R"({"max":9223372036854775807,"min":-9223372036854775808,"over":9223372036854775808,
          "under":-9223372036854775809,"huge":123456789012345678901234567890,
          "frac":1.5,"point_zero":1.0,"exp":1e3})");
  EXPECT_EQ(*body.required_int("max", kMin, kMax), kMax);
  EXPECT_EQ(*body.required_int("min", kMin, kMax), kMin);
  for (const char* f : {"over", "under", "huge"}) {
    expect_invalid(body.required_int(f, kMin, kMax).status(), f,
                   "got an integer outside that range");
  }
  for (const char* f : {"frac", "point_zero", "exp"}) {
    expect_invalid(body.required_int(f, kMin, kMax).status(), f,
                   "got a number with a fraction or exponent");
  }
}

TEST(JsonBodyTest, StringBounds) {
  JsonBody body = must_parse(R"({"ok":"abc","long":"abcd","empty":"","short":"ab","exact":"ab"})");
  EXPECT_EQ(*body.required_string("ok", 3), "abc");
  expect_invalid(body.required_string("long", 3).status(), "long",
                 "must be a string of at most 3 characters, got a longer one");
  EXPECT_EQ(*body.required_string("empty", 3), "");  // min_chars defaults to 0
  expect_invalid(body.required_string("empty", {.min_chars = 1, .max_chars = 3}).status(), "empty",
                 "must be a string of 1 to 3 characters, got an empty one");
  expect_invalid(body.required_string("short", {.min_chars = 3, .max_chars = 8}).status(), "short",
                 "got a shorter one");
  EXPECT_EQ(*body.required_string("exact", {.min_chars = 2, .max_chars = 2}), "ab");
  expect_invalid(body.required_string("ok", {.min_chars = 2, .max_chars = 2}).status(), "ok",
                 "a string of exactly 2 characters");
}

TEST(JsonBodyTest, ControlCharactersAreRefusedUnlessMultilineAllowsThem) {
  JsonBody body =
      must_parse(R"({"nl":"a\nb","tab":"a\tb","nul":"a\u0000b","del":"a\u007fb","c1":"a\u0085b"})");
  expect_invalid(body.required_string("nl", 10).status(), "nl",
                 "must not contain control characters");
  expect_invalid(body.required_string("tab", 10).status(), "tab", "control characters");
  TextRule multi{.max_chars = 10, .multiline = true};
  EXPECT_EQ(*body.required_string("nl", multi), "a\nb");
  EXPECT_EQ(*body.required_string("tab", multi), "a\tb");
  for (const char* f : {"nul", "del", "c1"}) {
    expect_invalid(body.required_string(f, 10).status(), f, "control characters");
    expect_invalid(body.required_string(f, multi).status(), f,
                   "control characters other than tab, line feed and carriage return");
  }
  EXPECT_EQ(*must_parse(R"({"s":"é\u00a0x"})").required_string("s", 3), "é\u00a0x");  // not C1
}

TEST(JsonBodyTest, EnumsMatchExactly) {
  JsonBody body = must_parse(R"({"a":"viewer","b":"Viewer","c":"owner"})");
  EXPECT_EQ(*body.required_enum("a", {"viewer", "editor"}), "viewer");
  expect_invalid(body.required_enum("b", {"viewer", "editor"}).status(), "b",
                 "must be one of 'viewer', 'editor', got another string");
  expect_invalid(body.optional_enum("c", {"viewer", "editor"}).status(), "c", "got another string");
}

TEST(JsonBodyTest, BadDeclarationsAreInternalErrors) {
  JsonBody body = must_parse(R"({"s":"x","i":1,"e":"x"})");
  EXPECT_EQ(body.required_string("s", TextRule{.min_chars = 1}).status().code(),
            StatusCode::kInternal);  // max_chars left at 0
  EXPECT_EQ(body.required_string("s", {.min_chars = 5, .max_chars = 2}).status().code(),
            StatusCode::kInternal);
  EXPECT_EQ(body.required_int("i", 5, 1).status().code(), StatusCode::kInternal);
  EXPECT_EQ(body.required_enum("e", {}).status().code(), StatusCode::kInternal);
}

// ---------------------------------------------------------------------------------------------
// The body as a whole

TEST(JsonBodyTest, EmptyBodyRequiredVersusOptional) {
  expect_invalid(parse_error(""), "body", "request body is required");
  Result<JsonBody> optional = JsonBody::parse(make_request(""), BodyPolicy::kOptional);
  ASSERT_TRUE(optional.is_ok());
  EXPECT_EQ(optional->size(), 0u);
  EXPECT_EQ(*optional->optional_string("name", 10), std::nullopt);
  expect_invalid(optional->required_string("name", 10).status(), "name", "is required");
  EXPECT_TRUE(optional->finish().is_ok());
  // A present body is parsed under kOptional too.
  expect_invalid(parse_error("{", BodyPolicy::kOptional), "body", "not valid JSON");
  EXPECT_EQ(
      *JsonBody::parse(make_request(R"({"a":1})"), BodyPolicy::kOptional)->required_int("a", 0, 5),
      1);
}

TEST(JsonBodyTest, MalformedJsonSaysWhere) {
  expect_invalid(parse_error(R"({"a":tru})"), "body",
                 "request body is not valid JSON: syntax error at byte 8");
  expect_invalid(parse_error(R"({"a":1,})"), "body", "syntax error at byte 7");
  expect_invalid(parse_error(R"({"a":1)"), "body", "unexpected end at byte 6");
  expect_invalid(parse_error("{} x"), "body", "syntax error at byte 3");  // trailing content
  expect_invalid(parse_error("{}{}"), "body", "syntax error at byte 2");
  expect_invalid(parse_error("{/*c*/}"), "body", "not valid JSON");  // no comments
  expect_invalid(parse_error("{'a':1}"), "body", "not valid JSON");
  expect_invalid(parse_error(R"({"a":"\ud800"})"), "body", "not valid JSON");  // lone surrogate
  expect_invalid(parse_error("{\"a\":\"x\ny\"}"), "body", "not valid JSON");   // raw newline
  expect_invalid(parse_error("   "), "body", "unexpected end at byte 3");
  EXPECT_TRUE(JsonBody::parse(make_request(" \n{ \"a\" : 1 }\n")).is_ok());
  EXPECT_TRUE(JsonBody::parse(make_request("\xef\xbb\xbf{}")).is_ok());  // byte order mark
}

TEST(JsonBodyTest, TopLevelMustBeAnObject) {
  expect_invalid(parse_error("[1,2]"), "body", "request body must be a JSON object, got an array");
  expect_invalid(parse_error(R"("str")"), "body", "must be a JSON object, got a string");
  expect_invalid(parse_error("42"), "body", "must be a JSON object, got a number");
  expect_invalid(parse_error("1.5"), "body", "got a number");
  expect_invalid(parse_error("null"), "body", "got null");
  expect_invalid(parse_error("true"), "body", "got a boolean");
}

TEST(JsonBodyTest, ContentTypeMustBeJsonWhenPresent) {
  const std::string json = R"({"a":1})";
  for (std::optional<std::string> accepted :
       {std::optional<std::string>("application/json"),
        std::optional<std::string>("application/json; charset=utf-8"),
        std::optional<std::string>("Application/JSON;charset=\"UTF-8\""),
        std::optional<std::string>("application/json ; foo=bar"),
        std::optional<std::string>(std::nullopt)}) {
    EXPECT_TRUE(JsonBody::parse(make_request(json, accepted)).is_ok())
        << accepted.value_or("(none)");
  }
  for (const char* refused :
       {"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x", "application/jsonx", "application/json; charset=latin1",
        "application/merge-patch+json", ""}) {
    Result<JsonBody> r = JsonBody::parse(make_request(json, std::string(refused)));
    ASSERT_FALSE(r.is_ok()) << refused;
    expect_invalid(r.status(), "Content-Type", "Content-Type must be application/json");
  }
  // Nothing to misread in an empty body, so its Content-Type does not matter.
  EXPECT_TRUE(JsonBody::parse(make_request("", "text/plain"), BodyPolicy::kOptional).is_ok());
  // parse_text skips the header check entirely.
  EXPECT_TRUE(JsonBody::parse_text(json).is_ok());
}

TEST(JsonBodyTest, InvalidUtf8IsRefusedWithOffset) {
  expect_invalid(parse_error("{\"a\":\"\xff\"}"), "body",
                 "request body is not valid UTF-8: bad byte at offset 6");
  expect_invalid(parse_error("{\"a\":\"\xc0\xaf\"}"), "body", "offset 6");          // overlong '/'
  expect_invalid(parse_error("{\"a\":\"\xed\xa0\x80\"}"), "body", "offset 6");      // surrogate
  expect_invalid(parse_error("{\"a\":\"\xf4\x90\x80\x80\"}"), "body", "offset 6");  // > U+10FFFF
  expect_invalid(parse_error("{\"a\":\"\xe2\x82\"}"), "body", "offset 6");          // truncated
  expect_invalid(parse_error("{\"\xe2\x82"), "body", "offset 2");           // truncated at end
  expect_invalid(parse_error("{\"k\xfe\":1}"), "body", "not valid UTF-8");  // in a key
  EXPECT_TRUE(JsonBody::parse(make_request("{\"a\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}")).is_ok());
}

TEST(JsonBodyTest, DeepNestingIsRefused) {
  // The body is depth 1, so kMaxDepth - 1 levels may nest inside a field.
  auto nested = [](int levels) {
    return R"({"a":)" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  JsonBody ok = must_parse(nested(JsonBody::kMaxDepth - 1));
  expect_invalid(ok.required_string("a", 10).status(), "a", "got an array");
  expect_invalid(parse_error(nested(JsonBody::kMaxDepth)), "a",
                 "field 'a' nests objects and arrays deeper than 8 levels");
  expect_invalid(parse_error(R"({"x":1,"o":{"p":{"q":{"r":{"s":{"t":{"u":{"v":{}}}}}}}}})"), "o",
                 "deeper than");
  // Far deeper input stops at the limit rather than exhausting anything.
  expect_invalid(parse_error(nested(200000)), "a", "deeper than");
  expect_invalid(parse_error(std::string(200000, '[')), "body", "got an array");
}

TEST(JsonBodyTest, DuplicateKeysAreRefused) {
  expect_invalid(parse_error(R"({"role":"viewer","name":"n","role":"admin"})"), "role",
                 "field 'role' appears more than once");
  expect_invalid(parse_error(R"({"a":{"x":1,"x":2}})"), "a",
                 "field 'a' contains an object with the key 'x' more than once");
  expect_invalid(parse_error(R"({"a":[{"x":1},{"y":1,"y":1}]})"), "a", "key 'y' more than once");
  // The same key in different objects is no duplicate.
  JsonBody body = must_parse(R"({"a":{"x":1,"b":{"x":1}},"b":[{"x":1},{"x":2}],"x":1})");
  EXPECT_EQ(body.size(), 3u);
}

TEST(JsonBodyTest, StringValuesAreNeverEchoed) {
  const std::string secret = "hunter2-SECRET";
  auto check = [&](const Status& s) {
    EXPECT_FALSE(s.is_ok());
    EXPECT_EQ(s.message().find("hunter2"), std::string::npos) << s.message();
    EXPECT_EQ(s.to_string().find("hunter2"), std::string::npos) << s.to_string();
  };
  JsonBody body = must_parse(R"({"password":")" + secret + R"(","role":")" + secret + R"(","n":")" +
                             secret + R"(","ctl":")" + secret + R"(\n","x":")" + secret + R"("})");
  check(body.required_string("password", 4).status());
  check(body.required_string("password", {.min_chars = 100, .max_chars = 200}).status());
  check(body.required_enum("role", {"viewer"}).status());
  check(body.required_int("n", 0, 1).status());
  check(body.required_bool("n").status());
  check(body.required_string("ctl", 100).status());
  check(body.finish());  // "x" is unknown: named, its value not shown
  check(parse_error(R"({"password":")" + secret + R"("x})"));
  check(parse_error(R"({"password":")" + secret + "\xff\"}"));
  check(parse_error(R"({"password":")" + secret + R"(",)"));
  check(parse_error(R"({"password":")" + secret + "\n\"}"));
  check(parse_error(R"([")" + secret + R"("])"));
}

TEST(JsonBodyTest, IntArraysOfAFixedLength) {
  JsonBody body =
      must_parse(R"({"size":[512,768],"short":[1],"long":[1,2,3],"big":[1,9000],"frac":[1,2.5],)"
                 R"("str":[1,"2"],"obj":{"a":1},"nul":null,"neg":[-1,5]})");
  auto size = body.optional_int_array("size", 2, 8, 8192);
  ASSERT_TRUE(size.is_ok());
  EXPECT_EQ(**size, (std::vector<int64_t>{512, 768}));
  EXPECT_FALSE(body.optional_int_array("absent", 2, 0, 1)->has_value());
  EXPECT_FALSE(body.optional_int_array("nul", 2, 0, 1)->has_value());
  expect_invalid(body.optional_int_array("short", 2, 0, 10).status(), "short", "got 1 elements");
  expect_invalid(body.optional_int_array("long", 2, 0, 10).status(), "long", "got 3 elements");
  expect_invalid(body.optional_int_array("big", 2, 0, 8192).status(), "big",
                 "outside that range at index 1");
  expect_invalid(body.optional_int_array("frac", 2, 0, 10).status(), "frac",
                 "fraction or exponent at index 1");
  expect_invalid(body.optional_int_array("str", 2, 0, 10).status(), "str", "a string at index 1");
  expect_invalid(body.optional_int_array("obj", 2, 0, 10).status(), "obj", "got an object");
  expect_invalid(body.optional_int_array("neg", 2, 0, 10).status(), "neg", "at index 0");
  EXPECT_TRUE(body.finish().is_ok());
}

TEST(JsonBodyTest, ObjectArraysNameEachElementsFields) {
  JsonBody body =
      must_parse(R"({"loras":[{"name":"a","weight":0.5},{"name":"b"},{"name":"c","extra":true}],)"
                 R"("bad":[{"name":"a"},7],"many":[{},{},{}],"notarray":{"name":"a"}})");
  auto loras = body.optional_object_array("loras", 5);
  ASSERT_TRUE(loras.is_ok());
  ASSERT_EQ((*loras)->size(), 3u);
  JsonBody& first = (**loras)[0];
  EXPECT_EQ(*first.required_string("loras[0].name", 10), "a");
  EXPECT_EQ(**first.optional_number("loras[0].weight", -4, 4), 0.5);
  EXPECT_TRUE(first.finish().is_ok());
  JsonBody& second = (**loras)[1];
  EXPECT_FALSE(second.optional_number("loras[1].weight", -4, 4)->has_value());
  expect_invalid(second.required_int("loras[1].name", 0, 1).status(), "loras[1].name",
                 "got a string");
  JsonBody& third = (**loras)[2];
  EXPECT_TRUE(third.required_string("loras[2].name", 10).is_ok());
  expect_invalid(third.finish(), "loras[2].extra", "not accepted");
  expect_invalid(body.optional_object_array("bad", 5).status(), "bad[1]", "must be an object");
  expect_invalid(body.optional_object_array("many", 2).status(), "many", "at most 2 objects");
  expect_invalid(body.optional_object_array("notarray", 2).status(), "notarray", "got an object");
  EXPECT_TRUE(body.finish().is_ok());
}

TEST(JsonBodyTest, NestedValuesKeepTheirTypesAndDepthIsStillLimited) {
  JsonBody body = must_parse(R"({"l":[{"n":{"deep":[1,[2,[3]]]},"s":"x\u00e9","b":false}]})");
  auto l = body.optional_object_array("l", 1);
  ASSERT_TRUE(l.is_ok());
  JsonBody& e = (**l)[0];
  EXPECT_EQ(*e.required_string("l[0].s", 5), "x\u00e9");
  EXPECT_FALSE(*e.required_bool("l[0].b"));
  expect_invalid(e.required_string("l[0].n", 5).status(), "l[0].n", "got an object");
  expect_invalid(parse_error(R"({"a":[[[[[[[[1]]]]]]]]})"), "a", "deeper than 8 levels");
}

}  // namespace
}  // namespace atelier::api
