#include "server/auth/token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

namespace atelier::auth {
namespace {

using ::testing::MatchesRegex;
using ::testing::StartsWith;

TEST(GenerateSecretTest, IsPrefixPlus43Base64UrlCharacters) {
  const std::string secret = generate_secret("atl_s_");
  EXPECT_EQ(secret.size(), 6 + 43u);
  EXPECT_EQ(kSecretEncodedChars, 43u);
  EXPECT_THAT(secret, StartsWith("atl_s_"));
  EXPECT_THAT(secret.substr(6), MatchesRegex("[A-Za-z0-9_-]{43}"));
}

TEST(GenerateSecretTest, WorksWithAnyPrefix) {
  EXPECT_EQ(generate_secret("").size(), 43u);
  EXPECT_THAT(generate_secret("atl_inv_"), StartsWith("atl_inv_"));
}

TEST(GenerateSecretTest, UsesTheWholeAlphabetAndNoPadding) {
  std::set<char> seen;
  for (int i = 0; i < 2000; ++i) {
    for (char c : generate_secret("")) seen.insert(c);
  }
  // 86,000 draws from 64 symbols: each appears about 1,300 times. A broken encoder or a stuck
  // random source shows up here as missing symbols.
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_EQ(seen.count('='), 0u);
  EXPECT_EQ(seen.count('+'), 0u);
  EXPECT_EQ(seen.count('/'), 0u);
}

TEST(GenerateSecretTest, NeverRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) {
    EXPECT_TRUE(seen.insert(generate_secret("atl_t_")).second) << "repeat after " << i;
  }
}

TEST(HashSecretTest, IsLowerCaseHexSha256) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hash_secret(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hash_secret(std::string_view()), hash_secret(""));
}

TEST(HashSecretTest, IsStableAnd64HexCharacters) {
  const std::string secret = generate_secret("atl_s_");
  const std::string hash = hash_secret(secret);
  EXPECT_EQ(hash.size(), kSecretHashHexChars);
  EXPECT_THAT(hash, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(hash_secret(secret), hash);
  EXPECT_EQ(hash_secret(std::string(secret)), hash);
}

TEST(HashSecretTest, DiffersForDifferentSecrets) {
  const std::string secret = generate_secret("atl_s_");
  std::string changed = secret;
  changed.back() = changed.back() == 'A' ? 'B' : 'A';
  EXPECT_NE(hash_secret(secret), hash_secret(changed));
  EXPECT_NE(hash_secret(secret), hash_secret(generate_secret("atl_s_")));
  EXPECT_NE(hash_secret(std::string("a\0b", 3)), hash_secret(std::string("a\0c", 3)));
}

TEST(SecretsEqualTest, ComparesWholeContents) {
  const std::string secret = generate_secret("atl_s_");
  EXPECT_TRUE(secrets_equal(secret, std::string(secret)));
  EXPECT_TRUE(secrets_equal(hash_secret(secret), hash_secret(secret)));
  EXPECT_TRUE(secrets_equal("", ""));
  EXPECT_TRUE(secrets_equal(std::string_view(), ""));

  std::string first = secret, last = secret;
  first.front() = 'X';
  last.back() = last.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(secrets_equal(secret, first));
  EXPECT_FALSE(secrets_equal(secret, last));
  EXPECT_FALSE(secrets_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(SecretsEqualTest, DifferentLengthsAreNeverEqual) {
  const std::string secret = generate_secret("atl_s_");
  EXPECT_FALSE(secrets_equal(secret, secret.substr(0, secret.size() - 1)));
  EXPECT_FALSE(secrets_equal(secret, secret + "x"));
  EXPECT_FALSE(secrets_equal(secret, ""));
  EXPECT_FALSE(secrets_equal("", secret));
  EXPECT_FALSE(secrets_equal("abc", std::string("abc\0", 4)));
}

}  // namespace
}  // namespace atelier::auth
