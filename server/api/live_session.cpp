#include "server/api/live_session.h"

#include <algorithm>
#include <atomic>
#include <span>
#include <vector>

#include "common/logging.h"
#include "common/mutex.h"
#include "server/api/api_json.h"
#include "server/api/credential_watch.h"
#include "server/api/errors.h"
#include "server/api/event_json.h"
#include "server/api/live_commands.h"
#include "server/api/live_wire_json.h"
#include "server/rooms/room_hub.h"

namespace atelier::api {

namespace pdb = projects::project_db;
using nlohmann::json;

namespace {

constexpr int64_t kReplayChunk = 256;  // events per log read while replaying
constexpr size_t kMaxPresenceBytes = 1024;
constexpr size_t kMaxCmdIdBytes = 64;
constexpr std::chrono::milliseconds kHelloTimeout{10'000};

std::optional<int64_t> int_field(const json& msg, const char* name) {
  auto it = msg.find(name);
  if (it == msg.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// The connection as the session and its subscriptions send on it: once the credential that
// opened it is revoked, nothing more goes out (credential_watch.h) and it closes with 1008,
// dropping what is still queued.
class WatchedConnection : public http::WsConnection {
 public:
  WatchedConnection(std::shared_ptr<http::WsConnection> inner, CredentialWatch& watch,
                    const auth::Principal& principal)
      : inner_(std::move(inner)),
        handle_(watch.watch(principal.credential_id, principal.user.id,
                            [weak = std::weak_ptr<http::WsConnection>(inner_)] {
                              if (auto c = weak.lock()) {
                                c->close(http::kClosePolicy, "credential revoked or expired",
                                         /*flush=*/false);
                              }
                            })) {}

  void send(http::OutMessage message) override {
    handle_->if_valid([&] { inner_->send(std::move(message)); });
  }
  void send_batch(std::span<const http::OutMessage> messages) override {
    handle_->if_valid([&] { inner_->send_batch(messages); });
  }
  void close(uint16_t code, std::string reason, bool flush) override {
    inner_->close(code, std::move(reason), flush);
  }
  void when_drained(size_t bytes, std::function<void()> fn) override {
    inner_->when_drained(bytes, std::move(fn));
  }
  const std::string& remote_address() const override { return inner_->remote_address(); }

 private:
  const std::shared_ptr<http::WsConnection> inner_;
  const std::unique_ptr<CredentialWatch::Handle> handle_;
};

}  // namespace

// One project subscribed on one connection: what the room sees of it.
class LiveSubscription : public rooms::RoomMember {
 public:
  LiveSubscription(std::weak_ptr<http::WsConnection> conn, int64_t project, int64_t user,
                   std::string username, int64_t after_seq)
      : conn_(std::move(conn)),
        project_(project),
        user_(user),
        username_(std::move(username)),
        last_sent_(after_seq) {}

  int64_t user_id() const override { return user_; }
  const std::string& username() const override { return username_; }
  int64_t project() const { return project_; }

  void deliver(const rooms::OutMessage& message) override {
    deliver_batch(std::span<const rooms::OutMessage>(&message, 1));
  }

  // Sends under mu_ (so the replay and live delivery stay in seq order): mu_ comes before the
  // connection's own locks.
  void deliver_batch(std::span<const rooms::OutMessage> messages) override ATELIER_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto conn = conn_.lock();
    if (!conn) return;
    // Usually every message goes: the span is passed on as it is. Otherwise the ones that go.
    std::vector<rooms::OutMessage> some;
    size_t admitted = 0;
    for (const auto& m : messages) {
      const bool go = admit_locked(m);
      if (go && admitted == static_cast<size_t>(&m - messages.data())) {
        ++admitted;
        continue;
      }
      if (some.empty()) some.assign(messages.begin(), messages.begin() + admitted);
      if (go) some.push_back(m);
    }
    if (admitted == messages.size()) {
      conn->send_batch(messages);
    } else if (!some.empty()) {
      conn->send_batch(some);
    }
  }

  // Replay side (the connection's strand).
  int64_t last_sent() const ATELIER_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return last_sent_;
  }
  // Sends a replayed event and returns its size; nullopt once the subscription has ended.
  std::optional<size_t> send_replayed(const projects::Event& e) ATELIER_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto conn = conn_.lock();
    if (ended_ || !conn) return std::nullopt;
    if (e.seq <= last_sent_) return 0;
    last_sent_ = e.seq;
    rooms::OutMessage m{
        std::make_shared<const std::string>(event_message(e.project_id, event_json(e).dump())),
        false,
        rooms::OutMessage::Kind::kDurable,
        {},
        e.seq};
    const size_t bytes = m.bytes();
    conn->send(std::move(m));
    return bytes;
  }
  // Goes live if the replay has sent everything the room announced meanwhile.
  bool try_go_live() ATELIER_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (live_max_ > last_sent_) return false;
    replaying_ = false;
    return true;
  }
  bool ended() const ATELIER_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return ended_;
  }
  void end() ATELIER_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    ended_ = true;
  }

 private:
  const std::weak_ptr<http::WsConnection> conn_;
  const int64_t project_;
  const int64_t user_;
  const std::string username_;
  mutable Mutex mu_;
  int64_t last_sent_ ATELIER_GUARDED_BY(mu_);
  int64_t live_max_ ATELIER_GUARDED_BY(mu_) = 0;  // highest seq announced while replaying
  bool replaying_ ATELIER_GUARDED_BY(mu_) = true;
  bool ended_ ATELIER_GUARDED_BY(mu_) = false;

  // Whether a live message goes to this subscription; keeps the replay's bookkeeping.
  bool admit_locked(const rooms::OutMessage& message) ATELIER_REQUIRES(mu_) {
    if (ended_) return false;
    if (message.kind != rooms::OutMessage::Kind::kDurable) return true;
    if (message.seq == 0) {
      ended_ = true;  // the room ended this subscription ("unsubscribed"): say so, then stop
      return true;
    }
    if (replaying_) {
      live_max_ = std::max(live_max_, message.seq);  // the replay reads it from the log
      return false;
    }
    if (message.seq <= last_sent_) return false;  // already sent by the replay
    last_sent_ = message.seq;
    return true;
  }
};

