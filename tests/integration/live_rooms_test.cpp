// Live project rooms over WebSocket (proto/websocket.md) against an in-process server, with
// several real WebSocket clients: one ordered event stream for every member, progress and
// previews of everyone's jobs, gap-free resume, refusals, commands, and slow readers. Every test
// runs in both WebSocket write modes (the ws_direct_writes fast path, and plain Beast writes).
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "server/rooms/preview.h"
#include "tests/integration/job_test_helpers.h"
#include "tests/support/ws_client.h"

namespace atelier::apitest {
namespace {

using nlohmann::json;
using testing::WsClient;
using namespace std::chrono_literals;

// The parameter: ServerConfig::ws_direct_writes.
class LiveRoomsTest : public ProjectServerTest, public ::testing::WithParamInterface<bool> {
 protected:
  void start(int64_t ws_queue_bytes = 1 << 20, int64_t preview_interval_ms = 0,
             int64_t null_step_ms = 5) {
    ServerConfig c = test_config(dir_);
    c.data_dir = dir_ / ("data" + std::to_string(starts_++));  // a fresh server each time
    c.enable_null_model = true;
    c.null_step_ms = null_step_ms;
    c.preview_interval_ms = preview_interval_ms;
    c.ws_queue_bytes = ws_queue_bytes;
    c.ws_direct_writes = GetParam();
    ProjectServerTest::start(c);
  }
  void SetUp() override { start(); }

  std::unique_ptr<WsClient> connect(const Account& who, bool read = true) {
    auto c = WsClient::connect(port_, "/api/v1/ws", {{bearer(who.token)}, read});
    if (!c) throw std::runtime_error("cannot connect as " + who.username);
    return c;
  }
  // Connected, greeted and subscribed to the project from `after_seq`.
  std::unique_ptr<WsClient> join(const Account& who, int64_t after_seq = 0) {
    auto c = connect(who);
    c->send_json({{"type", "hello"}, {"proto", 1}});
    if (!c->wait_type("welcome")) throw std::runtime_error("no welcome for " + who.username);
    c->send_json({{"type", "subscribe"}, {"project", project_}, {"after_seq", after_seq}});
    if (!c->wait_type("subscribed")) throw std::runtime_error("not subscribed: " + who.username);
    return c;
  }

  // The project's log as REST lists it.
  json rest_events() {
    json out = json::array();
    for (;;) {
      const int64_t after = out.empty() ? 0 : out.back()["seq"].get<int64_t>();
      auto r = call(port_, "GET",
                    project_path(project_, "/events?limit=500&after=" + std::to_string(after)), "",
                    bearer(owner_.token));
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200 || r.json["events"].empty()) return out;
      for (const auto& e : r.json["events"]) out.push_back(e);
    }
  }
  // The `event` objects a client received, in order.
  static json received_events(const WsClient& c, int64_t project) {
    json out = json::array();
    for (const auto& m : c.messages()) {
      if (!m.binary && m.json.value("type", "") == "event" && m.json["project"] == project) {
        out.push_back(m.json["event"]);
      }
    }
    return out;
  }
  // Waits until the client has received the event with `seq`.
  static bool wait_seq(const WsClient& c, int64_t seq, std::chrono::milliseconds t = 20s) {
    return c
        .wait_json([&](const json& m) { return m["type"] == "event" && m["event"]["seq"] == seq; },
                   t)
        .has_value();
  }
  int64_t head_seq() { return rest_events().back()["seq"].get<int64_t>(); }
  // Follows the project like a real client until it has seen `head`: on close code 4000 it
  // reconnects from the last seq it saw. Every connection must continue exactly where the last
  // one stopped (no gap, no repeat); returns the events of all of them, in order.
  json follow(std::unique_ptr<WsClient> c, const Account& who, int64_t head, int& resumes) {
    json events = json::array();
    int64_t last = 0;
    for (;;) {
      const bool caught_up = wait_seq(*c, head, 30s);
      for (const auto& e : received_events(*c, project_)) {
        EXPECT_EQ(e["seq"], last + 1) << "a gap or a repeat across a resume";
        last = e["seq"].get<int64_t>();
        events.push_back(e);
      }
      if (caught_up) return events;
      auto code = c->wait_closed(1s);
      if (code != std::optional<uint16_t>(4000) || resumes > 20) {
        ADD_FAILURE() << "stopped at seq " << last << ", close code " << (code ? *code : -1);
        return events;
      }
      ++resumes;
      c = join(who, last);
    }
  }

