#include "server/auth/password.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace atelier::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Repeats `s` n times: "é" x 8 is 8 characters but 16 bytes.
std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string must_hash(std::string_view password, PasswordCost cost = PasswordCost::for_tests()) {
  Result<std::string> hash = hash_password(password, cost);
  EXPECT_TRUE(hash.is_ok()) << hash.status().to_string();
  return hash.is_ok() ? *hash : std::string();
}

TEST(PasswordCostTest, PresetsAreLibsodiumLimits) {
  EXPECT_EQ(PasswordCost::interactive(), (PasswordCost{2, 64u << 20}));
  EXPECT_EQ(PasswordCost::for_tests(), (PasswordCost{1, 8u << 10}));
}

TEST(HashPasswordTest, RoundTrips) {
  const std::string hash = must_hash("correct horse battery staple");
  EXPECT_TRUE(verify_password(hash, "correct horse battery staple"));
}

TEST(HashPasswordTest, RejectsWrongPasswords) {
  const std::string hash = must_hash("correct horse battery staple");
  EXPECT_FALSE(verify_password(hash, "Correct horse battery staple"));
  EXPECT_FALSE(verify_password(hash, "correct horse battery stapl"));
  EXPECT_FALSE(verify_password(hash, "correct horse battery staple "));
  EXPECT_FALSE(verify_password(hash, ""));
}

TEST(HashPasswordTest, IsArgon2idAndEncodesTheCost) {
  const std::string hash = must_hash("s3cret-enough");
  EXPECT_THAT(hash, StartsWith("$argon2id$"));
  EXPECT_THAT(hash, HasSubstr("$m=8,t=1,p=1$"));  // 8 KiB, 1 pass: the for_tests() cost
  EXPECT_THAT(hash, Not(HasSubstr("s3cret-enough")));
}

TEST(HashPasswordTest, IsSaltedSoEqualPasswordsHashDifferently) {
  const std::string a = must_hash("same password");
  const std::string b = must_hash("same password");
  EXPECT_NE(a, b);
  EXPECT_TRUE(verify_password(a, "same password"));
  EXPECT_TRUE(verify_password(b, "same password"));
}

TEST(HashPasswordTest, HandlesEveryByteIncludingNul) {
  const std::string with_nul("pass\0word", 9);
  const std::string hash = must_hash(with_nul);
  EXPECT_TRUE(verify_password(hash, with_nul));
  EXPECT_FALSE(verify_password(hash, "pass"));  // not cut at the NUL

  const std::string unicode = "пароль 密码 🔑🔑";
  EXPECT_TRUE(verify_password(must_hash(unicode), unicode));
}

TEST(HashPasswordTest, ProductionCostWorks) {
  const std::string hash = must_hash("production password", PasswordCost::interactive());
  EXPECT_THAT(hash, HasSubstr("$m=65536,t=2,p=1$"));
  EXPECT_TRUE(verify_password(hash, "production password"));
  EXPECT_FALSE(needs_rehash(hash, PasswordCost::interactive()));
}

