// Plain HTTP request and response types shared by the router, middleware and handlers.
//
// They deliberately carry no Boost.Beast types: only server/http/{server,session}.cpp see Beast,
// and convert to and from these at the socket. Handlers elsewhere (api, auth, static files)
// include this header alone and compile in a fraction of the time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atelier::http {

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };

std::string_view method_name(Method m);
Method parse_method(std::string_view name);

// Case-insensitive ASCII comparison, as HTTP header names require.
bool iequals(std::string_view a, std::string_view b);

// An ordered list of header fields. Lookups are case-insensitive; order is kept for output.
class Headers {
 public:
  struct Field {
    std::string name;
    std::string value;
  };

  // First value of `name`, if present.
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // Replaces every field called `name` with one field.
  void set(std::string_view name, std::string_view value);
  // Appends a field, keeping any with the same name (e.g. Set-Cookie).
  void add(std::string_view name, std::string_view value);
  void remove(std::string_view name);

  const std::vector<Field>& fields() const { return fields_; }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

struct Request {
  Method method = Method::kGet;
  std::string method_text;  // as received, for logs and 405 answers of unknown methods
  std::string target;       // raw request-target: path plus optional "?query"
  std::string path;         // target up to '?', still percent-encoded
  std::string query;        // after '?', still percent-encoded, without the '?'
  Headers headers;
  std::string body;
  std::string remote_address;  // "127.0.0.1:53422"
  unsigned version = 11;       // 10 or 11
  bool keep_alive = true;

  // Decoded value of the first `name=` parameter of the query string.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is streamed from this file instead of `body` (static assets).
  std::optional<std::filesystem::path> file;
  // Ask the connection to close after this response (413, protocol errors, shutdown).
  bool close = false;

  // A response with a JSON body (`json_text` must already be serialized JSON).
  static Response json_text(int status, std::string json_text);
  // The one error shape of every endpoint:
  //   {"error":{"code":"...","message":"...","field":"..."}}  ("field" only when non-empty)
  static Response error(int status, std::string_view code, std::string_view message,
                        std::string_view field = {});
  static Response text(int status, std::string body,
                       std::string_view content_type = "text/plain; charset=utf-8");
};

// Standard reason phrase ("Not Found"), empty for unknown codes.
std::string_view reason_phrase(int status);

// Percent-decodes `in`. Returns nullopt for malformed escapes ("%4", "%zz").
// With `plus_as_space`, '+' decodes to ' ' (query strings).
std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space = false);

}  // namespace atelier::http
