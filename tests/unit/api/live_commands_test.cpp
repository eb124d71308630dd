#include "server/api/live_commands.h"

#include <gtest/gtest.h>

#include <thread>

namespace atelier::api {
namespace {

using nlohmann::json;

TEST(CommandRequestTest, EachOpBecomesItsRestTwin) {
  auto submit = command_request("job.submit", {{"project", 7}, {"model", "null"}, {"prompt", "x"}});
  ASSERT_TRUE(submit.is_ok()) << submit.status().to_string();
  EXPECT_EQ(submit->method, http::Method::kPost);
  EXPECT_EQ(submit->path, "/api/v1/projects/7/jobs");
  EXPECT_EQ(json::parse(submit->body), (json{{"model", "null"}, {"prompt", "x"}}))
      << "the project goes into the path, not the body";
  EXPECT_EQ(submit->headers.get("Content-Type"), "application/json");

  auto cancel = command_request("job.cancel", {{"job", 12}});
  ASSERT_TRUE(cancel.is_ok());
  EXPECT_EQ(cancel->method, http::Method::kPost);
  EXPECT_EQ(cancel->target, "/api/v1/jobs/12/cancel");

  auto set = command_request("reaction.set", {{"image", 3}, {"emoji", "👍"}});
  ASSERT_TRUE(set.is_ok());
  EXPECT_EQ(set->method, http::Method::kPut);
  EXPECT_EQ(set->path, "/api/v1/images/3/reactions/%F0%9F%91%8D");
  auto clear = command_request("reaction.clear", {{"image", 3}, {"emoji", "a/b"}});
  ASSERT_TRUE(clear.is_ok());
  EXPECT_EQ(clear->method, http::Method::kDelete);
  EXPECT_EQ(clear->path, "/api/v1/images/3/reactions/a%2Fb") << "no way out of the segment";
}

TEST(CommandRequestTest, BadArgumentsNameTheField) {
  auto field_of = [](const std::string& op, const json& args) {
    auto r = command_request(op, args);
    EXPECT_FALSE(r.is_ok());
    return r.is_ok() ? std::string("(ok)") : r.status().field();
  };
  EXPECT_EQ(field_of("job.submit", {{"model", "null"}}), "args.project");
  EXPECT_EQ(field_of("job.submit", {{"project", -1}}), "args.project");
  EXPECT_EQ(field_of("job.cancel", {{"job", "12"}}), "args.job");
  EXPECT_EQ(field_of("reaction.set", {{"image", 3}}), "args.emoji");
  EXPECT_EQ(field_of("reaction.set", {{"image", 3}, {"emoji", ""}}), "args.emoji");
  EXPECT_EQ(field_of("reaction.clear", {{"emoji", "x"}}), "args.image");
  EXPECT_EQ(field_of("project.delete", json::object()), "op");
  EXPECT_EQ(field_of("job.cancel", json::array()), "args");
}

TEST(AckJsonTest, CarriesTheResultOrTheRestError) {
  json ok = json::parse(ack_json("a1", http::Response::json_text(202, R"({"id":5})")));
  EXPECT_EQ(ok, (json{{"type", "ack"}, {"id", "a1"}, {"ok", true}, {"result", {{"id", 5}}}}));
  json no = json::parse(ack_json("a2", http::Response::error(403, "forbidden", "viewers may not")));
  EXPECT_EQ(no["ok"], false);
  EXPECT_EQ(no["error"]["code"], "forbidden");
  EXPECT_EQ(no["error"]["message"], "viewers may not");
  json odd = json::parse(ack_json("a3", http::Response::text(502, "upstream")));
  EXPECT_EQ(odd["error"]["code"], "internal");
  json early = json::parse(ack_error_json("a4", "invalid_argument", "bad", "args.job"));
  EXPECT_EQ(early["error"]["field"], "args.job");
}

TEST(CommandLogTest, ASecondBeginWithTheSameIdGetsTheFirstAnswer) {
  int64_t now = 0;
  CommandLog log([&] { return now; }, /*ttl_ms=*/1000);
  std::vector<std::string> first, second, third, other_user;
  ASSERT_TRUE(log.begin(1, "c1", [&](const std::string& a) { first.push_back(a); }));
  // Resent while the first still runs: waits for its answer.
  EXPECT_FALSE(log.begin(1, "c1", [&](const std::string& a) { second.push_back(a); }));
  // The same id from another user is another command.
  EXPECT_TRUE(log.begin(2, "c1", [&](const std::string& a) { other_user.push_back(a); }));
  EXPECT_TRUE(second.empty());
  log.finish(1, "c1", "ACK");
  EXPECT_EQ(first, std::vector<std::string>{"ACK"});
  EXPECT_EQ(second, std::vector<std::string>{"ACK"});
  // Resent after it finished: answered at once, not run.
  EXPECT_FALSE(log.begin(1, "c1", [&](const std::string& a) { third.push_back(a); }));
  EXPECT_EQ(third, std::vector<std::string>{"ACK"});
  EXPECT_TRUE(other_user.empty());

  // After the TTL the id is forgotten (finished entries only).
  log.finish(2, "c1", "ACK2");
  now = 1000;
  EXPECT_TRUE(log.begin(1, "c1", [](const std::string&) {}));
}

TEST(CommandLogTest, StaysBoundedButNeverForgetsOneStillRunning) {
  int64_t now = 0;
  CommandLog log([&] { return now; }, 1'000'000, /*max_entries=*/3);
  ASSERT_TRUE(log.begin(1, "running", [](const std::string&) {}));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(log.begin(1, "c" + std::to_string(i), [](const std::string&) {}));
    log.finish(1, "c" + std::to_string(i), "ok");
  }
  EXPECT_LE(log.size(), 4u) << "finished entries beyond the cap are pruned, oldest first";
  // The one still running is kept: a resend waits for it instead of running it again.
  std::string answer;
  EXPECT_FALSE(log.begin(1, "running", [&](const std::string& a) { answer = a; }));
  log.finish(1, "running", "done");
  EXPECT_EQ(answer, "done");
}

}  // namespace
}  // namespace atelier::api