  // A `cmd` submitting a null-model job to the project.
  json submit_cmd(const std::string& id, const std::string& prompt) const {
    return {{"type", "cmd"},
            {"id", id},
            {"op", "job.submit"},
            {"args", {{"project", project_}, {"model", "null"}, {"prompt", prompt}}}};
  }

  int starts_ = 0;
};

TEST_P(LiveRoomsTest, RefusesBeforeTheUpgradeWithoutCredentialsOrFromAForeignOrigin) {
  WsClient::Refused refused;
  EXPECT_EQ(WsClient::connect(port_, "/api/v1/ws", {}, &refused), nullptr);
  EXPECT_EQ(refused.status, 401) << refused.body;

  refused = {};
  EXPECT_EQ(WsClient::connect(port_, "/api/v1/ws",
                              {{bearer(owner_.token), "Origin: http://evil.example"}}, &refused),
            nullptr);
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("Origin"), std::string::npos) << refused.body;

  // The server's own origin, and scripts that send none, are welcome.
  EXPECT_NE(WsClient::connect(
                port_, "/api/v1/ws",
                {{cookie(owner_.token), "Origin: http://127.0.0.1:" + std::to_string(port_)}}),
            nullptr);
  EXPECT_NE(WsClient::connect(port_, "/api/v1/ws", {{bearer(owner_.token)}}), nullptr);

  auto plain = call(port_, "GET", "/api/v1/ws", "", bearer(owner_.token));
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(plain.error_code(), "upgrade_required");
}

TEST_P(LiveRoomsTest, HelloFirstWithAKnownProtocolVersion) {
  auto c = connect(owner_);
  c->send_json({{"type", "hello"}, {"proto", 1}});
  auto welcome = c->wait_type("welcome");
  ASSERT_TRUE(welcome);
  EXPECT_EQ((*welcome)["proto"], 1);
  EXPECT_EQ((*welcome)["user"]["username"], "owner");
  EXPECT_TRUE((*welcome)["session"].is_string());

  auto future = connect(owner_);
  future->send_json({{"type", "hello"}, {"proto", 2}});
  EXPECT_TRUE(future->wait_type("error"));
  EXPECT_EQ(future->wait_closed(5s), std::optional<uint16_t>(4001));

  auto rude = connect(owner_);
  rude->send_json({{"type", "subscribe"}, {"project", project_}});
  EXPECT_EQ(rude->wait_closed(5s), std::optional<uint16_t>(4002));
  EXPECT_EQ(received_events(*rude, project_).size(), 0u);
}

TEST_P(LiveRoomsTest, EveryMemberSeesTheSameOrderedEventsProgressAndPreviews) {
  auto a = join(owner_);
  auto b = join(editor_);
  auto v = join(viewer_);
  std::vector<int64_t> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(
        submit_ok(port_, owner_.token, project_,
                  {{"model", "null"}, {"prompt", "owner " + std::to_string(i)}, {"steps", 6}}));
    jobs.push_back(
        submit_ok(port_, editor_.token, project_,
                  {{"model", "null"}, {"prompt", "editor " + std::to_string(i)}, {"steps", 6}}));
  }
  for (int64_t job : jobs) ASSERT_EQ(wait_terminal(port_, owner_.token, job)["state"], "done");
  const json log = rest_events();
  const int64_t head = log.back()["seq"];
  for (auto* c : {a.get(), b.get(), v.get()}) ASSERT_TRUE(wait_seq(*c, head));

  // Exactly the log, in order, identical objects, for everyone.
  EXPECT_EQ(received_events(*a, project_), log);
  EXPECT_EQ(received_events(*b, project_), log);
  EXPECT_EQ(received_events(*v, project_), log);
  for (size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i]["seq"], static_cast<int64_t>(i + 1));

  // Progress and previews of every job, whoever submitted it, reach every member.
  for (auto* c : {a.get(), b.get(), v.get()}) {
    std::set<int64_t> progressed, previewed;
    for (const auto& m : c->messages()) {
      if (m.binary) {
        auto h = rooms::parse_preview_header(m.data);
        ASSERT_TRUE(h.is_ok()) << h.status().to_string();
        EXPECT_EQ(h->project, project_);
        EXPECT_EQ(h->format, rooms::PreviewFormat::kJpeg);
        EXPECT_GT(m.data.size(), rooms::kPreviewHeaderBytes);
        previewed.insert(h->job);
      } else if (m.json.value("type", "") == "progress") {
        EXPECT_EQ(m.json["project"], project_);
        EXPECT_EQ(m.json["steps"], 6);
        progressed.insert(m.json["job"].get<int64_t>());
      }
    }
    EXPECT_EQ(progressed, std::set<int64_t>(jobs.begin(), jobs.end()));
    EXPECT_EQ(previewed, std::set<int64_t>(jobs.begin(), jobs.end()));
  }
}

