// Emoji validation and the reactions table (set/clear idempotence, counts, per-user lists).
#include "server/jobs/reactions.h"

#include <gtest/gtest.h>

#include "tests/unit/jobs/job_db_fixture.h"

namespace atelier::jobs::jobdbtest {
namespace {

TEST(EmojiValidationTest, AcceptsEmojiIncludingSequencesAndKeycaps) {
  for (const char* ok : {"👍", "❤️", "🎨", "👩‍🎨", "👨‍👩‍👧‍👦", "🇫🇷",
                         "👍🏽", "1️⃣", "#⃣", "©️"}) {
    EXPECT_TRUE(reactions::validate_emoji(ok).is_ok()) << ok;
  }
}

TEST(EmojiValidationTest, RefusesTextWhitespaceBadUtf8AndLongInputNamingTheField) {
  const std::string too_long(reactions::kMaxEmojiBytes + 1, '\xF0');
  for (const std::string& bad :
       {std::string(), std::string("a"), std::string("ok"), std::string("👍 "), std::string("👍\n"),
        std::string("\xF0\x9F\x91"), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
        std::string("1"), std::string("1\xEF\xB8\x8F"), std::string("\xE2\x80\x8B"), too_long}) {
    Status st = reactions::validate_emoji(bad);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.field(), "emoji") << bad;
  }
}

class ReactionsTest : public JobDbTest {
 protected:
  int64_t an_image() {
    const int64_t id = insert(basic_params());
    return in_write([&](Db& db) -> Result<int64_t> {
             ATELIER_ASSIGN_OR_RETURN(Job job, job_db::find_job(db, id));
             return job_db::insert_image(db, job, NewImage{0, sha_of(1), 10, 64, 32, 42, ""}, kNow);
           })
        .value();
  }
};

TEST_F(ReactionsTest, SetAndClearAreIdempotentAndCountPerEmoji) {
  const int64_t image = an_image();
  auto set = [&](int64_t user, const char* e) {
    return in_write([&](Db& db) { return reactions::set(db, image, user, e, kNow); }).value();
  };
  auto clear = [&](int64_t user, const char* e) {
    return in_write([&](Db& db) { return reactions::clear(db, image, user, e); }).value();
  };
  EXPECT_TRUE(set(alice_, "👍"));
  EXPECT_FALSE(set(alice_, "👍")) << "a second identical reaction changes nothing";
  EXPECT_TRUE(set(bob_, "👍"));
  EXPECT_TRUE(set(bob_, "🎨"));
  auto counts = in_read([&](Db& db) { return reactions::counts(db, image); }).value();
  EXPECT_EQ(counts, (reactions::Counts{{"👍", 2}, {"🎨", 1}}));
  auto mine = in_read([&](Db& db) { return reactions::mine(db, image, bob_); }).value();
  EXPECT_EQ(mine.size(), 2u);
  EXPECT_TRUE(clear(bob_, "👍"));
  EXPECT_FALSE(clear(bob_, "👍"));
  counts = in_read([&](Db& db) { return reactions::counts(db, image); }).value();
  EXPECT_EQ(counts, (reactions::Counts{{"👍", 1}, {"🎨", 1}}));
  const int64_t other = an_image();
  std::vector<int64_t> ids = {image, other};
  auto many = in_read([&](Db& db) { return reactions::counts_for(db, ids); }).value();
  EXPECT_EQ(many.size(), 1u) << "images without reactions are absent";
  EXPECT_EQ(many[image], counts);
}

}  // namespace
}  // namespace atelier::jobs::jobdbtest
