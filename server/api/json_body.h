// JsonBody: a small, declarative reader for JSON object request bodies.
//
// "JSON lives at the edges only": a handler turns its body into C++ values here, and nothing past
// the handler sees JSON. A handler declares each field it takes by reading it; finish() then
// refuses any field the body carries that was never declared, so no body can set ids, owners,
// roles or states through an endpoint that does not take them on purpose. read_json_body() wraps
// parse, reads and finish() so that the last step cannot be forgotten:
//
//   struct NewProject { std::string name; std::optional<std::string> description; };
//
//   Result<NewProject> read_new_project(const http::Request& request) {
//     return read_json_body(request, [](JsonBody& body) -> Result<NewProject> {
//       auto name = body.required_string("name", {.min_chars = 1, .max_chars = 100});
//       if (!name.is_ok()) return name.status();
//       auto description =
//           body.optional_string("description", {.max_chars = 4000, .multiline = true});
//       if (!description.is_ok()) return description.status();
//       return NewProject{std::move(*name), std::move(*description)};
//     });
//   }
//   // in the handler: if (!input.is_ok()) return ex->respond(error_response(input.status()));
//
// Errors. Every failure is a Status with code kInvalidArgument (400 through error_response) whose
// field() names the input at fault: the body field; "body" for the body as a whole (missing,
// not UTF-8, not JSON, not an object); or "Content-Type" (kContentTypeField, which error_response
// answers with 415). Messages say what was expected and which JSON type was found
// ("field 'max_uses' must be an integer between 1 and 1000, got a string"). They never quote a
// value from the body, since any string could be a password or token; field names (keys) are
// quoted, shortened and stripped of control characters.
//
// What the parser refuses, before any field is read:
//   - a Content-Type other than application/json (parameters allowed; a charset must be utf-8).
//     A missing Content-Type is accepted. Note for cookie-authenticated endpoints: a browser can
//     send a cross-site POST without Content-Type and without a CORS preflight, so CSRF defence
//     must not rest on this check alone (SameSite cookies or an Origin check do that job);
//   - an empty body under BodyPolicy::kRequired (under kOptional it reads as `{}`);
//   - bytes that are not UTF-8 (the message gives the byte offset; a leading byte order mark
//     is skipped);
//   - malformed JSON, including trailing content (the message gives the 0-based byte offset);
//   - a top-level value that is not an object;
//   - a key that appears twice in one object (JSON parsers disagree on which copy wins, so a
//     proxy or log and this server could read different values);
//   - objects and arrays nested deeper than kMaxDepth (the top-level object is depth 1).
//
// Field semantics: `null` counts as absent (an optional getter returns nullopt, a required one
// fails). Integers must be JSON integer literals within int64 and within [lo, hi]: 1.0, 1e3,
// "5", true and out-of-range literals are refused. Strings are measured in Unicode code points
// and refuse control characters (U+0000-U+001F, U+007F-U+009F), except that TextRule::multiline
// allows tab, line feed and carriage return. Reading a field twice is allowed and declares it
// once.
//
// A JsonBody is a plain value; it is not thread-safe, which handlers never need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/status.h"
#include "server/http/message.h"

namespace atelier::api {

enum class BodyPolicy {
  kRequired,  // an empty body is refused: "body" is required
  kOptional,  // an empty body reads as an empty object (optional fields absent)
};

// Bounds and content rules for one string field.
struct TextRule {
  size_t min_chars = 0;
  size_t max_chars = 0;    // must be set (> 0): every string field states its bound
  bool multiline = false;  // also allow \t, \n and \r (descriptions, prompts)
};

class JsonBody {
 public:
  static constexpr int kMaxDepth = 8;
  static constexpr std::string_view kBodyField = "body";

  // Checks Content-Type and parses `request.body` as one JSON object (see the header comment).
  static Result<JsonBody> parse(const http::Request& request,
                                BodyPolicy policy = BodyPolicy::kRequired);
  // The same without the Content-Type check, for JSON that does not arrive as an HTTP body.
  static Result<JsonBody> parse_text(std::string_view text,
                                     BodyPolicy policy = BodyPolicy::kRequired);

  // Each getter declares `field` (see finish) and reads it. The Status of a failed read names
  // `field` and is meant to go back to the client as it is.
  Result<std::string> required_string(std::string_view field, const TextRule& rule);
  Result<std::string> required_string(std::string_view field, size_t max_chars) {
    return required_string(field, TextRule{.max_chars = max_chars});
  }
  Result<std::optional<std::string>> optional_string(std::string_view field, const TextRule& rule);
  Result<std::optional<std::string>> optional_string(std::string_view field, size_t max_chars) {
    return optional_string(field, TextRule{.max_chars = max_chars});
  }

