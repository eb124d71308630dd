// The few pieces of RFC 6455 that tests and benchmarks need to speak WebSocket over a raw socket
// (a client that can stop reading, a load generator that must cost less than the server it
// measures), where a full client library would hide or cost too much.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace atelier::testing {

// An HTTP/1.1 upgrade request for `target` on 127.0.0.1:port, with `Authorization: auth` when
// `auth` is not empty.
std::string ws_upgrade_request(uint16_t port, const std::string& target,
                               const std::string& auth = {});

// Connects a blocking TCP socket to 127.0.0.1:port and completes the upgrade. Returns the socket
// (the caller closes it) with whatever followed the response in `leftover`; -1 on failure, with
// the reason in `error`.
int ws_connect(uint16_t port, const std::string& target, const std::string& auth,
               std::string& leftover, std::string& error);

// A final client frame (clients must mask; a zero key leaves the payload as it is). Payloads
// up to 64 KiB.
std::string ws_client_frame(uint8_t opcode, std::string_view payload);

// The first whole frame of `bytes` as a server sends it (unmasked), or nothing while incomplete.
struct ServerFrame {
  uint8_t opcode = 0;
  std::string_view payload;  // points into `bytes`
  size_t size = 0;           // header and payload: how much to consume
};
std::optional<ServerFrame> parse_server_frame(std::string_view bytes);

}  // namespace atelier::testing