TEST(HashPasswordTest, RejectsCostOutsideLibsodiumLimits) {
  for (PasswordCost cost : {PasswordCost{0, 8u << 10}, PasswordCost{1, 1024}}) {
    Result<std::string> hash = hash_password("whatever password", cost);
    ASSERT_FALSE(hash.is_ok());
    EXPECT_EQ(hash.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(hash.status().message(), Not(HasSubstr("whatever password")));
  }
}

TEST(VerifyPasswordTest, MalformedHashesAreFalse) {
  const std::string hash = must_hash("password123");
  for (const std::string& bad : std::vector<std::string>{
           "", "password123", "$argon2id$", hash.substr(0, hash.size() - 5),
           hash + std::string(200, 'A'), std::string(hash).insert(10, 1, '\0')}) {
    EXPECT_FALSE(verify_password(bad, "password123")) << bad;
  }
}

TEST(NeedsRehashTest, FalseAtTheSameCost) {
  EXPECT_FALSE(needs_rehash(must_hash("password123"), PasswordCost::for_tests()));
}

TEST(NeedsRehashTest, TrueWhenTheCostChanges) {
  const std::string hash = must_hash("password123");
  const PasswordCost base = PasswordCost::for_tests();
  EXPECT_TRUE(needs_rehash(hash, PasswordCost::interactive()));
  EXPECT_TRUE(needs_rehash(hash, {base.ops + 1, base.mem}));
  EXPECT_TRUE(needs_rehash(hash, {base.ops, base.mem * 2}));
}

TEST(NeedsRehashTest, TrueForOtherAlgorithmsAndGarbage) {
  // Argon2i (libsodium's default before Argon2id) at the for_tests() cost. The digest is made up:
  // the algorithm alone must trigger the rehash.
  const std::string argon2i =
      "$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$"
      "qhdVeSwc4K6G4bxYKbiJuTGOmH0vBqeXSh/Fm0G2ZUg";
  EXPECT_TRUE(needs_rehash(argon2i, PasswordCost::for_tests()));
  EXPECT_TRUE(needs_rehash("", PasswordCost::for_tests()));
  EXPECT_TRUE(needs_rehash("$argon2id$garbage", PasswordCost::for_tests()));
  EXPECT_TRUE(needs_rehash("$2b$12$bcryptbcryptbcryptbcry", PasswordCost::for_tests()));
}

TEST(ValidatePasswordLengthTest, AcceptsEightCharactersOfAnyKind) {
  EXPECT_TRUE(validate_password_length("abcdefgh").is_ok());
  EXPECT_TRUE(validate_password_length("        ").is_ok());  // spaces are characters too
  EXPECT_TRUE(validate_password_length("p@ss w0rd!").is_ok());
  EXPECT_TRUE(validate_password_length(std::string("ab\0cdefg", 8)).is_ok());
}

TEST(ValidatePasswordLengthTest, CountsCodePointsNotBytes) {
  EXPECT_TRUE(validate_password_length(repeat("é", 8)).is_ok());    // 16 bytes
  EXPECT_FALSE(validate_password_length(repeat("é", 7)).is_ok());   // 14 bytes, still 7 characters
  EXPECT_TRUE(validate_password_length(repeat("密", 8)).is_ok());   // 24 bytes
  EXPECT_FALSE(validate_password_length(repeat("密", 7)).is_ok());  // 21 bytes
  EXPECT_TRUE(validate_password_length(repeat("🔑", 8)).is_ok());    // 32 bytes
  EXPECT_FALSE(validate_password_length(repeat("🔑", 7)).is_ok());   // 28 bytes
}

TEST(ValidatePasswordLengthTest, RejectsShortPasswords) {
  EXPECT_FALSE(validate_password_length("").is_ok());
  EXPECT_FALSE(validate_password_length("abcdefg").is_ok());
}

TEST(ValidatePasswordLengthTest, CapsTheLengthInBytes) {
  EXPECT_TRUE(validate_password_length(std::string(1024, 'x')).is_ok());
  EXPECT_FALSE(validate_password_length(std::string(1025, 'x')).is_ok());
  EXPECT_TRUE(validate_password_length(repeat("é", 512)).is_ok());    // 1024 bytes
  EXPECT_FALSE(validate_password_length(repeat("密", 342)).is_ok());  // 1026 bytes, 342 characters
}

TEST(ValidatePasswordLengthTest, RejectsMalformedUtf8) {
  for (const std::string& bad : std::vector<std::string>{
           "abcdefgh\x80",              // stray continuation byte
           "abcdefgh\xC3",              // truncated two-byte sequence
           "abcdefgh\xE5\xAF",          // truncated three-byte sequence
           "abcdefgh\xC0\xAF",          // overlong '/'
           "abcdefgh\xE0\x80\xAF",      // overlong '/'
           "abcdefgh\xED\xA0\x80",      // UTF-16 surrogate
           "abcdefgh\xF4\x90\x80\x80",  // above U+10FFFF
           "abcdefgh\xFF",
       }) {
    Status st = validate_password_length(bad);
    EXPECT_FALSE(st.is_ok()) << bad;
    EXPECT_THAT(st.message(), HasSubstr("UTF-8"));
  }
}

TEST(ValidatePasswordTest, ErrorsNameTheFieldAndNeverThePassword) {
  for (const std::string& bad : std::vector<std::string>{
           "Zq7!x", repeat("密", 7), std::string(1025, 'Q') + "Zq7!x", "Zq7!xyzw\xC0\xAF"}) {
    Status st = validate_password(bad);
    ASSERT_FALSE(st.is_ok());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.field(), "password");
    EXPECT_THAT(st.to_string(), Not(HasSubstr("Zq7!")));
    EXPECT_THAT(st.to_string(), Not(HasSubstr(bad.substr(0, 3))));
  }
  EXPECT_EQ(validate_password("short").message(), "password must be at least 8 characters");
  EXPECT_EQ(validate_password(std::string(2000, 'a')).message(),
            "password must be at most 1024 bytes");
}

// The block list (cracklib's dictionary and rules, as Debian packages it).
TEST(ValidatePasswordTest, RefusesCommonAndSimplePasswords) {
  for (const std::string& common :
       std::vector<std::string>{"password", "123456789", "qwertyuiop", "password123", "letmein1",
                                "abcdefgh", "sw0rdfish", "drowssap1", "        ", "aaaaaaaaaaaa"}) {
    Status st = validate_password(common);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << common;
    EXPECT_EQ(st.field(), "password") << common;
    EXPECT_THAT(st.message(), StartsWith("this password is too common or too simple")) << common;
  }
}

TEST(ValidatePasswordTest, AcceptsLongUnrelatedWords) {
  for (const std::string& good : std::vector<std::string>{
           "tangerine kayak umbrella 42", "correct horse battery staple", "p@ss w0rd!",
           "vR7#kq2!Lm9z", repeat("密码", 4), std::string(1024, 'x').replace(0, 12, "Kq7-mZ2!pL9w"),
           std::string("zebra\0glacier tulip", 20)}) {
    Status st = validate_password(good);
    EXPECT_TRUE(st.is_ok()) << good << ": " << st.to_string();
  }
}

TEST(ValidatePasswordTest, TheLengthRuleComesFirst) {
  // "passwor" is short and common: the length rule speaks, with its own message.
  EXPECT_EQ(validate_password("passwor").message(), "password must be at least 8 characters");
  EXPECT_EQ(validate_password(repeat("é", 8)).code(), StatusCode::kInvalidArgument);
}

TEST(ValidatePasswordTest, RefusesPasswordsMadeFromTheUsername) {
  EXPECT_TRUE(validate_password("ottoline7x", "someone").is_ok());
  EXPECT_FALSE(validate_password("ottoline7x", "ottoline7x").is_ok());
  EXPECT_FALSE(validate_password("enilottoK", "kottoline").is_ok());  // reversed
}

}  // namespace
}  // namespace atelier::auth
