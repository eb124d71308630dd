#include "server/auth/username.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace atelier::auth {
namespace {

using ::testing::HasSubstr;

std::string normalized(std::string_view username) {
  Result<std::string> r = normalize_username(username);
  EXPECT_TRUE(r.is_ok()) << username << ": " << r.status().to_string();
  return r.is_ok() ? *r : std::string();
}

void expect_rejected(std::string_view username) {
  Result<std::string> r = normalize_username(username);
  ASSERT_FALSE(r.is_ok()) << "accepted: " << username;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), "username");
}

TEST(NormalizeUsernameTest, FoldsCase) {
  EXPECT_EQ(normalized("Ada"), "ada");
  EXPECT_EQ(normalized("ADA"), "ada");
  EXPECT_EQ(normalized("ada"), "ada");
  EXPECT_EQ(normalized("Ada_Lovelace.1815-X"), "ada_lovelace.1815-x");
}

TEST(NormalizeUsernameTest, AcceptsTheWholeAlphabet) {
  EXPECT_EQ(normalized("abcdefghijklmnopqrstuvwxyz"), "abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(normalized("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(normalized("0123456789_.-"), "0123456789_.-");
  EXPECT_EQ(normalized("..."), "...");
}

TEST(NormalizeUsernameTest, EnforcesLengthBounds) {
  expect_rejected("");
  expect_rejected("a");
  expect_rejected("ab");
  EXPECT_EQ(normalized("abc"), "abc");
  EXPECT_EQ(normalized(std::string(32, 'A')), std::string(32, 'a'));
  expect_rejected(std::string(33, 'a'));
  expect_rejected(std::string(1000, 'a'));
}

TEST(NormalizeUsernameTest, RejectsCharactersOutsideTheAlphabet) {
  for (const std::string& bad :
       std::vector<std::string>{"ada lovelace", " ada", "ada ", "ada\t", "ada\n", "ada@example.com",
                                "ada/x", "ada+1", "ada!", "a'da", "a\"da", "ad=a", "ad,a", "ad:a",
                                "ad;a", "<ada>", "ad%20a", std::string("ada\0x", 5)}) {
    expect_rejected(bad);
  }
}

TEST(NormalizeUsernameTest, RejectsUnicode) {
  expect_rejected("adé");
  expect_rejected("ééé");  // 3 characters, 6 bytes
  expect_rejected("Ωmega");
  expect_rejected("ａｄａ");  // full-width letters
  expect_rejected(
      "\xE2\x84\xAA"
      "ada");                      // KELVIN SIGN, which Unicode lower-cases to 'k'
  expect_rejected("adı");          // dotless i
  expect_rejected("ada\xC2\xA0");  // no-break space
  expect_rejected("ada\xFF");      // not UTF-8 at all
}

TEST(NormalizeUsernameTest, MessageStatesTheRule) {
  Result<std::string> r = normalize_username("no spaces allowed");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(),
            "username must be 3-32 characters, each a letter a-z, a digit 0-9, '_', '.' or '-'");
  EXPECT_EQ(normalize_username("x").status().message(), r.status().message());
}

}  // namespace
}  // namespace atelier::auth