LiveSession::LiveSession(const ApiContext& ctx, const http::Router& router, Caller caller,
                         http::Headers cmd_headers, CommandSource source, std::string session_id)
    : ctx_(ctx),
      router_(router),
      caller_(std::move(caller)),
      cmd_headers_(std::move(cmd_headers)),
      source_(std::move(source)),
      session_id_(std::move(session_id)) {}

void LiveSession::on_open(const std::shared_ptr<http::WsConnection>& connection) {
  // Registered before any message is handled: the credential check of every subscribe comes
  // after it, so a revocation is seen either there or by the watch.
  if (ctx_.credential_watch) {
    conn_ =
        std::make_shared<WatchedConnection>(connection, *ctx_.credential_watch, caller_.principal);
  } else {
    conn_ = connection;
  }
}

void LiveSession::on_close() {
  for (auto& [project, sub] : subs_) {
    sub->end();
    ctx_.rooms->leave(project, sub.get());
  }
  subs_.clear();
  conn_.reset();
}

void LiveSession::send(const json& msg) {
  if (conn_) conn_->send_text(msg.dump());
}

void LiveSession::send_error(std::string_view code, std::string_view message,
                             std::string_view field) {
  json msg = {{"type", "error"}, {"code", code}, {"message", message}};
  if (!field.empty()) msg["field"] = field;
  send(msg);
}

