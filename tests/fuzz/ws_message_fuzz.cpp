// Fuzz target for what a WebSocket client sends to the live protocol (server/api/live_session.h,
// proto/websocket.md): one LiveSession per input, over a fake connection, a real Store, RoomHub
// and CommandLog, and a Router whose stub routes stand for the REST endpoints that `cmd` ops
// become.
//
// Input: messages separated by '\n' (JSON needs no raw line break), at most kMaxMessages; a
// message starting with 0x02 is sent as a binary frame. The user "fuzz" owns project 1, which
// has kEvents events (more than one replay chunk), and is no member of project 2.
//
// Oracles beyond "no crash, no sanitizer report":
//   - everything the server sends is one JSON object with a string "type"; errors carry string
//     "code" and "message"; acks carry the id of a cmd that was sent;
//   - a close uses one of the protocol's codes, and no message comes after the hello is refused;
//   - every command request the session builds reaches a route (the router never answers it
//     404/405/400 by itself);
//   - after on_close no room is left holding the session.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "server/api/live_commands.h"
#include "server/api/live_session.h"
#include "server/api/live_wire_json.h"
#include "server/auth/account_db.h"
#include "server/auth/token.h"
#include "server/projects/project_db.h"
#include "server/rooms/room_hub.h"
#include "server/store/store.h"

namespace {

using nlohmann::json;
namespace api = atelier::api;
namespace http = atelier::http;
using atelier::from_unix_s;
using atelier::Status;

constexpr size_t kMaxMessages = 32;
constexpr int kEvents = 300;
constexpr int64_t kNow = 1'800'000'000;  // Unix s: the credential is valid then

void check(bool ok) {
  if (!ok) std::abort();
}

// Records what the session sends. Thread-safe: the room delivers from its own thread.
class FakeConnection : public http::WsConnection {
 public:
  void send(http::OutMessage message) override {
    std::lock_guard lock(mu_);
    if (!message.binary && message.payload) sent_.push_back(*message.payload);
  }
  void close(uint16_t code, std::string, bool) override {
    std::lock_guard lock(mu_);
    if (close_code_ == 0) close_code_ = code;
  }
  void when_drained(size_t, std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    drained_ = std::move(fn);
  }
  const std::string& remote_address() const override { return remote_; }

