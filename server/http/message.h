// Plain HTTP request and response types shared by the router, middleware and handlers.
//
// They deliberately carry no Boost.Beast types: only server/http/{server,session}.cpp see Beast,
// and convert to and from these at the socket. Handlers elsewhere (api, auth, static files)
// include this header alone and compile in a fraction of the time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atelier::http {

struct WsAccept;  // websocket.h

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
  // The client, as "ip:port" ("127.0.0.1:53422"; IPv6 without brackets, so the port is after
  // the last ':', see address_ip()). The TCP peer, or, when the peer is a trusted proxy, the
  // address it forwarded in X-Forwarded-For (port 0 when it gave none): rate limits and logs
  // key on it. See forwarded.h.
  std::string remote_address;
  std::string peer_address;  // the TCP peer, "ip:port": the proxy itself when there is one
  bool secure = false;       // https to a trusted proxy (its X-Forwarded-Proto), else false
  unsigned version = 11;     // 10 or 11
  bool keep_alive = true;

  // Decoded value of the first `name=` parameter of the query string.
  std::optional<std::string> query_param(std::string_view name) const;
};

// The producer side of a streaming response (see Response::stream). Thread-safe: write() and
// close() may be called from any thread, and a writer kept after its connection has ended is
// harmless (every call is then a no-op that reports the stream closed).
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Queues bytes for the client. Returns false, dropping them, once the stream is closed (client
  // gone, server shutting down, close() called) or when the bytes queued but not yet written would
  // exceed the stream's byte cap (HttpServerOptions::stream_queue_bytes); exceeding the cap also
  // closes the stream: a consumer that cannot keep up is cut off rather than buffered without
  // bound. Bytes from one thread go out in the order written. Empty writes are accepted and
  // ignored.
  virtual bool write(std::string bytes) = 0;
  // Ends the response once the queued bytes are written; the connection then closes. Idempotent.
  virtual void close() = 0;
  // False once write() would refuse bytes (closed, cut off, client gone, shutting down).
  virtual bool is_open() const = 0;
  // Registers a callback run exactly once when the stream ends for any reason (close() and
  // flushed, client disconnected, cap exceeded, write error/timeout, server shutdown). Runs on the
  // connection's strand or, if the stream has already ended, at once on the caller's thread. Must
  // be quick and non-blocking. Several callbacks may be registered.
  virtual void on_close(std::function<void()> callback) = 0;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is streamed from this file instead of `body` (static assets).
  std::optional<std::filesystem::path> file;
  // Ask the connection to close after this response (413, protocol errors, shutdown).
  bool close = false;
  // When set, the response is streamed (Server-Sent Events and the like): the status and headers
  // go out first (no Content-Length; `Cache-Control: no-cache` unless set; the connection closes
  // when the stream ends), then `stream` is called once, with the writer, on the connection's
  // strand. Body and file are ignored. It is not called for HEAD (headers only, then the
  // connection closes) nor when the connection is already gone by the time the response is sent.
  // Response hooks (access log, metrics) see the response once, when it is handed over, as usual.
  std::function<void(std::shared_ptr<StreamWriter>)> stream;
  // When set, the request was a WebSocket upgrade and the route accepts it: the connection
  // completes the handshake (101) and becomes a WebSocket run by `websocket->handler`. Status,
  // headers and body are ignored. Hooks see the response as 101.
  std::shared_ptr<WsAccept> websocket;

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

// The IP part of an "ip:port" address such as Request::remote_address ("::1:80" -> "::1");
// the whole text when it has no ':'.
std::string_view address_ip(std::string_view address);

// A decimal integer in canonical form only: "0", or an optional '-' and digits without leading
// zeros, within int64. No '+', spaces, "-0" or "007": one number has one spelling, so ids that
// look different are different.
std::optional<int64_t> parse_canonical_int64(std::string_view text);

// Percent-decodes `in`. Returns nullopt for malformed escapes ("%4", "%zz").
// With `plus_as_space`, '+' decodes to ' ' (query strings).
std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space = false);

}  // namespace atelier::http
