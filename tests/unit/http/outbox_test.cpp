// The per-session send queue: byte cap, ephemeral-first dropping, coalescing, overflow.
#include "server/http/outbox.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace atelier::http {
namespace {

OutMessage durable(const std::string& text) {
  return OutMessage{std::make_shared<const std::string>(text), false, OutMessage::Kind::kDurable,
                    ""};
}

OutMessage ephemeral(const std::string& text, const std::string& key = "") {
  return OutMessage{std::make_shared<const std::string>(text), false, OutMessage::Kind::kEphemeral,
                    key};
}

std::vector<std::string> drain(Outbox& box) {
  std::vector<std::string> out;
  while (auto m = box.start_write()) {
    out.push_back(*m->payload);
    box.finish_write();
  }
  return out;
}

TEST(OutboxTest, WritesInOrderOneAtATimeAndCountsTheInFlightBytes) {
  Outbox box(100);
  EXPECT_EQ(box.push(durable("aaaa")), Outbox::Push::kQueued);
  EXPECT_EQ(box.push(durable("bb")), Outbox::Push::kQueued);
  EXPECT_EQ(box.bytes(), 6u);
  auto first = box.start_write();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first->payload, "aaaa");
  EXPECT_FALSE(box.start_write()) << "one write in flight";
  EXPECT_EQ(box.bytes(), 6u) << "the in-flight message still counts";
  box.finish_write();
  EXPECT_EQ(box.bytes(), 2u);
  EXPECT_EQ(drain(box), std::vector<std::string>{"bb"});
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(box.bytes(), 0u);
}

TEST(OutboxTest, ThePayloadIsSharedNotCopied) {
  auto shared = std::make_shared<const std::string>("event");
  Outbox a(100), b(100);
  a.push(OutMessage{shared, false, OutMessage::Kind::kDurable, ""});
  b.push(OutMessage{shared, false, OutMessage::Kind::kDurable, ""});
  EXPECT_EQ(shared.use_count(), 3);
  EXPECT_EQ(a.start_write()->payload.get(), shared.get());
}

TEST(OutboxTest, EphemeralMessagesGoFirstWhenTheCapIsReached) {
  Outbox box(10);
  box.push(ephemeral("p1p1"));
  box.push(durable("e1e1"));
  // 8 bytes queued; 4 more do not fit: the ephemeral one makes room, the event stays.
  EXPECT_EQ(box.push(durable("e2e2")), Outbox::Push::kQueued);
  EXPECT_EQ(box.stats().dropped_ephemeral, 1u);
  // Full of durable events: a new ephemeral message is dropped itself...
  EXPECT_EQ(box.push(ephemeral("p2p2")), Outbox::Push::kDropped);
  // ...and a durable one overflows: the session must close and the client resume.
  EXPECT_EQ(box.push(durable("e3e3")), Outbox::Push::kOverflow);
  EXPECT_EQ(drain(box), (std::vector<std::string>{"e1e1", "e2e2"}));
}

TEST(OutboxTest, ASlowReaderGetsTheLatestProgressPerJobInItsPlace) {
  Outbox box(1000);
  box.push(ephemeral("job1 step1", "progress 1 1"));
  box.push(durable("event A"));
  box.push(ephemeral("job2 step1", "progress 1 2"));
  EXPECT_EQ(box.push(ephemeral("job1 step2", "progress 1 1")), Outbox::Push::kReplaced);
  EXPECT_EQ(box.push(ephemeral("job1 step3", "progress 1 1")), Outbox::Push::kReplaced);
  EXPECT_EQ(box.stats().replaced, 2u);
  EXPECT_EQ(box.bytes(), std::string("job1 step3event Ajob2 step1").size());
  EXPECT_EQ(drain(box), (std::vector<std::string>{"job1 step3", "event A", "job2 step1"}));
}

TEST(OutboxTest, AMessageInFlightIsNeverReplaced) {
  Outbox box(1000);
  box.push(ephemeral("step1", "progress 1 1"));
  auto writing = box.start_write();
  ASSERT_TRUE(writing);
  EXPECT_EQ(box.push(ephemeral("step2", "progress 1 1")), Outbox::Push::kQueued);
  box.finish_write();
  EXPECT_EQ(drain(box), std::vector<std::string>{"step2"});
}

TEST(OutboxTest, AReplacementThatNoLongerFitsMakesRoomOrIsDropped) {
  Outbox box(12);
  box.push(durable("eeeeeeee"));           // 8
  box.push(ephemeral("pp", "preview 1"));  // 10
  // The newer preview is bigger: 8 + 6 > 12. The old one is superseded either way; the new one
  // does not fit beside the event, so it is dropped.
  EXPECT_EQ(box.push(ephemeral("pppppp", "preview 1")), Outbox::Push::kDropped);
  EXPECT_EQ(drain(box), std::vector<std::string>{"eeeeeeee"});
}

TEST(OutboxTest, OneMessageLargerThanTheCapStillGoesThroughAnEmptyOutbox) {
  Outbox box(4);
  EXPECT_EQ(box.push(durable("a big event")), Outbox::Push::kQueued);
  EXPECT_EQ(box.push(durable("x")), Outbox::Push::kOverflow);
  EXPECT_EQ(drain(box), std::vector<std::string>{"a big event"});
}

TEST(OutboxTest, ClearingDropsTheQueueButTheWriteInFlightCountsUntilItEnds) {
  Outbox box(100);
  box.push(durable("aaaa"));
  box.push(durable("bbbb"));
  ASSERT_TRUE(box.start_write());
  box.clear_queued();
  EXPECT_EQ(box.queued(), 0u);
  EXPECT_EQ(box.bytes(), 4u);
  EXPECT_FALSE(box.empty());
  box.finish_write();
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(box.bytes(), 0u);
}

// proto/websocket.md is the contract the web client follows: its close-code table must name the
// code the server uses for an overflowed queue.
TEST(OutboxTest, TheProtocolDocumentNamesTheOverflowCloseCode) {
  std::ifstream in(std::string(ATELIER_SOURCE_DIR) + "/proto/websocket.md");
  ASSERT_TRUE(in) << "proto/websocket.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string row = "| " + std::to_string(kCloseResume) + " | send queue overflowed |";
  EXPECT_NE(text.str().find(row), std::string::npos) << "no row: " << row;
}

}  // namespace
}  // namespace atelier::http