// The preview throttle follows the job's own events (issue 18; it used to miss them, so a job's
// first steps got previews at once): the first preview comes one interval after job.started,
// at most one per interval after that, and none once the job is done.
TEST_P(LiveRoomsTest, PreviewsStartOneIntervalAfterTheJobStartsAndStopAtItsEnd) {
  start(1 << 20, /*preview_interval_ms=*/300, /*null_step_ms=*/40);
  auto a = join(owner_);
  const int64_t job = submit_ok(port_, owner_.token, project_,
                                {{"model", "null"}, {"prompt", "slow"}, {"steps", 20}});
  ASSERT_EQ(wait_terminal(port_, owner_.token, job)["state"], "done");
  ASSERT_TRUE(wait_seq(*a, rest_events().back()["seq"].get<int64_t>()));
  std::vector<uint32_t> preview_steps;
  bool done = false;
  int after_done = 0;
  for (const auto& m : a->messages()) {
    if (m.binary) {
      auto h = rooms::parse_preview_header(m.data);
      ASSERT_TRUE(h.is_ok());
      if (h->job != job) continue;
      preview_steps.push_back(h->step);
      if (done) ++after_done;
    } else if (m.json.value("type", "") == "event" &&
               m.json["event"].value("type", "") == "job.done") {
      done = true;
    }
  }
  // 20 steps of 40 ms: about 800 ms, so two previews (steps ~8 and ~15) on time.
  ASSERT_FALSE(preview_steps.empty()) << "the job outlasts one interval";
  EXPECT_GE(preview_steps.front(), 3u) << "the first steps come before one interval has passed";
  EXPECT_LE(preview_steps.size(), 3u) << "at most one preview per 300 ms";
  EXPECT_EQ(after_done, 0);
}

TEST_P(LiveRoomsTest, AClientThatReconnectsWithAfterSeqMissesNothingAndGetsNothingTwice) {
  // A small queue makes the replay take many rounds, so live events arrive while it runs.
  start(16 << 10);
  auto watcher = join(owner_);  // stays connected throughout: the reference
  auto roamer = join(editor_);
  int64_t first = submit_ok(port_, owner_.token, project_, {{"model", "null"}, {"prompt", "a"}});
  ASSERT_EQ(wait_terminal(port_, owner_.token, first)["state"], "done");
  const int64_t seen = head_seq();
  ASSERT_TRUE(wait_seq(*roamer, seen));
  json before = received_events(*roamer, project_);
  roamer->drop();

  // While it is away, and while it replays, jobs keep coming.
  std::vector<int64_t> jobs;
  const std::string prompt(1500, 'b');
  for (int i = 0; i < 30; ++i) {
    jobs.push_back(submit_ok(port_, editor_.token, project_,
                             {{"model", "null"}, {"prompt", prompt}, {"steps", 8}}));
  }
  auto back = join(editor_, before.back()["seq"].get<int64_t>());
  for (int i = 0; i < 10; ++i) {
    jobs.push_back(submit_ok(port_, owner_.token, project_,
                             {{"model", "null"}, {"prompt", prompt}, {"steps", 8}}));
  }
  for (int64_t job : jobs) ASSERT_EQ(wait_terminal(port_, owner_.token, job)["state"], "done");
  const json log = rest_events();
  ASSERT_TRUE(wait_seq(*back, log.back()["seq"]));
  ASSERT_TRUE(wait_seq(*watcher, log.back()["seq"]));

  json stitched = before;
  for (const auto& e : received_events(*back, project_)) stitched.push_back(e);
  EXPECT_EQ(stitched, log) << "the two connections together must be exactly the log";
  EXPECT_EQ(received_events(*watcher, project_), log);
}