void LiveSession::on_message(std::string text, bool binary) {
  if (!conn_) return;
  if (binary) return send_error("bad_message", "binary messages are not accepted from clients");
  json msg = json::parse(text, nullptr, false);
  if (msg.is_discarded() || !msg.is_object()) {
    if (!greeted_) {
      send_error("hello_required", "the first message must be hello");
      return conn_->close(kCloseNoHello, "expected hello", true);
    }
    return send_error("bad_message", "a message must be one JSON object");
  }
  auto type = msg.find("type");
  if (type == msg.end() || !type->is_string()) {
    return send_error("bad_message", "a message needs a string field 'type'", "type");
  }
  const std::string& t = type->get_ref<const std::string&>();
  if (!greeted_ && t != "hello") {
    send_error("hello_required", "the first message must be hello");
    return conn_->close(kCloseNoHello, "expected hello", true);
  }
  if (t == "hello") return handle_hello(msg);
  if (t == "subscribe") return handle_subscribe(msg);
  if (t == "unsubscribe") return handle_unsubscribe(msg);
  if (t == "presence") return handle_presence(msg);
  if (t == "cmd") return handle_cmd(msg);
  send_error("unknown_type", "unknown message type '" + t + "'", "type");
}

void LiveSession::handle_hello(const json& msg) {
  if (greeted_) return send_error("bad_message", "hello was already sent");
  auto proto = int_field(msg, "proto");
  if (!proto || *proto != kLiveProtocolVersion) {
    send_error("unsupported_proto", "this server speaks protocol 1", "proto");
    return conn_->close(kCloseBadProto, "unsupported protocol version", true);
  }
  greeted_ = true;
  send({{"type", "welcome"},
        {"proto", kLiveProtocolVersion},
        {"user", user_json(caller_.principal.user)},
        {"session", session_id_}});
}

void LiveSession::handle_subscribe(const json& msg) {
  auto project = int_field(msg, "project");
  if (!project || *project <= 0) {
    return send_error("invalid_argument", "project must be a positive integer id", "project");
  }
  auto after = msg.contains("after_seq") ? int_field(msg, "after_seq") : std::optional<int64_t>(0);
  if (!after || *after < 0) {
    return send_error("invalid_argument", "after_seq must be an integer >= 0", "after_seq");
  }
  // Subscribing again restarts the subscription from the new after_seq.
  if (subs_.contains(*project)) end_subscription(*project);

  projects::Role role = projects::Role::kViewer;
  int64_t head = 0;
  bool signed_in = true;
  Status st = ctx_.store->read([&](store::Db& db) -> Status {
    // The credential the connection was opened with must still be valid (not logged out, not
    // revoked, not expired): a subscription is a new look into a project.
    auto principal = auth::account_db::find_principal(db, caller_.secret_hash, ctx_.now());
    if (!principal.is_ok()) return principal.status();
    if (!*principal) {
      signed_in = false;
      return Status::ok();
    }
    auto r = authorize_project(db, caller_, *project, auth::Scope::kRead, projects::Role::kViewer);
    if (!r.is_ok()) return r.status();
    role = *r;
    auto h = pdb::head_seq(db, *project);
    if (!h.is_ok()) return h.status();
    head = *h;
    return Status::ok();
  });
  if (st.is_ok() && !signed_in) {
    send_error("unauthenticated", "the credential was revoked or has expired: sign in again");
    return conn_->close(http::kClosePolicy, "credential revoked or expired", true);
  }
  if (!st.is_ok()) {
    // The REST vocabulary; a 500's detail stays in the log, as for REST.
    const HttpError e = http_error_for(st);
    if (e.http_status >= 500) log::error("subscribe to project {}: {}", *project, st.to_string());
    return send_error(e.code,
                      e.http_status >= 500                 ? "cannot subscribe right now"
                      : st.code() == StatusCode::kNotFound ? "no such project"
                                                           : st.message(),
                      "project");
  }
  send({{"type", "subscribed"},
        {"project", *project},
        {"role", projects::role_name(role)},
        {"head_seq", head}});
  auto sub = std::make_shared<LiveSubscription>(conn_, *project, caller_.principal.user.id,
                                                caller_.principal.user.username, *after);
  subs_[*project] = sub;
  ctx_.rooms->join(*project, sub);  // before the log is read: see the header
  continue_replay(sub);
}

