// Reactions over REST against an in-process server: who may react, idempotent PUT/DELETE, the
// durable reaction.* events in the project log, and the counts in image metadata.
#include <gtest/gtest.h>

#include "tests/integration/job_test_helpers.h"
#include "tests/support/http_client.h"

namespace atelier::apitest {
namespace {

// "👍" and "🎨", percent-encoded for the path.
const std::string kThumbsUp = "%F0%9F%91%8D";
const std::string kPalette = "%F0%9F%8E%A8";

class ReactionsTest : public ProjectServerTest {
 protected:
  void SetUp() override {
    ServerConfig c = test_config(dir_);
    c.enable_null_model = true;
    start(c);
    int64_t job = submit_ok(port_, owner_.token, project_, {{"model", "null"}, {"prompt", "x"}});
    nlohmann::json done = wait_terminal(port_, owner_.token, job);
    ASSERT_EQ(done["state"], "done") << done.dump();
    image_ = done["images"][0]["id"];
  }

  Reply react(const std::string& method, const Account& who, const std::string& emoji) {
    return call(port_, method, "/api/v1/images/" + std::to_string(image_) + "/reactions/" + emoji,
                "", bearer(who.token));
  }

  std::vector<nlohmann::json> reaction_events() {
    auto r = call(port_, "GET", "/api/v1/projects/" + std::to_string(project_) + "/events", "",
                  bearer(viewer_.token));
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<nlohmann::json> out;
    for (const auto& e : r.json["events"]) {
      if (e["type"].get<std::string>().starts_with("reaction.")) out.push_back(e);
    }
    return out;
  }

  int64_t image_ = 0;
};

TEST_F(ReactionsTest, MembersReactOnceEachAndEveryChangeIsADurableEvent) {
  auto first = react("PUT", editor_, kThumbsUp);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json["emoji"], "👍");
  EXPECT_EQ(first.json["changed"], true);
  EXPECT_EQ(first.json["counts"]["👍"], 1);
  EXPECT_EQ(first.json["mine"], nlohmann::json::array({"👍"}));

  auto again = react("PUT", editor_, kThumbsUp);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.json["changed"], false) << "repeating a PUT changes nothing";
  EXPECT_EQ(again.json["counts"]["👍"], 1);

  ASSERT_EQ(react("PUT", owner_, kThumbsUp).status, 200);
  ASSERT_EQ(react("PUT", owner_, kPalette).status, 200);

  auto meta =
      call(port_, "GET", "/api/v1/images/" + std::to_string(image_), "", bearer(owner_.token));
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(meta.json["reactions"], (nlohmann::json{{"👍", 2}, {"🎨", 1}}));
  EXPECT_EQ(meta.json["my_reactions"], (nlohmann::json::array({"🎨", "👍"})));
  auto list = call(port_, "GET", "/api/v1/projects/" + std::to_string(project_) + "/images", "",
                   bearer(viewer_.token));
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json["images"][0]["reactions"]["👍"], 2);

  auto cleared = react("DELETE", editor_, kThumbsUp);
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(cleared.json["changed"], true);
  EXPECT_EQ(cleared.json["counts"]["👍"], 1);
  EXPECT_EQ(cleared.json["mine"], nlohmann::json::array());
  EXPECT_EQ(react("DELETE", editor_, kThumbsUp).json["changed"], false);

  // Exactly the four changes, in order, with the counts after each.
  auto events = reaction_events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0]["type"], "reaction.set");
  EXPECT_EQ(events[0]["actor"], editor_.id);
  EXPECT_EQ(events[0]["data"]["image"], image_);
  EXPECT_EQ(events[0]["data"]["emoji"], "👍");
  EXPECT_EQ(events[1]["data"]["counts"]["👍"], 2);
  EXPECT_EQ(events[2]["data"]["emoji"], "🎨");
  EXPECT_EQ(events[3]["type"], "reaction.clear");
  EXPECT_EQ(events[3]["data"]["counts"], (nlohmann::json{{"👍", 1}, {"🎨", 1}}));
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GT(events[i]["seq"].get<int64_t>(), events[i - 1]["seq"].get<int64_t>());
  }
}

TEST_F(ReactionsTest, ViewersAndStrangersCannotReactAndBadEmojiAreNamed) {
  auto viewer = react("PUT", viewer_, kThumbsUp);
  EXPECT_EQ(viewer.status, 403) << viewer.body;
  auto stranger = react("PUT", stranger_, kThumbsUp);
  EXPECT_EQ(stranger.status, 404) << "non-members do not learn the image exists";
  auto anonymous =
      call(port_, "PUT", "/api/v1/images/" + std::to_string(image_) + "/reactions/" + kThumbsUp);
  EXPECT_EQ(anonymous.status, 401);
  auto missing =
      call(port_, "PUT", "/api/v1/images/999999/reactions/" + kThumbsUp, "", bearer(owner_.token));
  EXPECT_EQ(missing.status, 404);
  for (const std::string& bad :
       {std::string("abc"), std::string("%20"), std::string("%F0%9F%91"), std::string(40, 'x')}) {
    auto r = react("PUT", owner_, bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_EQ(r.json["error"]["field"], "emoji") << r.body;
  }
  EXPECT_TRUE(reaction_events().empty()) << "refused requests record nothing";
}

}  // namespace
}  // namespace atelier::apitest