TEST_P(LiveRoomsTest, ALongLogIsReplayedInFullThroughASmallQueue) {
  start(16 << 10);  // the smallest queue allowed: the replay must pace itself, not overflow
  const std::string prompt(1500, 'p');
  std::vector<int64_t> jobs;
  for (int i = 0; i < 40; ++i) {
    jobs.push_back(
        submit_ok(port_, owner_.token, project_, {{"model", "null"}, {"prompt", prompt}}));
  }
  for (int64_t job : jobs) ASSERT_EQ(wait_terminal(port_, owner_.token, job)["state"], "done");
  auto c = join(viewer_);
  const json log = rest_events();
  ASSERT_TRUE(wait_seq(*c, log.back()["seq"]))
      << "received " << received_events(*c, project_).size();
  EXPECT_EQ(received_events(*c, project_), log);
  EXPECT_FALSE(c->closed());
}

TEST_P(LiveRoomsTest, NonMembersCannotSubscribeAndLearnNothing) {
  auto c = connect(stranger_);
  c->send_json({{"type", "hello"}, {"proto", 1}});
  ASSERT_TRUE(c->wait_type("welcome"));
  c->send_json({{"type", "subscribe"}, {"project", project_}, {"after_seq", 0}});
  auto err = c->wait_type("error");
  ASSERT_TRUE(err);
  EXPECT_EQ((*err)["code"], "not_found");
  EXPECT_EQ((*err)["field"], "project");
  // Same answer as for a project that does not exist.
  c->send_json({{"type", "subscribe"}, {"project", project_ + 1000}, {"after_seq", 0}});
  size_t idx = 0;
  ASSERT_TRUE(
      c->wait_for([](const auto& m) { return m.json.value("type", "") == "error"; }, 5s, 2, &idx));
  EXPECT_EQ(c->messages()[idx].json["code"], "not_found");

  submit_ok(port_, owner_.token, project_, {{"model", "null"}, {"prompt", "secret"}});
  // A member subscribed afterwards sees the job; the stranger never does.
  auto member = join(owner_);
  ASSERT_TRUE(member->wait_type("event"));
  for (const auto& m : c->messages()) {
    EXPECT_NE(m.json.value("type", ""), "event") << m.data;
    EXPECT_NE(m.json.value("type", ""), "progress") << m.data;
    EXPECT_FALSE(m.binary);
  }
}

TEST_P(LiveRoomsTest, CommandsRunAsRestWithTheSamePermissions) {
  auto viewer = join(viewer_);
  viewer->send_json(submit_cmd("v1", "no"));
  auto refused = viewer->wait_type("ack");
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)["id"], "v1");
  EXPECT_EQ((*refused)["ok"], false);
  EXPECT_EQ((*refused)["error"]["code"], "forbidden");

  auto editor = join(editor_);
  editor->send_json(submit_cmd("e1", "yes"));
  auto ack = editor->wait_type("ack");
  ASSERT_TRUE(ack);
  ASSERT_EQ((*ack)["ok"], true) << ack->dump();
  const int64_t job = (*ack)["result"]["id"];
  EXPECT_EQ((*ack)["result"]["prompt"], "yes");
  auto done = wait_terminal(port_, editor_.token, job);
  ASSERT_EQ(done["state"], "done");

  // A reaction by command is the same durable event everyone sees.
  const int64_t image = done["images"][0]["id"];
  editor->send_json({{"type", "cmd"},
                     {"id", "e2"},
                     {"op", "reaction.set"},
                     {"args", {{"image", image}, {"emoji", "👍"}}}});
  auto reacted = viewer->wait_json(
      [](const json& m) { return m["type"] == "event" && m["event"]["type"] == "reaction.set"; });
  ASSERT_TRUE(reacted);
  EXPECT_EQ((*reacted)["event"]["data"]["counts"]["👍"], 1);

  // Bad arguments are refused before anything runs, naming the field.
  editor->send_json(
      {{"type", "cmd"}, {"id", "e3"}, {"op", "job.cancel"}, {"args", {{"job", "x"}}}});
  auto bad = editor->wait_json([](const json& m) { return m["type"] == "ack" && m["id"] == "e3"; });
  ASSERT_TRUE(bad);
  EXPECT_EQ((*bad)["error"]["field"], "args.job");
  editor->send_json(
      {{"type", "cmd"}, {"id", "e4"}, {"op", "project.nuke"}, {"args", json::object()}});
  bad = editor->wait_json([](const json& m) { return m["type"] == "ack" && m["id"] == "e4"; });
  ASSERT_TRUE(bad);
  EXPECT_EQ((*bad)["error"]["field"], "op");
}

