#include "server/auth/username.h"

namespace atelier::auth {
namespace {

// <cctype> would consult the global locale and is undefined for negative chars; the alphabet is
// ASCII by definition, so it is spelled out.
bool is_allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

char to_lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

Status rule_violation() {
  return Status::invalid_argument(
      "username must be " + std::to_string(kMinUsernameLength) + "-" +
          std::to_string(kMaxUsernameLength) +
          " characters, each a letter a-z, a digit 0-9, '_', '.' or '-'",
      "username");
}

}  // namespace

Result<std::string> normalize_username(std::string_view username) {
  // Every allowed character is one byte, so a byte count outside the bounds is already wrong.
  if (username.size() < kMinUsernameLength || username.size() > kMaxUsernameLength) {
    return rule_violation();
  }
  std::string normalized;
  normalized.reserve(username.size());
  for (const char c : username) {
    const char lower = to_lower_ascii(c);
    if (!is_allowed(lower)) return rule_violation();
    normalized.push_back(lower);
  }
  return normalized;
}

}  // namespace atelier::auth