  Result<int64_t> required_int(std::string_view field, int64_t lo, int64_t hi);
  Result<std::optional<int64_t>> optional_int(std::string_view field, int64_t lo, int64_t hi);

  // A JSON number (integer or not) within [lo, hi].
  Result<std::optional<double>> optional_number(std::string_view field, double lo, double hi);

  Result<bool> required_bool(std::string_view field);
  Result<std::optional<bool>> optional_bool(std::string_view field);

  // Enum-like strings: the value must equal one of `allowed` exactly (case-sensitive).
  Result<std::string> required_enum(std::string_view field,
                                    std::initializer_list<std::string_view> allowed);
  Result<std::optional<std::string>> optional_enum(std::string_view field,
                                                   std::initializer_list<std::string_view> allowed);

  // An array of exactly `count` integers, each within [lo, hi] (e.g. a size `[width, height]`).
  // Errors name `field` and say which element is at fault.
  Result<std::optional<std::vector<int64_t>>> optional_int_array(std::string_view field,
                                                                 size_t count, int64_t lo,
                                                                 int64_t hi);
  // An array of at most `max_items` objects, each handed back as a JsonBody of its own whose
  // fields are named "<field>[<i>].<key>": read element i's keys with that full name (so an
  // error names e.g. `loras[1].name`) and call finish() on each element to refuse keys it does
  // not take. An element that is not an object fails naming "<field>[<i>]".
  Result<std::optional<std::vector<JsonBody>>> optional_object_array(std::string_view field,
                                                                     size_t max_items);
  // An object, handed back as a JsonBody of its own whose fields are named "<field>.<key>"
  // (read them with that full name and call finish() on it, as for optional_object_array).
  Result<std::optional<JsonBody>> optional_object(std::string_view field);

  // Fails naming the first field (in body order) that the body carries but no getter declared,
  // listing the fields this body accepts. Call it after the last getter; read_json_body does.
  Status finish() const;

  // Number of top-level fields in the body, declared or not.
  size_t size() const { return fields_.size(); }

 private:
  enum class Kind : uint8_t {
    kNull,
    kBool,
    kInteger,            // fits int64
    kOutOfRangeInteger,  // an integer literal outside int64
    kNonInteger,         // a number with a fraction or exponent (1.5, 1.0, 1e3)
    kString,
    kObject,  // members in `children`, named by their keys
    kArray,   // elements in `children`, unnamed
  };
  struct Field {
    std::string name;
    Kind kind = Kind::kNull;
    bool boolean = false;
    int64_t integer = 0;
    double number = 0;  // any number kind, as a double
    std::string text;
    bool declared = false;
    std::vector<Field> children;  // objects and arrays
  };
  class Parser;  // the SAX handler that fills fields_ (json_body.cpp)

  // Declares `field` and returns it, or nullptr when the body does not carry it.
  Field* declare(std::string_view field);
  // Declares `field`; returns it when present and not null, nullptr when absent or null and not
  // `required`, else the error ("is required" / "got null") stating `expected`.
  Result<Field*> find_present(std::string_view field, bool required, const std::string& expected);
  // find_present, then refuses a value that is not a JSON string.
  Result<Field*> find_string(std::string_view field, bool required, const std::string& expected);
  Result<std::optional<std::string>> read_string(std::string_view field, const TextRule& rule,
                                                 bool required);
  Result<std::optional<int64_t>> read_int(std::string_view field, int64_t lo, int64_t hi,
                                          bool required);
  Result<std::optional<bool>> read_bool(std::string_view field, bool required);
  Result<std::optional<std::string>> read_enum(std::string_view field,
                                               std::initializer_list<std::string_view> allowed,
                                               bool required);

  std::vector<Field> fields_;          // in body order; keys are unique
  std::vector<std::string> declared_;  // in declaration order, for finish()'s message
};

namespace detail {
template <typename T>
struct IsResult : std::false_type {};
template <typename T>
struct IsResult<Result<T>> : std::true_type {};
}  // namespace detail

// Parses the request body, calls `read(JsonBody&)` to read every field into a C++ value, then
// refuses undeclared fields. `read` returns Result<T>; so does read_json_body. The first error
// wins: parse, then `read`'s own, then finish().
template <typename Fn>
auto read_json_body(const http::Request& request, Fn&& read,
                    BodyPolicy policy = BodyPolicy::kRequired)
    -> std::invoke_result_t<Fn&, JsonBody&> {
  using Out = std::invoke_result_t<Fn&, JsonBody&>;
  static_assert(detail::IsResult<Out>::value, "read must return Result<T>");
  Result<JsonBody> body = JsonBody::parse(request, policy);
  if (!body.is_ok()) return body.status();
  Out out = read(*body);
  if (!out.is_ok()) return out;
  ATELIER_RETURN_IF_ERROR(body->finish());
  return out;
}

}  // namespace atelier::api
