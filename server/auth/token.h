// Opaque secrets: session cookies, API tokens, invite codes.
//
// A secret is a short, fixed prefix naming its kind (so a leaked string is recognisable, e.g. by
// secret scanners, and a session cookie cannot be mistaken for an API token) followed by 256 bits
// from libsodium's CSPRNG in unpadded base64url:
//
//   generate_secret("atl_s_") -> "atl_s_" + 43 characters of [A-Za-z0-9_-]
//
// The secret is shown to its owner once and never stored. The server stores hash_secret(secret)
// and looks a presented secret up by that hash. Plain SHA-256 is enough (no salt, no Argon2):
// with 256 random bits there is nothing to guess or precompute, and lookups must be cheap.
//
// All functions are thread-safe. libsodium is initialised on first use; if it cannot be (no
// usable randomness), generate_secret aborts the process rather than hand out a weak secret.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace atelier::auth {

inline constexpr std::size_t kSecretRandomBytes = 32;   // 256 bits
inline constexpr std::size_t kSecretEncodedChars = 43;  // unpadded base64url of 32 bytes
inline constexpr std::size_t kSecretHashHexChars = 64;  // hex SHA-256

// `prefix` followed by kSecretEncodedChars characters of base64url (A-Z a-z 0-9 - _, no '=')
// encoding kSecretRandomBytes fresh random bytes. The prefix is copied as is.
std::string generate_secret(std::string_view prefix);

// Lower-case hex SHA-256 of `secret` (kSecretHashHexChars characters): the stored form. The same
// input always gives the same hash.
std::string hash_secret(std::string_view secret);

// Lower-case hex SHA-256 of any bytes (content addresses of stored images, request hashes).
inline std::string sha256_hex(std::string_view bytes) {
  return hash_secret(bytes);
}

// True when `a` and `b` are byte-for-byte equal. The time taken depends only on the lengths,
// never on where the contents differ, so an attacker cannot find a secret byte by byte. Unequal
// lengths return false at once (lengths are public: every secret and hash has a fixed one).
bool secrets_equal(std::string_view a, std::string_view b);

}  // namespace atelier::auth