  std::function<void()> take_drained() {
    std::lock_guard lock(mu_);
    return std::exchange(drained_, nullptr);
  }
  uint16_t close_code() {
    std::lock_guard lock(mu_);
    return close_code_;
  }
  std::vector<std::string> take_sent() {
    std::lock_guard lock(mu_);
    return std::exchange(sent_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> sent_;
  uint16_t close_code_ = 0;
  std::function<void()> drained_;
  const std::string remote_ = "127.0.0.1:1";
};

// The process-wide world: a database in a fresh directory, the room hub, the router.
struct World {
  std::filesystem::path dir;
  std::unique_ptr<atelier::store::Store> store;
  std::unique_ptr<atelier::rooms::RoomHub> hub;
  http::Router router;
  api::Caller caller;
  std::mutex routed_mu;
  int routed_errors = 0;  // requests the router answered without reaching a route

  World() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "atelier-ws-fuzz-XXXXXX");
    check(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    auto opened = atelier::store::Store::open({.path = dir / "atelier.db", .reader_count = 2});
    check(opened.is_ok());
    store = std::move(opened).value();
    const std::string secret_hash = atelier::auth::hash_secret("atl_s_fuzz");
    check(store
              ->write([&](atelier::store::Db& db) -> Status {
                namespace adb = atelier::auth::account_db;
                namespace pdb = atelier::projects::project_db;
                auto user = adb::insert_user(db, "fuzz", "x", false, from_unix_s(kNow - 10));
                if (!user.is_ok()) return user.status();
                auto other = adb::insert_user(db, "other", "x", false, from_unix_s(kNow - 10));
                if (!other.is_ok()) return other.status();
                auto cred =
                    adb::insert_credential(db, user->id, atelier::auth::CredentialKind::kSession,
                                           "s", atelier::auth::Scope::kAdmin, secret_hash,
                                           from_unix_s(kNow - 10), std::nullopt);
                if (!cred.is_ok()) return cred.status();
                auto mine = pdb::insert_project(db, "mine", "", user->id, from_unix_s(kNow - 10));
                if (!mine.is_ok()) return mine.status();
                auto theirs =
                    pdb::insert_project(db, "theirs", "", other->id, from_unix_s(kNow - 10));
                if (!theirs.is_ok()) return theirs.status();
                for (int i = 0; i < kEvents; ++i) {
                  auto seq = pdb::append_event(db, mine->id, "project.updated", user->id,
                                               R"({"name":"mine"})", from_unix_s(kNow - 5));
                  if (!seq.is_ok()) return seq.status();
                }
                return Status::ok();
              })
              .is_ok());
    check(store
              ->read([&](atelier::store::Db& db) -> Status {
                auto p =
                    atelier::auth::account_db::find_principal(db, secret_hash, from_unix_s(kNow));
                if (!p.is_ok() || !*p) return Status::internal("no principal");
                caller.principal = **p;
                caller.secret_hash = secret_hash;
                return Status::ok();
              })
              .is_ok());
    // Written against what the hub needs, not its exact types (the event path is changing): no
    // event is committed while fuzzing (replay reads the log), and no job reports steps, so the
    // event encoder and the preview clock are never asked for anything that matters. The rooms'
    // messages (presence, unsubscribed) are written by the server's own LiveWireJson.
    using Clock = atelier::rooms::PreviewThrottle::Clock;
    hub = std::make_unique<atelier::rooms::RoomHub>(
        atelier::rooms::RoomHubOptions{}, std::make_shared<atelier::api::LiveWireJson>(),
        [](const auto&) { return std::string("{}"); },
        [] { return std::invoke_result_t<Clock>{}; });
    hub->start();
    // Stubs for the REST routes of the cmd ops, answering at once as the real ones would.
    auto ok = [](int status) {
      return [status](const http::ExchangePtr& ex) {
        http::Response r;
        r.status = status;
        r.body = R"({"ok":true})";
        ex->respond(std::move(r));
      };
    };
    check(router
              .add(http::Method::kPost, "/api/v1/projects/{id:int}/jobs",
                   [](const http::ExchangePtr& ex) {
                     json body = json::parse(ex->request().body, nullptr, false);
                     check(body.is_object() && !body.contains("project"));
                     ex->respond(http::Response::error(400, "invalid_argument", "stub", "model"));
                   })
              .is_ok());
    check(router.add(http::Method::kPost, "/api/v1/jobs/{id:int}/cancel", ok(200)).is_ok());
    check(router.add(http::Method::kPut, "/api/v1/images/{id:int}/reactions/{emoji}", ok(200))
              .is_ok());
    check(router.add(http::Method::kDelete, "/api/v1/images/{id:int}/reactions/{emoji}", ok(204))
              .is_ok());
    router.use([this](const http::ExchangePtr& ex, const http::Next& next) {
      ex->on_response([this](http::Exchange& e, http::Response&) {
        if (e.route() == "unmatched") {
          std::lock_guard lock(routed_mu);
          ++routed_errors;
        }
      });
      next();
    });
  }
  ~World() {
    hub->stop();
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

World& world() {
  static World w;
  return w;
}

// Checks one message the server sent; records the ids of acks.
void check_sent(const std::string& text, std::set<std::string>* acked) {
  json msg = json::parse(text, nullptr, false);
  check(msg.is_object() && msg.contains("type") && msg["type"].is_string());
  const std::string& type = msg["type"].get_ref<const std::string&>();
  if (type == "error") {
    check(msg.contains("code") && msg["code"].is_string());
    check(msg.contains("message") && msg["message"].is_string());
  } else if (type == "ack") {
    check(msg.contains("id") && msg["id"].is_string() && msg.contains("ok"));
    acked->insert(msg["id"].get<std::string>());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  api::ApiContext ctx;
  ctx.store = w.store.get();
  ctx.rooms = w.hub.get();
  api::CommandLog commands([] { return kNow * 1000; });
  ctx.live_commands = &commands;
  ctx.now = [] { return from_unix_s(kNow); };
  w.routed_errors = 0;

  auto conn = std::make_shared<FakeConnection>();
  auto session = std::make_shared<api::LiveSession>(
      ctx, w.router, w.caller, http::Headers{},
      api::CommandSource{"127.0.0.1:1", "127.0.0.1:1", false}, "c1");
  session->on_open(conn);
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::set<std::string> cmd_ids, acked;
  for (size_t n = 0; n < kMaxMessages && !in.empty() && conn->close_code() == 0; ++n) {
    const size_t end = std::min(in.find('\n'), in.size());
    std::string message(in.substr(0, end));
    in.remove_prefix(std::min(end + 1, in.size()));
    const bool binary = !message.empty() && message[0] == '\x02';
    if (!binary) {
      json m = json::parse(message, nullptr, false);
      if (m.is_object() && m.value("type", json()) == "cmd" && m.contains("id") &&
          m["id"].is_string()) {
        cmd_ids.insert(m["id"].get<std::string>());
      }
    }
    session->on_message(std::move(message), binary);
    // The strand would run a paced replay once the queue drains; the fake drains at once.
    for (int rounds = 0; rounds < 8; ++rounds) {
      auto fn = conn->take_drained();
      if (!fn) break;
      fn();
    }
    for (const std::string& text : conn->take_sent()) check_sent(text, &acked);
  }
  const uint16_t code = conn->close_code();
  check(code == 0 || code == api::kCloseBadProto || code == api::kCloseNoHello ||
        code == http::kClosePolicy);
  session->on_close();
  w.hub->flush();
  for (const std::string& text : conn->take_sent()) check_sent(text, &acked);
  for (const std::string& id : acked) check(cmd_ids.contains(id));
  check(w.routed_errors == 0);
  for (int64_t project : {1, 2, 3}) check(w.hub->find(project) == nullptr);
  return 0;
}
