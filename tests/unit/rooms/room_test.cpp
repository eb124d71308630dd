// Room fan-out with fake sessions: one payload shared by all, dead sessions pruned, presence,
// and removing a member's subscriptions.
#include "server/rooms/room.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/api/live_wire_json.h"

namespace atelier::rooms {
namespace {

// The rooms' messages as the server writes them.
std::shared_ptr<const LiveWire> wire() {
  return std::make_shared<api::LiveWireJson>();
}

class FakeMember : public RoomMember {
 public:
  FakeMember(int64_t user, std::string name) : user_(user), name_(std::move(name)) {}
  int64_t user_id() const override { return user_; }
  const std::string& username() const override { return name_; }
  void deliver(const OutMessage& m) override { got.push_back(m); }

  // The JSON messages of type `type`, parsed.
  std::vector<nlohmann::json> of_type(const std::string& type) const {
    std::vector<nlohmann::json> out;
    for (const auto& m : got) {
      if (m.binary) continue;
      auto j = nlohmann::json::parse(*m.payload);
      if (j["type"] == type) out.push_back(j);
    }
    return out;
  }

  std::vector<OutMessage> got;

 private:
  int64_t user_;
  std::string name_;
};

TEST(RoomTest, EveryMemberGetsTheSameEventPayloadObject) {
  Room room(12, wire());
  auto ann = std::make_shared<FakeMember>(1, "ann");
  auto bob = std::make_shared<FakeMember>(2, "bob");
  room.join(ann);
  room.join(bob);
  room.broadcast_event(5, R"({"seq":5,"type":"job.queued","ts":1,"actor":1,"data":{}})");
  ASSERT_EQ(ann->of_type("event").size(), 1u);
  EXPECT_EQ(ann->of_type("event")[0]["project"], 12);
  EXPECT_EQ(ann->of_type("event")[0]["event"]["seq"], 5);
  // Built once: both sessions hold the very same buffer.
  EXPECT_EQ(ann->got.back().payload.get(), bob->got.back().payload.get());
  EXPECT_EQ(ann->got.back().kind, OutMessage::Kind::kDurable);
}

TEST(RoomTest, ProgressAndPreviewsAreEphemeralAndKeyedPerJob) {
  Room room(3, wire());
  auto ann = std::make_shared<FakeMember>(1, "ann");
  room.join(ann);
  const StepTime at = std::chrono::system_clock::now();
  const int64_t stamped =
      std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
  room.broadcast_progress(77, 2, 10, at);
  room.broadcast_preview(77, std::make_shared<const std::string>("ATPV..."));
  ASSERT_GE(ann->got.size(), 2u);
  const OutMessage& progress = ann->got[ann->got.size() - 2];
  const OutMessage& preview = ann->got.back();
  EXPECT_EQ(progress.kind, OutMessage::Kind::kEphemeral);
  EXPECT_EQ(progress.coalesce_key, "progress 3 77");
  nlohmann::json body = nlohmann::json::parse(*progress.payload);
  EXPECT_EQ(body["at_us"], stamped);
  body.erase("at_us");
  EXPECT_EQ(body,
            (nlohmann::json{
                {"type", "progress"}, {"project", 3}, {"job", 77}, {"step", 2}, {"steps", 10}}));
  EXPECT_TRUE(preview.binary);
  EXPECT_EQ(preview.coalesce_key, "preview 3 77");
}

TEST(RoomTest, PresenceListsUsersWithTheirSessionsAndState) {
  Room room(1, wire());
  auto ann_tab1 = std::make_shared<FakeMember>(1, "ann");
  auto ann_tab2 = std::make_shared<FakeMember>(1, "ann");
  auto bob = std::make_shared<FakeMember>(2, "bob");
  room.join(ann_tab1);
  room.join(ann_tab2);
  room.join(bob);
  room.set_presence(bob.get(), R"({"viewing":904})");
  auto last = ann_tab1->of_type("presence").back();
  ASSERT_EQ(last["members"].size(), 2u);
  EXPECT_EQ(last["members"][0]["username"], "ann");
  EXPECT_EQ(last["members"][0]["sessions"], 2);
  EXPECT_EQ(last["members"][1]["state"]["viewing"], 904);
  room.leave(ann_tab2.get());
  last = bob->of_type("presence").back();
  EXPECT_EQ(last["members"][0]["sessions"], 1);
  EXPECT_EQ(room.size(), 2u);
}

TEST(RoomTest, DeferredPresenceAnnouncesManyChangesOnce) {
  Room room(1, wire(), /*deferred_presence=*/true);
  auto ann = std::make_shared<FakeMember>(1, "ann");
  room.join(ann);
  for (int i = 0; i < 20; ++i) room.join(std::make_shared<FakeMember>(100 + i, "guest"));
  room.set_presence(ann.get(), R"({"typing":true})");
  EXPECT_TRUE(ann->of_type("presence").empty()) << "changes only mark the room";
  room.announce_presence_if_changed();
  auto sent = ann->of_type("presence");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["members"][0]["state"]["typing"], true);
  room.announce_presence_if_changed();
  EXPECT_EQ(ann->of_type("presence").size(), 1u) << "nothing changed since";
}

TEST(RoomTest, GoneSessionsAreSkippedAndPruned) {
  Room room(1, wire());
  auto ann = std::make_shared<FakeMember>(1, "ann");
  room.join(ann);
  {
    auto bob = std::make_shared<FakeMember>(2, "bob");
    room.join(bob);
    EXPECT_EQ(room.size(), 2u);
  }
  room.broadcast_event(1, R"({"seq":1})");
  EXPECT_EQ(room.size(), 1u);
  auto presence = nlohmann::json::parse(room.presence_json());
  EXPECT_EQ(presence["members"].size(), 1u);
}

TEST(RoomTest, RemovingAMemberEndsAllTheirSubscriptionsAtOnce) {
  Room room(9, wire());
  auto ann = std::make_shared<FakeMember>(1, "ann");
  auto bob1 = std::make_shared<FakeMember>(2, "bob");
  auto bob2 = std::make_shared<FakeMember>(2, "bob");
  room.join(ann);
  room.join(bob1);
  room.join(bob2);
  EXPECT_EQ(room.remove_user(2, "removed"), 2u);
  for (const auto& bob : {bob1, bob2}) {
    auto unsub = bob->of_type("unsubscribed");
    ASSERT_EQ(unsub.size(), 1u);
    EXPECT_EQ(unsub[0]["reason"], "removed");
    EXPECT_EQ(unsub[0]["project"], 9);
  }
  const size_t bob_had = bob1->got.size();
  room.broadcast_event(2, R"({"seq":2})");
  EXPECT_EQ(bob1->got.size(), bob_had) << "nothing more after the removal";
  EXPECT_EQ(ann->of_type("event").size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(room.presence_json())["members"].size(), 1u);
  EXPECT_EQ(room.remove_user(2, "removed"), 0u);
}

}  // namespace
}  // namespace atelier::rooms