void LiveSession::continue_replay(const std::shared_ptr<LiveSubscription>& sub) {
  if (!conn_ || sub->ended()) return;
  const int64_t project = sub->project();
  std::vector<projects::Event> events;
  bool member = true;
  Status st = ctx_.store->read([&](store::Db& db) -> Status {
    // Membership again, now that the subscription is in the room: a removal committed before
    // this read is seen here, one committed after it reaches the room.
    auto role = pdb::member_role(db, project, caller_.principal.user.id);
    if (!role.is_ok()) return role.status();
    if (!*role) {
      member = false;
      return Status::ok();
    }
    auto e = pdb::list_events(db, project, sub->last_sent(), kReplayChunk);
    if (!e.is_ok()) return e.status();
    events = std::move(*e);
    return Status::ok();
  });
  if (!st.is_ok() || !member) {
    end_subscription(project);
    if (!member) {
      if (conn_) conn_->send_text(LiveWireJson().unsubscribed(project, "removed"));
    } else {
      send_error("unavailable", "cannot read the project's events right now: subscribe again",
                 "project");
    }
    return;
  }
  // At most half the queue per round: the rest stays free for what else this connection must
  // not lose (acks, the next subscription's answer), so a replay never overflows it.
  const size_t budget = ctx_.ws_options.max_queue_bytes / 2;
  size_t sent_bytes = 0;
  bool all_sent = true;
  for (const auto& e : events) {
    if (sent_bytes > 0 && sent_bytes + e.data_json.size() + 256 > budget) {
      all_sent = false;
      break;
    }
    auto bytes = sub->send_replayed(e);
    if (!bytes) return;
    sent_bytes += *bytes;
  }
  if (all_sent && static_cast<int64_t>(events.size()) < kReplayChunk && sub->try_go_live()) {
    return;
  }
  // More to send: once the queue has room for another chunk (it holds only this connection's
  // messages, so waiting here delays nobody else).
  std::weak_ptr<LiveSession> weak = weak_from_this();
  conn_->when_drained(ctx_.ws_options.max_queue_bytes / 4, [weak, sub] {
    if (auto self = weak.lock()) self->continue_replay(sub);
  });
}

void LiveSession::end_subscription(int64_t project) {
  auto it = subs_.find(project);
  if (it == subs_.end()) return;
  it->second->end();
  ctx_.rooms->leave(project, it->second.get());
  subs_.erase(it);
}

void LiveSession::handle_unsubscribe(const json& msg) {
  auto project = int_field(msg, "project");
  if (!project || !subs_.contains(*project)) {
    return send_error("not_subscribed", "not subscribed to that project", "project");
  }
  end_subscription(*project);
  if (conn_) conn_->send_text(LiveWireJson().unsubscribed(*project, "requested"));
}

void LiveSession::handle_presence(const json& msg) {
  auto project = int_field(msg, "project");
  auto it = project ? subs_.find(*project) : subs_.end();
  if (it == subs_.end() || it->second->ended()) {
    return send_error("not_subscribed", "subscribe to the project first", "project");
  }
  auto state = msg.find("state");
  if (state == msg.end() || !state->is_object()) {
    return send_error("invalid_argument", "state must be an object", "state");
  }
  std::string text = state->dump();
  if (text.size() > kMaxPresenceBytes) {
    return send_error("invalid_argument", "state must be at most 1 KiB as JSON", "state");
  }
  // The room keeps the text as it is (an empty object: no state) for LiveWireJson to write.
  if (auto room = ctx_.rooms->find(*project)) {
    room->set_presence(it->second.get(), state->empty() ? std::string() : std::move(text));
  }
}

