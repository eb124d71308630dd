// A deliberately plain HTTP/1.1 client over POSIX sockets for tests: it sends exactly the bytes
// a test gives it (so tests can send malformed, slow or oversized requests) and parses
// responses without any cleverness.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace atelier::testing {

struct RawResponse {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// The body of a streamed response (e.g. Server-Sent Events), decoded as it arrives.
struct StreamedBody {
  bool chunked = false;   // per the response's Transfer-Encoding; else the body ends at close
  std::string data;       // body bytes decoded so far
  bool complete = false;  // chunked only: the zero-size last chunk arrived (a clean end)
  bool closed = false;    // the server closed the connection (EOF or reset)
};

class Connection {
 public:
  // Connects to 127.0.0.1:port; throws std::runtime_error on failure. A non-zero
  // `receive_buffer_bytes` fixes the socket's receive buffer (SO_RCVBUF, before connecting, so
  // the kernel does not grow it): a client that never reads then holds back little. A
  // `source_ip` (any 127.x.y.z is local on Linux) is bound before connecting, so the server sees
  // another client address.
  explicit Connection(uint16_t port, int receive_buffer_bytes = 0,
                      const std::string& source_ip = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends raw bytes; returns false when the peer has closed or reset.
  bool send(const std::string& bytes);
  // Reads one response (status line, headers, Content-Length or chunked body). `head` skips the
  // body (responses to HEAD). Returns nullopt on timeout or when the connection closed first.
  std::optional<RawResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::seconds(5), bool head = false);
  // True when the server closes the connection (EOF or reset) within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout);

  // Streamed bodies: after read_response(timeout, /*head=*/true) has consumed a streamed
  // response's header, these read and decode its body into `body` as it arrives.
  // read_stream reads until `done(body)` holds (returns true), or the connection closes or
  // `timeout` passes first (returns false).
  bool read_stream(StreamedBody& body, std::chrono::milliseconds timeout,
                   const std::function<bool(const StreamedBody&)>& done);
  // Until `text` appears in body.data.
  bool read_stream_until(StreamedBody& body, const std::string& text,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Until the server closes the connection.
  bool read_stream_to_end(StreamedBody& body,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  enum class Received { kData, kClosed, kTimeout };
  // Like fill(), but tells a closed connection from a deadline.
  Received receive(std::chrono::steady_clock::time_point deadline);
  // Moves the body bytes buf_ holds into `body`, undoing the chunked coding if there is one.
  void decode_stream(StreamedBody& body);

  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buf_;
};

// One request on a fresh connection. `extra_headers` are full lines without CRLF. nullopt when
// the connection is refused or the answer does not come (a server that died meanwhile).
std::optional<RawResponse> http_request(uint16_t port, const std::string& method,
                                        const std::string& target, const std::string& body = {},
                                        const std::string& extra_headers = {});

// The same from `source_ip`; nullopt also when that address cannot be bound here.
std::optional<RawResponse> http_request_from(const std::string& source_ip, uint16_t port,
                                             const std::string& method, const std::string& target,
                                             const std::string& body = {},
                                             const std::string& extra_headers = {});

// "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n...\r\n\r\n<body>"
std::string make_request(const std::string& method, const std::string& target,
                         const std::string& body = {}, const std::string& extra_headers = {});

}  // namespace atelier::testing