TEST_P(LiveRoomsTest, ACommandResentWithTheSameIdRunsOnce) {
  const json cmd = submit_cmd("submit-once", "once");
  auto c = join(editor_);
  c->send_json(cmd);
  c->send_json(cmd);
  auto first = c->wait_type("ack");
  ASSERT_TRUE(first);
  size_t idx = 0;
  ASSERT_TRUE(
      c->wait_for([](const auto& m) { return m.json.value("type", "") == "ack"; }, 10s, 0, &idx));
  auto second = c->wait_json([](const json& m) { return m["type"] == "ack"; }, 10s, idx + 1);
  ASSERT_TRUE(second);
  EXPECT_EQ((*first)["result"]["id"], (*second)["result"]["id"]);

  // And again from a new connection (a client that reconnected before it saw the ack).
  c->drop();
  auto again = join(editor_);
  again->send_json(cmd);
  auto third = again->wait_type("ack");
  ASSERT_TRUE(third);
  EXPECT_EQ((*third)["result"]["id"], (*first)["result"]["id"]);

  int queued = 0;
  for (const auto& e : rest_events()) queued += e["type"] == "job.queued" ? 1 : 0;
  EXPECT_EQ(queued, 1);
}

TEST_P(LiveRoomsTest, ARemovedMembersSubscriptionEndsAtOnce) {
  auto editor = join(editor_);
  auto owner = join(owner_);
  ASSERT_EQ(
      call(port_, "DELETE", member_path(project_, editor_.id), "", bearer(owner_.token)).status,
      204);
  auto gone = editor->wait_type("unsubscribed");
  ASSERT_TRUE(gone);
  EXPECT_EQ((*gone)["project"], project_);
  EXPECT_EQ((*gone)["reason"], "removed");

  const int64_t job =
      submit_ok(port_, owner_.token, project_, {{"model", "null"}, {"prompt", "after"}});
  wait_terminal(port_, owner_.token, job);
  ASSERT_TRUE(wait_seq(*owner, head_seq()));
  size_t removed_at = 0;
  editor->wait_for([](const auto& m) { return m.json.value("type", "") == "unsubscribed"; }, 1s, 0,
                   &removed_at);
  auto msgs = editor->messages();
  for (size_t i = removed_at + 1; i < msgs.size(); ++i) {
    EXPECT_TRUE(msgs[i].json.value("type", "") != "event" && !msgs[i].binary &&
                msgs[i].json.value("type", "") != "progress")
        << "after removal: " << msgs[i].data;
  }
  // And subscribing again is refused.
  editor->send_json({{"type", "subscribe"}, {"project", project_}, {"after_seq", 0}});
  auto err = editor->wait_type("error");
  ASSERT_TRUE(err);
  EXPECT_EQ((*err)["code"], "not_found");
}

TEST_P(LiveRoomsTest, MalformedAndOversizedMessagesGetErrorsOrCloseCodesAndTheServerStaysUp) {
  auto c = join(owner_);
  c->send_text("{not json");
  auto err = c->wait_type("error");
  ASSERT_TRUE(err);
  EXPECT_EQ((*err)["code"], "bad_message");
  c->send_json({{"type", "teleport"}});
  ASSERT_TRUE(c->wait_json([](const json& m) { return m.value("code", "") == "unknown_type"; }));
  c->send_json({{"type", "subscribe"}, {"project", "seven"}});
  ASSERT_TRUE(c->wait_json([](const json& m) { return m.value("field", "") == "project"; }));
  c->send_binary("\x01\x02");
  ASSERT_TRUE(c->wait_json([](const json& m) {
    return m["type"] == "error" &&
           m["message"].get<std::string>().find("binary") != std::string::npos;
  }));
  EXPECT_FALSE(c->closed()) << "bad messages are answered, not fatal";

  c->send_text(std::string(65 * 1024, 'x'));
  EXPECT_EQ(c->wait_closed(5s), std::optional<uint16_t>(1009));

  auto fresh = join(owner_);  // the server is still there
  EXPECT_FALSE(fresh->closed());
}