void LiveSession::handle_cmd(const json& msg) {
  auto id_it = msg.find("id");
  if (id_it == msg.end() || !id_it->is_string() || id_it->get_ref<const std::string&>().empty() ||
      id_it->get_ref<const std::string&>().size() > kMaxCmdIdBytes) {
    return send_error("invalid_argument", "cmd needs an id: a string of 1 to 64 bytes", "id");
  }
  const std::string id = id_it->get<std::string>();
  auto op_it = msg.find("op");
  const std::string op = op_it != msg.end() && op_it->is_string() ? op_it->get<std::string>() : "";
  auto args_it = msg.find("args");
  const json args = args_it != msg.end() ? *args_it : json::object();
  auto request = command_request(op, args);
  if (!request.is_ok()) {
    return conn_->send_text(ack_error_json(id, "invalid_argument", request.status().message(),
                                           request.status().field()));
  }

  std::weak_ptr<http::WsConnection> weak_conn = conn_;
  const int64_t user = caller_.principal.user.id;
  auto sink = [weak_conn](const std::string& ack) {
    if (auto c = weak_conn.lock()) c->send_text(ack);
  };
  if (!ctx_.live_commands->begin(user, id, sink)) return;  // a resend: the first run answers

  http::Request req = std::move(*request);
  for (const auto& f : cmd_headers_) req.headers.set(f.name, f.value);
  // A resend after a restart (when this log is gone) still submits once: REST's idempotency.
  if (op == "job.submit") req.headers.set("Idempotency-Key", "ws:" + id);
  req.remote_address = source_.remote_address;
  req.peer_address = source_.peer_address;
  req.secure = source_.secure;
  CommandLog* log = ctx_.live_commands;
  auto exchange = std::make_shared<http::Exchange>(
      std::move(req), [log, user, id, weak_conn](http::Response response) {
        log->finish(user, id, ack_json(id, response));
        if (response.status == 401) {
          if (auto c = weak_conn.lock()) {
            c->close(http::kClosePolicy, "credential revoked or expired", true);
          }
        }
      });
  router_.dispatch(exchange);
}

// ---------------------------------------------------------------------------------------------
// The route

Status register_live_routes(http::Router& router, const ApiContext& ctx) {
  static std::atomic<uint64_t> next_session{1};
  return router.add(http::Method::kGet, "/api/v1/ws", [&ctx, &router](const http::ExchangePtr& ex) {
    if (!ctx.rooms || !ctx.live_commands || !ctx.store) {
      return ex->respond(http::Response::error(503, "unavailable", "live rooms are not running"));
    }
    auto caller = require_caller(*ex);
    if (!caller.is_ok()) return respond_error(ex, caller.status());
    const http::Request& req = ex->request();
    std::string origin(req.headers.get("Origin").value_or(""));
    if (req.headers.has("Origin") && !origin_allowed(ctx, req, origin)) {
      return ex->respond(http::Response::error(
          403, "forbidden", "cross-origin WebSocket refused: Origin is not trusted", "Origin"));
    }
    if (!http::is_websocket_upgrade(req)) {
      http::Response r = http::Response::error(
          426, "upgrade_required", "GET /api/v1/ws must be a WebSocket upgrade (version 13)");
      r.headers.set("Upgrade", "websocket");
      return ex->respond(std::move(r));
    }
    // What each command's internal request carries: the same credential, and an Origin the
    // cookie check accepts (the upgrade's own, already checked, or this server's).
    http::Headers cmd_headers;
    for (const char* name : {"Authorization", "Cookie", "Host"}) {
      if (auto v = req.headers.get(name)) cmd_headers.set(name, *v);
    }
    cmd_headers.set("Origin", origin.empty() ? request_origin(ctx, req) : origin);
    auto handler = std::make_shared<LiveSession>(
        ctx, router, **caller, std::move(cmd_headers),
        CommandSource{req.remote_address, req.peer_address, req.secure},
        "c" + std::to_string(next_session.fetch_add(1)));
    http::WsOptions options = ctx.ws_options;
    if (options.first_message_timeout.count() <= 0) options.first_message_timeout = kHelloTimeout;
    options.first_message_close_code = kCloseNoHello;
    http::Response r;
    r.status = 101;
    r.websocket = std::make_shared<http::WsAccept>(http::WsAccept{handler, options});
    ex->respond(std::move(r));
  });
}

}  // namespace atelier::api
