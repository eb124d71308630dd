// A WebSocket client for tests: Beast underneath (behind this header), one I/O thread that reads
// every message into a list the test inspects, writes queued on that thread.
//
//   auto c = WsClient::connect(port, "/api/v1/ws", {"Authorization: Bearer " + token});
//   c->send_json({{"type", "hello"}, {"proto", 1}});
//   auto welcome = c->wait_json([](const json& m) { return m["type"] == "welcome"; });
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace atelier::testing {

struct WsMessage {
  bool binary = false;
  std::string data;
  nlohmann::json json;  // parsed text messages; discarded for binary or non-JSON
  std::chrono::steady_clock::time_point received;
};

class WsClient {
 public:
  struct Options {
    // Header lines sent with the upgrade ("Authorization: Bearer ...", "Origin: ...").
    std::vector<std::string> headers;
    // false: the client never reads (its socket buffer fills; the server must cut it off).
    bool read = true;
  };
  // The handshake's outcome: a client, or the HTTP status and body the server refused with.
  struct Refused {
    int status = 0;
    std::string body;
  };

  static std::unique_ptr<WsClient> connect(uint16_t port, const std::string& target,
                                           Options options, Refused* refused = nullptr);
  ~WsClient();

  void send_text(const std::string& text);
  void send_binary(const std::string& bytes);
  void send_json(const nlohmann::json& msg) { send_text(msg.dump()); }

  // Every message received so far (a copy).
  std::vector<WsMessage> messages() const;
  // Waits until a message after the first `from` matches `pred`; returns it (or nullopt on
  // timeout). `index` receives its position.
  std::optional<WsMessage> wait_for(const std::function<bool(const WsMessage&)>& pred,
                                    std::chrono::milliseconds timeout, size_t from = 0,
                                    size_t* index = nullptr) const;
  std::optional<nlohmann::json> wait_json(
      const std::function<bool(const nlohmann::json&)>& pred,
      std::chrono::milliseconds timeout = std::chrono::seconds(10), size_t from = 0) const;
  // Waits for the first JSON message of `type` after the first `from`.
  std::optional<nlohmann::json> wait_type(
      const std::string& type, std::chrono::milliseconds timeout = std::chrono::seconds(10),
      size_t from = 0) const;
  // Waits until the connection has ended; the close code the server sent (0 without one).
  std::optional<uint16_t> wait_closed(std::chrono::milliseconds timeout) const;
  bool closed() const;
  // Sends a close frame (1000) and waits briefly for the server's answer.
  void close();
  // Starts reading (for a client connected with read = false).
  void start_reading();
  // Drops the TCP connection without a close frame.
  void drop();

  class Impl;

 private:
  explicit WsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace atelier::testing
