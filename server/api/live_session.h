// LiveSession: one WebSocket connection speaking proto/websocket.md version 1 for one signed-in
// user: hello, subscriptions to projects (replay from the event log, then live), presence, and
// commands run through the REST router.
//
// Gap-free resume: a subscription joins its room before it reads the log, so every event
// committed after that read reaches it live; while it is still replaying, live events are not
// queued but only noted (the highest seq seen), and the replay reads on from the log until it
// has sent that far. Only then does the subscription go live, and from there it drops any event
// at or below the last seq it sent. Nothing is missed, nothing is sent twice, and a long replay
// never needs a buffer: it paces itself on the connection's queue (when_drained) instead.
//
// Revocation: the connection is watched (ctx.credential_watch) from on_open to on_close. Once
// the credential that opened it is revoked or expires, or its user is disabled, nothing more is
// sent on it and it closes with 1008 (within the watch's check interval for revocations made by
// another process). Every subscribe and cmd also checks the credential again.
//
// Threads: the WsHandler callbacks and the replay run on the connection's strand; the room
// delivers from the feed and worker threads into each subscription (a RoomMember) under the
// subscription's own lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "server/api/access.h"
#include "server/api/api_context.h"
#include "server/http/router.h"
#include "server/http/websocket.h"

namespace atelier::api {

constexpr int kLiveProtocolVersion = 1;
// Application close codes (proto/websocket.md).
constexpr uint16_t kCloseBadProto = 4001;
constexpr uint16_t kCloseNoHello = 4002;

class LiveSubscription;

// Where the upgrade came from, copied onto every command's internal request: the client and
// peer addresses (rate limits) and whether it came over https (the cookie name, the Origin check).
struct CommandSource {
  std::string remote_address;
  std::string peer_address;
  bool secure = false;
};

class LiveSession : public http::WsHandler, public std::enable_shared_from_this<LiveSession> {
 public:
  // `cmd_headers`: the credential and origin headers of the upgrade, replayed on every command's
  // internal request so that it is authenticated (and revoked) exactly like the connection.
  LiveSession(const ApiContext& ctx, const http::Router& router, Caller caller,
              http::Headers cmd_headers, CommandSource source, std::string session_id);

  void on_open(const std::shared_ptr<http::WsConnection>& connection) override;
  void on_message(std::string message, bool binary) override;
  void on_close() override;

 private:
  void handle_hello(const nlohmann::json& msg);
  void handle_subscribe(const nlohmann::json& msg);
  void handle_unsubscribe(const nlohmann::json& msg);
  void handle_presence(const nlohmann::json& msg);
  void handle_cmd(const nlohmann::json& msg);
  // Sends the next part of `sub`'s replay, then waits for the queue to drain before the next;
  // goes live once it has caught up with what the room has announced.
  void continue_replay(const std::shared_ptr<LiveSubscription>& sub);
  void end_subscription(int64_t project);
  void send_error(std::string_view code, std::string_view message, std::string_view field = {});
  void send(const nlohmann::json& msg);

  const ApiContext& ctx_;
  const http::Router& router_;
  const Caller caller_;
  const http::Headers cmd_headers_;
  const CommandSource source_;
  const std::string session_id_;
  std::shared_ptr<http::WsConnection> conn_;  // strand only; reset on close (breaks the cycle)
  bool greeted_ = false;
  std::map<int64_t, std::shared_ptr<LiveSubscription>> subs_;  // strand only
};

// The GET /api/v1/ws route: authenticates (401), checks Origin (403), requires an upgrade (426),
// then hands the connection to a LiveSession. `router` must be the one the route is added to.
Status register_live_routes(http::Router& router, const ApiContext& ctx);

}  // namespace atelier::api
