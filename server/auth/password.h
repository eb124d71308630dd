// Password hashing and the password policy.
//
// Passwords are hashed with Argon2id (libsodium's crypto_pwhash) into the self-describing PHC
// string "$argon2id$v=19$m=...,t=...,p=1$<salt>$<hash>". That string is the only thing stored: it
// carries a fresh random salt and the cost it was made with, so verification needs nothing else
// and a change of cost can be detected per user (needs_rehash) and applied at their next login.
//
// The policy (validate_password) is separate from hashing on purpose: it applies when a password
// is set or changed, never at login, so tightening the rules never locks out existing users.
//
// All functions are thread-safe. libsodium is initialised on first use. The common-password
// check uses cracklib (Debian's libcrack2 and its dictionary, cracklib-runtime), which keeps its
// state in statics: those checks run one at a time process-wide.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace atelier::auth {

// Argon2id work factors: `ops` passes over memory and `mem` bytes of memory per hash.
struct PasswordCost {
  std::uint64_t ops = 0;
  std::size_t mem = 0;

  // libsodium's INTERACTIVE limits (2 passes over 64 MiB; about 0.15 s of one core on the
  // build machines): the production default for logins. Every hash or verify in flight holds
  // its 64 MiB, so callers should bound how many run at once (a small worker pool), or a burst of
  // logins becomes a memory spike.
  static PasswordCost interactive();
  // The smallest limits libsodium accepts (1 pass, 8 KiB). Worthless against an attacker; only
  // for tests, so that suites hashing many passwords stay fast.
  static PasswordCost for_tests();

  friend bool operator==(const PasswordCost&, const PasswordCost&) = default;
};

inline constexpr std::size_t kMinPasswordChars = 8;     // Unicode code points
inline constexpr std::size_t kMaxPasswordBytes = 1024;  // UTF-8 bytes

// The length rules of the policy, alone: valid UTF-8, at least kMinPasswordChars code points (so
// 8 accented or CJK characters count as 8, not 16-24) and at most kMaxPasswordBytes bytes (a
// bound on hashing input, not a strength rule). Any character is allowed, spaces and symbols
// included. Errors are kInvalidArgument with field "password"; the message states the rule and
// never echoes the password. Costs microseconds: fit for an I/O thread.
Status validate_password_length(std::string_view password);

// The password policy for setting or changing a password: the length rules first (with their
// messages), then a block list of common and simple passwords (NIST SP 800-63B): cracklib's
// dictionary with its mangling rules (reversed, leetspeak, suffixed words), too few different
// characters, keyboard runs, and passwords derived from `username` when one is given. A refusal is
// kInvalidArgument with field "password" and a message that says it is too common or too simple
// (never echoing the password); kInternal when the dictionary is not installed (the check fails
// closed). Costs about 1-2 ms and takes a process-wide lock: run it off the I/O threads.
Status validate_password(std::string_view password, std::string_view username = {});

// Hashes `password` with a fresh random salt at `cost`. Does not apply the policy (call
// validate_password first where it applies). Errors: kInvalidArgument when `cost` is outside
// libsodium's limits or the password is longer than Argon2 accepts (4 GiB);
// kResourceExhausted when the memory for the hash cannot be allocated; kInternal when libsodium
// cannot be initialised.
Result<std::string> hash_password(std::string_view password, PasswordCost cost);

// True when `password` matches `stored_hash` (a string from hash_password; legacy "$argon2i$"
// hashes verify too). Constant-time with respect to the password: libsodium recomputes the hash
// and compares it with sodium_memcmp. A malformed or empty stored hash is simply false.
bool verify_password(std::string_view stored_hash, std::string_view password);

// True when `stored_hash` was not made by Argon2id at exactly `cost` (cheaper or dearer, another
// algorithm, or unparseable): the caller should rehash the password it just verified and store
// the new hash.
bool needs_rehash(std::string_view stored_hash, PasswordCost cost);

}  // namespace atelier::auth
