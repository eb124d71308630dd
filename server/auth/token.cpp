#include "server/auth/token.h"

#include <sodium.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace atelier::auth {
namespace {

// sodium_init() seeds the CSPRNG and picks implementations for this CPU. It is idempotent and
// locks internally; the function-local static makes each process pay once. Without it there is
// no trustworthy randomness, and a predictable session token is worse than a crash.
void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) {
    std::fputs("atelier: libsodium could not be initialised; refusing to generate secrets\n",
               stderr);
    std::abort();
  }
}

static_assert(sodium_base64_ENCODED_LEN(kSecretRandomBytes,
                                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                  kSecretEncodedChars + 1,
              "kSecretEncodedChars must match libsodium's encoding (plus its NUL)");
static_assert(crypto_hash_sha256_BYTES * 2 == kSecretHashHexChars);

}  // namespace

std::string generate_secret(std::string_view prefix) {
  ensure_sodium();
  std::array<unsigned char, kSecretRandomBytes> random;
  randombytes_buf(random.data(), random.size());
  std::array<char, kSecretEncodedChars + 1> encoded;
  sodium_bin2base64(encoded.data(), encoded.size(), random.data(), random.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);

  std::string secret;
  secret.reserve(prefix.size() + kSecretEncodedChars);
  secret.append(prefix);
  secret.append(encoded.data(), kSecretEncodedChars);
  return secret;
}

std::string hash_secret(std::string_view secret) {
  ensure_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size());
  std::array<char, kSecretHashHexChars + 1> hex;
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return std::string(hex.data(), kSecretHashHexChars);
}

bool secrets_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // sodium_memcmp reads both buffers in full whatever they hold. An empty view may have a null
  // data(), which must not reach it.
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace atelier::auth
