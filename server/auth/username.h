// Usernames: the handle a person logs in with and is shown by.
//
// The rule is deliberately narrow (3-32 of a-z 0-9 _ . -): usernames appear in URLs, logs and
// @-mentions, and an ASCII-only alphabet rules out look-alike ("homoglyph") accounts and Unicode
// normalisation questions. Matching is case-insensitive by storing only the lower-cased form, so
// "Ada" and "ada" are one account.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace atelier::auth {

inline constexpr std::size_t kMinUsernameLength = 3;
inline constexpr std::size_t kMaxUsernameLength = 32;

// The canonical (stored and compared) form of `username`: ASCII letters lower-cased, everything
// else unchanged. Fails with kInvalidArgument, field "username", and a message that states the
// rule, unless the input is 3-32 characters each of which is an ASCII letter, a digit, '_', '.'
// or '-'. Nothing is trimmed: surrounding spaces are an error, not silently dropped. Any byte
// outside ASCII (so any non-ASCII character) is rejected. Thread-safe; no locale involved.
Result<std::string> normalize_username(std::string_view username);

}  // namespace atelier::auth
