#include "server/auth/password.h"

// crack.h uses size_t without declaring it; password.h has brought in <cstddef>.
#include <crack.h>
#include <sodium.h>

#include <filesystem>
#include <optional>
#include <string>

#include "common/mutex.h"

namespace atelier::auth {
namespace {

// sodium_init() picks the fastest implementations for this CPU and seeds the CSPRNG. It is
// idempotent and locks internally; the function-local static makes each process pay once.
bool sodium_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

// Number of code points in `s` when it is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing above U+10FFFF), nullopt otherwise. Strict so that "8 characters" means 8 characters
// a browser could have typed, not 8 stray bytes.
std::optional<std::size_t> count_utf8_code_points(std::string_view s) {
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;  // continuation bytes that follow the lead byte
    char32_t min = 0;       // smallest code point with this length (smaller ones are overlong)
    if (lead < 0x80) {
      extra = 0;
    } else if ((lead & 0xE0) == 0xC0) {
      extra = 1;
      min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2;
      min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3;
      min = 0x10000;
    } else {
      return std::nullopt;  // a continuation byte or 0xF8-0xFF where a character should start
    }
    // The lead byte's payload bits: all 7 for ASCII, fewer the longer the sequence.
    char32_t cp = extra == 0 ? lead : lead & (0x3F >> extra);
    if (s.size() - i - 1 < extra) return std::nullopt;  // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      if ((cont & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (cont & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    i += extra + 1;
    ++count;
  }
  return count;
}

bool cost_in_range(PasswordCost cost) {
  return cost.ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
         cost.ops <= crypto_pwhash_argon2id_OPSLIMIT_MAX &&
         cost.mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
         cost.mem <= crypto_pwhash_argon2id_MEMLIMIT_MAX;
}

// libsodium reads hash strings as NUL-terminated C strings; a string_view is not, and one that
// could not have come from hash_password (too long, embedded NUL) is rejected up front.
std::optional<std::string> as_hash_c_string(std::string_view stored_hash) {
  if (stored_hash.empty() || stored_hash.size() >= crypto_pwhash_STRBYTES ||
      stored_hash.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  return std::string(stored_hash);
}

// libsodium declares password pointers nonnull; a default-constructed string_view has a null
// data() even though its (zero) length makes it harmless.
const char* non_null_data(std::string_view s) {
  return s.empty() ? "" : s.data();
}

// cracklib keeps its working buffers and the open dictionary in statics and offers no handle:
// one check at a time in the whole process. (The lock guards library state, not a member.)
Mutex& cracklib_mutex() {
  static Mutex mu;
  return mu;
}

std::string without_nuls(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c != '\0') out.push_back(c);
  }
  return out;
}

// The block-list half of the policy. cracklib reads C strings, so NULs are left out rather than
// letting one cut the password short (and judge only its start).
Status check_not_common(std::string_view password, std::string_view username) {
  const char* dict = GetDefaultCracklibDict();
  // Some cracklib releases exit() when the dictionary cannot be opened: look before calling.
  std::error_code ec;
  for (const char* part : {".pwd", ".pwi"}) {
    if (!std::filesystem::is_regular_file(std::string(dict) + part, ec)) {
      return Status::internal(std::string("the common-password dictionary ") + dict +
                              " is missing; install Debian's cracklib-runtime");
    }
  }
  const std::string pw = without_nuls(password);
  const std::string user = without_nuls(username);
  std::string reason;
  {
    MutexLock lock(cracklib_mutex());
    // With a user name (even empty) cracklib compares against it instead of looking up this
    // process's own account, which may not exist in a container.
    const char* r = FascistCheckUser(pw.c_str(), dict, user.c_str(), "");
    if (r == nullptr) return Status::ok();
    reason = r;  // points at cracklib's static text
  }
  if (reason == "error loading dictionary") {  // present but unreadable or corrupt
    return Status::internal(std::string("the common-password dictionary ") + dict +
                            " cannot be loaded");
  }
  return Status::invalid_argument("this password is too common or too simple (" + reason +
                                      "); choose a longer one, such as a few unrelated words",
                                  "password");
}

}  // namespace

PasswordCost PasswordCost::interactive() {
  return {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
}

PasswordCost PasswordCost::for_tests() {
  return {crypto_pwhash_argon2id_OPSLIMIT_MIN, crypto_pwhash_argon2id_MEMLIMIT_MIN};
}

Status validate_password_length(std::string_view password) {
  // Bytes first: it bounds the work of the UTF-8 scan and needs no decoding.
  if (password.size() > kMaxPasswordBytes) {
    return Status::invalid_argument(
        "password must be at most " + std::to_string(kMaxPasswordBytes) + " bytes", "password");
  }
  const std::optional<std::size_t> chars = count_utf8_code_points(password);
  if (!chars) return Status::invalid_argument("password must be valid UTF-8 text", "password");
  if (*chars < kMinPasswordChars) {
    return Status::invalid_argument(
        "password must be at least " + std::to_string(kMinPasswordChars) + " characters",
        "password");
  }
  return Status::ok();
}

Status validate_password(std::string_view password, std::string_view username) {
  ATELIER_RETURN_IF_ERROR(validate_password_length(password));
  return check_not_common(password, username);
}

Result<std::string> hash_password(std::string_view password, PasswordCost cost) {
  if (!sodium_ready()) return Status::internal("libsodium could not be initialised");
  if (!cost_in_range(cost)) {
    return Status::invalid_argument("password hashing cost is outside libsodium's limits (ops " +
                                    std::to_string(cost.ops) + ", mem " + std::to_string(cost.mem) +
                                    " bytes)");
  }
  if (password.size() > crypto_pwhash_argon2id_PASSWD_MAX) {
    return Status::invalid_argument("password is too long to hash", "password");
  }
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, non_null_data(password), password.size(), cost.ops, cost.mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    // With the inputs checked above, the only failure left is the memory allocation.
    return Status(StatusCode::kResourceExhausted,
                  "out of memory hashing a password (" + std::to_string(cost.mem) + " bytes)");
  }
  return std::string(out);
}

bool verify_password(std::string_view stored_hash, std::string_view password) {
  if (!sodium_ready()) return false;
  const std::optional<std::string> hash = as_hash_c_string(stored_hash);
  if (!hash || password.size() > crypto_pwhash_argon2id_PASSWD_MAX) return false;
  return crypto_pwhash_str_verify(hash->c_str(), non_null_data(password), password.size()) == 0;
}

bool needs_rehash(std::string_view stored_hash, PasswordCost cost) {
  if (!sodium_ready()) return true;
  // The generic crypto_pwhash_str_needs_rehash() is content with an Argon2i hash at the right
  // cost. Every account should move to Argon2id, so the algorithm is part of the answer, checked
  // here explicitly rather than left to the Argon2id parser below.
  if (!stored_hash.starts_with(crypto_pwhash_argon2id_STRPREFIX)) return true;
  const std::optional<std::string> hash = as_hash_c_string(stored_hash);
  if (!hash || !cost_in_range(cost)) return true;
  return crypto_pwhash_argon2id_str_needs_rehash(hash->c_str(), cost.ops, cost.mem) != 0;
}

}  // namespace atelier::auth
