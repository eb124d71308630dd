// A deliberately plain HTTP/1.1 client over POSIX sockets for tests: it sends exactly the bytes
// a test gives it (so tests can send malformed, slow or oversized requests) and parses
// responses without any cleverness.
#pragma once

#include <chrono>
#include <cstdint>
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

class Connection {
 public:
  // Connects to 127.0.0.1:port; throws std::runtime_error on failure.
  explicit Connection(uint16_t port);
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

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buf_;
};

// One request on a fresh connection. `extra_headers` are full lines without CRLF.
std::optional<RawResponse> http_request(uint16_t port, const std::string& method,
                                        const std::string& target, const std::string& body = {},
                                        const std::string& extra_headers = {});

// "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n...\r\n\r\n<body>"
std::string make_request(const std::string& method, const std::string& target,
                         const std::string& body = {}, const std::string& extra_headers = {});

}  // namespace atelier::testing
