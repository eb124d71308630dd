// The live rooms' WebSocket messages (LiveWireJson) against proto/websocket.md, "Server to
// client": each parses as one JSON object with exactly the documented fields, and its bytes are
// those nlohmann::json wrote for the same message before the rooms handed the writing to the API.
#include "server/api/live_wire_json.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace atelier::api {
namespace {

using nlohmann::json;
using rooms::PresenceMember;

// The keys of `message`, which must be a JSON object.
std::set<std::string> keys(const json& message) {
  std::set<std::string> out;
  for (const auto& [key, value] : message.items()) out.insert(key);
  return out;
}

TEST(LiveWireJsonTest, EventWrapsTheEventObjectAsItIs) {
  const std::string event = R"({"seq":5,"type":"job.queued","ts":1,"actor":1,"data":{}})";
  const std::string wire = LiveWireJson().event(12, event);
  EXPECT_EQ(wire, R"({"type":"event","project":12,"event":)" + event + "}");
  EXPECT_EQ(wire, event_message(12, event)) << "replay and live delivery write the same bytes";
  const json j = json::parse(wire);
  EXPECT_EQ(keys(j), (std::set<std::string>{"type", "project", "event"}));
  EXPECT_EQ(j["type"], "event");
  EXPECT_EQ(j["project"], 12);
  EXPECT_EQ(j["event"], json::parse(event));
}

TEST(LiveWireJsonTest, ProgressCarriesTheStepAndWhenItWasReportedInMicroseconds) {
  // Nanoseconds past a whole microsecond are dropped.
  const rooms::StepTime at =
      rooms::StepTime{} + std::chrono::duration_cast<rooms::StepTime::duration>(
                              std::chrono::nanoseconds(1'700'000'000'123'456'789));
  const std::string wire = LiveWireJson().progress(3, 77, 2, 10, at);
  const json j = json::parse(wire);
  EXPECT_EQ(keys(j), (std::set<std::string>{"type", "project", "job", "step", "steps", "at_us"}));
  EXPECT_EQ(j["type"], "progress");
  EXPECT_EQ(j["project"], 3);
  EXPECT_EQ(j["job"], 77);
  EXPECT_EQ(j["step"], 2);
  EXPECT_EQ(j["steps"], 10);
  EXPECT_EQ(j["at_us"], 1'700'000'000'123'456);
  EXPECT_EQ(wire, (json{{"type", "progress"},
                        {"project", 3},
                        {"job", 77},
                        {"step", 2},
                        {"steps", 10},
                        {"at_us", int64_t{1'700'000'000'123'456}}})
                      .dump());
  EXPECT_EQ(LiveWireJson().progress(9'000'000'000, 1, 0, 1, rooms::StepTime{}),
            R"({"at_us":0,"job":1,"project":9000000000,"step":0,"steps":1,"type":"progress"})");
}

TEST(LiveWireJsonTest, PresenceListsEveryMemberWithTheirStateAndSessions) {
  const std::vector<PresenceMember> members = {
      {1, "ann", R"({"viewing":904})", 2},
      {2, "bob", "", 1},  // said nothing
      {7, "cat \"the\" \xC3\xA9tag\xC3\xA8re\n", R"({"typing":true,"x":[1,2.5,"\u0001"]})", 1},
  };
  const std::string wire = LiveWireJson().presence(4, members);
  const json j = json::parse(wire);
  EXPECT_EQ(keys(j), (std::set<std::string>{"type", "project", "members"}));
  EXPECT_EQ(j["type"], "presence");
  EXPECT_EQ(j["project"], 4);
  ASSERT_TRUE(j["members"].is_array());
  ASSERT_EQ(j["members"].size(), 3u);
  for (const auto& m : j["members"]) {
    EXPECT_EQ(keys(m), (std::set<std::string>{"user", "username", "state", "sessions"}));
    EXPECT_TRUE(m["state"].is_object());
  }
  EXPECT_EQ(j["members"][0]["user"], 1);
  EXPECT_EQ(j["members"][0]["username"], "ann");
  EXPECT_EQ(j["members"][0]["state"], json({{"viewing", 904}}));
  EXPECT_EQ(j["members"][0]["sessions"], 2);
  EXPECT_EQ(j["members"][1]["state"], json::object());
  EXPECT_EQ(j["members"][2]["username"], members[2].username);

  // The bytes nlohmann::json wrote for it.
  json expected = json::array();
  for (const auto& m : members) {
    expected.push_back({{"user", m.user},
                        {"username", m.username},
                        {"state", m.state.empty() ? json::object() : json::parse(m.state)},
                        {"sessions", m.sessions}});
  }
  EXPECT_EQ(wire, (json{{"type", "presence"}, {"project", 4}, {"members", expected}}).dump());
  EXPECT_EQ(LiveWireJson().presence(4, {}), R"({"members":[],"project":4,"type":"presence"})");
}

TEST(LiveWireJsonTest, APresenceStateThatIsNotAnObjectIsSentAsAnEmptyOne) {
  for (const std::string state : {"[1]", "\"text\"", "42", "null", "{nope", "{\"a\":1", "{}{}",
                                  "{,}", "{\"a\":}", "{\"a\":1}\x01", "\xFF"}) {
    const std::string wire =
        LiveWireJson().presence(1, std::vector<PresenceMember>{{1, "ann", state, 1}});
    const json j = json::parse(wire, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "state " << state << " gave " << wire;
    EXPECT_EQ(j["members"][0]["state"], json::object()) << "state " << state;
  }
}

TEST(LiveWireJsonTest, AUsernameThatIsNotUtf8StillMakesValidJson) {
  const std::string wire =
      LiveWireJson().presence(1, std::vector<PresenceMember>{{1, "bad\xFF", "", 1}});
  const json j = json::parse(wire, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << wire;
  EXPECT_EQ(j["members"][0]["username"], "bad\xEF\xBF\xBD");  // U+FFFD
}

TEST(LiveWireJsonTest, UnsubscribedSaysWhy) {
  for (const char* reason : {"requested", "removed", "left", "project_deleted"}) {
    const std::string wire = LiveWireJson().unsubscribed(9, reason);
    const json j = json::parse(wire);
    EXPECT_EQ(keys(j), (std::set<std::string>{"type", "project", "reason"}));
    EXPECT_EQ(j["type"], "unsubscribed");
    EXPECT_EQ(j["project"], 9);
    EXPECT_EQ(j["reason"], reason);
    EXPECT_EQ(wire, (json{{"type", "unsubscribed"}, {"project", 9}, {"reason", reason}}).dump());
  }
}

}  // namespace
}  // namespace atelier::api
