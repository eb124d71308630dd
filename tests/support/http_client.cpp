#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace atelier::testing {

Connection::Connection(uint16_t port, int receive_buffer_bytes, const std::string& source_ip) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket() failed");
  if (receive_buffer_bytes > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
  }
  if (!source_ip.empty()) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source_ip.c_str(), &src.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot bind " + source_ip + ": " + std::strerror(errno));
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd_);
    throw std::runtime_error("connect() to port " + std::to_string(port) +
                             " failed: " + std::strerror(errno));
  }
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads more bytes into buf_; false on EOF, error or deadline.
bool Connection::fill(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(left.count()));
  if (r <= 0) return false;
  char tmp[16384];
  ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

std::optional<RawResponse> Connection::read_response(std::chrono::milliseconds timeout, bool head) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) return std::nullopt;
  }
  std::string header_block = buf_.substr(0, end);
  buf_.erase(0, end + 4);

  RawResponse r;
  size_t line_end = header_block.find("\r\n");
  std::string status_line = header_block.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  size_t sp1 = status_line.find(' ');
  size_t sp2 = status_line.find(' ', sp1 + 1);
  r.status = std::stoi(status_line.substr(sp1 + 1, sp2 - sp1 - 1));
  if (sp2 != std::string::npos) r.reason = status_line.substr(sp2 + 1);
  size_t pos = line_end == std::string::npos ? header_block.size() : line_end + 2;
  while (pos < header_block.size()) {
    size_t e = header_block.find("\r\n", pos);
    if (e == std::string::npos) e = header_block.size();
    std::string line = header_block.substr(pos, e - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    pos = e + 2;
  }
  if (head || r.status == 204 || r.status == 304 || r.status < 200) return r;

  if (r.header("transfer-encoding") == "chunked") {
    while (true) {
      size_t le;
      while ((le = buf_.find("\r\n")) == std::string::npos) {
        if (!fill(deadline)) return std::nullopt;
      }
      size_t size = std::stoul(buf_.substr(0, le), nullptr, 16);
      while (buf_.size() < le + 2 + size + 2) {
        if (!fill(deadline)) return std::nullopt;
      }
      r.body += buf_.substr(le + 2, size);
      buf_.erase(0, le + 2 + size + 2);
      if (size == 0) break;
    }
    return r;
  }
  size_t length = 0;
  if (auto cl = r.header("content-length"); !cl.empty()) length = std::stoul(cl);
  while (buf_.size() < length) {
    if (!fill(deadline)) return std::nullopt;
  }
  r.body = buf_.substr(0, length);
  buf_.erase(0, length);
  return r;
}

bool Connection::closed_within(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count())));
    if (r < 0) return true;
    if (r == 0) continue;
    char tmp[4096];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return true;  // EOF or reset
    buf_.append(tmp, static_cast<size_t>(n));
  }
  return false;
}

Connection::Received Connection::receive(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return Received::kTimeout;
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(left.count()));
  if (r == 0) return Received::kTimeout;
  if (r < 0) return Received::kClosed;
  char tmp[16384];
  ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
  if (n <= 0) return Received::kClosed;  // EOF or reset
  buf_.append(tmp, static_cast<size_t>(n));
  return Received::kData;
}

void Connection::decode_stream(StreamedBody& body) {
  if (!body.chunked) {
    body.data += buf_;
    buf_.clear();
    return;
  }
  while (!body.complete) {
    size_t le = buf_.find("\r\n");
    if (le == std::string::npos) return;
    // "<hex size>[;extensions]\r\n<data>\r\n"; the last chunk has size 0 and no trailers here.
    size_t size = std::stoul(buf_.substr(0, std::min(le, buf_.find(';'))), nullptr, 16);
    if (buf_.size() < le + 2 + size + 2) return;
    body.data += buf_.substr(le + 2, size);
    buf_.erase(0, le + 2 + size + 2);
    if (size == 0) body.complete = true;
  }
}

bool Connection::read_stream(StreamedBody& body, std::chrono::milliseconds timeout,
                             const std::function<bool(const StreamedBody&)>& done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    decode_stream(body);
    if (done(body)) return true;
    if (body.closed) return false;
    switch (receive(deadline)) {
      case Received::kData:
        break;
      case Received::kClosed:
        body.closed = true;
        break;
      case Received::kTimeout:
        return false;
    }
  }
}

bool Connection::read_stream_until(StreamedBody& body, const std::string& text,
                                   std::chrono::milliseconds timeout) {
  return read_stream(body, timeout, [&text](const StreamedBody& b) {
    return b.data.find(text) != std::string::npos;
  });
}

bool Connection::read_stream_to_end(StreamedBody& body, std::chrono::milliseconds timeout) {
  return read_stream(body, timeout, [](const StreamedBody& b) { return b.closed; });
}

std::string make_request(const std::string& method, const std::string& target,
                         const std::string& body, const std::string& extra_headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!extra_headers.empty()) req += extra_headers + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  return req;
}

std::optional<RawResponse> http_request(uint16_t port, const std::string& method,
                                        const std::string& target, const std::string& body,
                                        const std::string& extra_headers) {
  return http_request_from("", port, method, target, body, extra_headers);
}

std::optional<RawResponse> http_request_from(const std::string& source_ip, uint16_t port,
                                             const std::string& method, const std::string& target,
                                             const std::string& body,
                                             const std::string& extra_headers) {
  // A server that is gone (refused connection) is a missing answer, like a dropped one: crash
  // tests submit to servers that may have just killed themselves.
  std::optional<Connection> c;
  try {
    c.emplace(port, 0, source_ip);
  } catch (const std::runtime_error&) {
    return std::nullopt;
  }
  if (!c->send(make_request(method, target, body, extra_headers))) return std::nullopt;
  return c->read_response(std::chrono::seconds(10), method == "HEAD");
}

}  // namespace atelier::testing
