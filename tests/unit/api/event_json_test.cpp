// Events in JSON: the stored `data` of each kind of domain event (proto/websocket.md, "Event
// types"), and the live form built from it, which must equal the replayed one byte for byte.
#include "server/api/event_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace atelier::api {
namespace {

using nlohmann::json;

TEST(EventJsonTest, DataOfEachKind) {
  EXPECT_EQ(json::parse(event_data_json(events::ProjectCreated{"Moon"})), json({{"name", "Moon"}}));
  EXPECT_EQ(json::parse(event_data_json(events::ProjectUpdated{std::nullopt, "new"})),
            json({{"description", "new"}}));
  events::MemberChanged joined{events::MemberChanged::Kind::kJoined, 7, "bob",
                               projects::Role::kEditor, "invite"};
  EXPECT_EQ(json::parse(event_data_json(joined)),
            json({{"user_id", 7}, {"username", "bob"}, {"role", "editor"}, {"via", "invite"}}));
  events::MemberChanged removed{events::MemberChanged::Kind::kRemoved, 7, "", std::nullopt, {}};
  EXPECT_EQ(json::parse(event_data_json(removed)), json({{"user_id", 7}}));
  EXPECT_EQ(events::event_type(removed), "member.removed");
  events::ReactionChanged reaction{false, 3, 7, "🔥", {{"🔥", 2}}};
  EXPECT_EQ(json::parse(event_data_json(reaction)),
            json({{"image", 3}, {"emoji", "🔥"}, {"user", 7}, {"counts", {{"🔥", 2}}}}));
  EXPECT_EQ(events::event_type(reaction), "reaction.clear");
}

TEST(EventJsonTest, JobEventsCarryTheJobAndAreNamedForItsState) {
  jobs::Job job;
  job.id = 42;
  job.project_id = 5;
  job.state = jobs::JobState::kRunning;
  const events::DomainEvent e = events::JobChanged{job};
  EXPECT_EQ(events::event_type(e), "job.started");
  json data = json::parse(event_data_json(e));
  EXPECT_EQ(data["job"]["id"], 42);
  EXPECT_EQ(data["job"]["state"], "running");
}

TEST(EventJsonTest, TheLiveFormIsTheStoredFormByteForByte) {
  events::CommittedEvent c{5,
                           9,
                           7,
                           from_unix_ms(1'700'000'000'250),
                           events::ProjectCreated{"Moon"},
                           std::make_shared<const std::string>(R"({"name":"Moon"})")};
  projects::Event stored{
      5, 9, "project.created", 7, R"({"name":"Moon"})", from_unix_s(1'700'000'000)};
  EXPECT_EQ(committed_event_json(c), event_json(stored).dump());
  json j = json::parse(committed_event_json(c));
  EXPECT_EQ(j["type"], "project.created");
  EXPECT_EQ(j["actor"], 7);
  EXPECT_EQ(j["ts"], "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace atelier::api
