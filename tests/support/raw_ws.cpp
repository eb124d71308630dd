#include "tests/support/raw_ws.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace atelier::testing {

std::string ws_upgrade_request(uint16_t port, const std::string& target, const std::string& auth) {
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n";
  if (!auth.empty()) request += "Authorization: " + auth + "\r\n";
  return request + "\r\n";
}

int ws_connect(uint16_t port, const std::string& target, const std::string& auth,
               std::string& leftover, std::string& error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto fail = [&](std::string why) {
    error = std::move(why);
    if (fd >= 0) ::close(fd);
    return -1;
  };
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return fail(std::string("connect: ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::string request = ws_upgrade_request(port, target, auth);
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return fail("sending the upgrade failed");
  }
  // The response, up to its blank line; anything after it is the first frames.
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got <= 0) return fail("connection closed during the upgrade");
    in.append(buf, static_cast<size_t>(got));
  }
  if (in.rfind("HTTP/1.1 101", 0) != 0) return fail(in.substr(0, in.find('\r')));
  leftover = in.substr(in.find("\r\n\r\n") + 4);
  return fd;
}

std::string ws_client_frame(uint8_t opcode, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  f.append(4, '\0');
  f.append(payload);
  return f;
}

std::optional<ServerFrame> parse_server_frame(std::string_view bytes) {
  if (bytes.size() < 2) return std::nullopt;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  uint64_t len = p[1] & 0x7f;
  size_t header = 2;
  if (len == 126) {
    if (bytes.size() < 4) return std::nullopt;
    len = (uint64_t{p[2]} << 8) | p[3];
    header = 4;
  } else if (len == 127) {
    if (bytes.size() < 10) return std::nullopt;
    len = 0;
    for (int k = 0; k < 8; ++k) len = (len << 8) | p[2 + k];
    header = 10;
  }
  if (bytes.size() - header < len) return std::nullopt;
  return ServerFrame{static_cast<uint8_t>(p[0] & 0x0f), bytes.substr(header, len), header + len};
}

}  // namespace atelier::testing