TEST_P(LiveRoomsTest, PresenceIsSharedAndLeavesWithTheSession) {
  auto a = join(owner_);
  auto b = join(editor_);
  b->send_json({{"type", "presence"}, {"project", project_}, {"state", {{"typing", true}}}});
  auto seen = a->wait_json([&](const json& m) {
    if (m["type"] != "presence") return false;
    for (const auto& u : m["members"]) {
      if (u["user"] == editor_.id && u["state"].value("typing", false)) return true;
    }
    return false;
  });
  ASSERT_TRUE(seen);
  EXPECT_EQ((*seen)["members"].size(), 2u);
  b->drop();
  auto left = a->wait_json([&](const json& m) {
    return m["type"] == "presence" && m["members"].size() == 1 &&
           m["members"][0]["user"] == owner_.id;
  });
  EXPECT_TRUE(left) << "the editor's presence must go with their connection";

  auto big = join(owner_);
  big->send_json(
      {{"type", "presence"}, {"project", project_}, {"state", {{"x", std::string(2000, 'y')}}}});
  auto err = big->wait_type("error");
  ASSERT_TRUE(err);
  EXPECT_EQ((*err)["field"], "state");
}

TEST_P(LiveRoomsTest, AClientThatNeverReadsIsCutOffWhileTheOthersGetEverything) {
  start(16 << 10);
  auto stuck = connect(viewer_, /*read=*/false);
  stuck->send_json({{"type", "hello"}, {"proto", 1}});
  stuck->send_json({{"type", "subscribe"}, {"project", project_}, {"after_seq", 0}});
  auto reader = join(owner_);
  // Big events (each job carries a 2,000-character prompt) until the stuck client's socket
  // buffers and its 16 KiB queue are full.
  const std::string prompt(2000, 'q');
  std::vector<int64_t> jobs;
  for (int i = 0; i < 600; ++i) {
    jobs.push_back(submit_ok(
        port_, owner_.token, project_,
        {{"model", "null"}, {"prompt", prompt}, {"negative_prompt", prompt}, {"steps", 1}}));
  }
  for (int64_t job : jobs) ASSERT_EQ(wait_terminal(port_, owner_.token, job, 60s)["state"], "done");
  const json log = rest_events();
  // The reader keeps up, or, if a burst outruns even it (a loaded machine), is told to resume
  // (4000) and does: either way it ends with exactly the log.
  int resumes = 0;
  EXPECT_EQ(follow(std::move(reader), owner_, log.back()["seq"], resumes), log);
  EXPECT_LE(resumes, 5);
  // The server closed the stuck one: its TCP connection is gone (reading now finds the end).
  stuck->start_reading();
  EXPECT_TRUE(stuck->wait_closed(20s).has_value());
}

TEST_P(LiveRoomsTest, ADeletedProjectEndsEverySubscription) {
  auto editor = join(editor_);
  auto viewer = join(viewer_);
  ASSERT_EQ(call(port_, "DELETE", project_path(project_), "", bearer(owner_.token)).status, 204);
  for (auto* c : {editor.get(), viewer.get()}) {
    auto gone = c->wait_type("unsubscribed");
    ASSERT_TRUE(gone);
    EXPECT_EQ((*gone)["reason"], "project_deleted");
  }
}

TEST_P(LiveRoomsTest, ARevokedCredentialClosesTheConnectionAtOnce) {
  // Silent or not, the connection closes as soon as its credential is revoked (more cases in
  // revocation_test.cpp); a command sent after that is neither answered nor run.
  Account second = login(port_, "editor");  // a session of its own, to log out of
  auto c = WsClient::connect(port_, "/api/v1/ws", {{bearer(second.token)}});
  ASSERT_TRUE(c);
  c->send_json({{"type", "hello"}, {"proto", 1}});
  ASSERT_TRUE(c->wait_type("welcome"));
  const size_t before = c->messages().size();
  ASSERT_EQ(call(port_, "POST", "/api/v1/auth/logout", "", bearer(second.token)).status, 204);
  c->send_json(submit_cmd("after-logout", "after logout"));
  EXPECT_EQ(c->wait_closed(5s), std::optional<uint16_t>(1008));
  EXPECT_EQ(c->messages().size(), before) << "nothing is sent after the revocation";
  auto jobs = call(port_, "GET", project_path(project_, "/jobs"), "", bearer(owner_.token));
  ASSERT_EQ(jobs.status, 200);
  EXPECT_EQ(jobs.body.find("after logout"), std::string::npos) << jobs.body;
}

INSTANTIATE_TEST_SUITE_P(WriteModes, LiveRoomsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "direct" : "plain");
                         });

}  // namespace
}  // namespace atelier::apitest
