#include "server/api/text_checks.h"

#include <algorithm>

namespace atelier::api {

namespace {
constexpr size_t kMaxShownKeyBytes = 64;
}  // namespace

// Returns the offset where the first ill-formed UTF-8 sequence starts (Unicode 15, table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequences), or nullopt.
std::optional<size_t> first_invalid_utf8(std::string_view s) {
  auto in = [](unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; };
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte; later ones are 80..BF
    if (in(c, 0xC2, 0xDF)) {
      need = 1;
    } else if (in(c, 0xE0, 0xEF)) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // U+D800..U+DFFF are surrogates
    } else if (in(c, 0xF0, 0xF4)) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    for (size_t k = 1; k <= need; ++k) {
      if (i + k >= s.size()) return i;
      auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? !in(b, lo, hi) : !in(b, 0x80, 0xBF)) return i;
    }
    i += need + 1;
  }
  return std::nullopt;
}

// Code points in valid UTF-8: every byte that is not a continuation byte starts one.
size_t count_chars(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// True when valid UTF-8 `s` holds a C0 or C1 control character or DEL (tab, LF and CR pass when
// `multiline`). C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
bool has_control_chars(std::string_view s, bool multiline) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20) {
      if (multiline && (c == '\t' || c == '\n' || c == '\r')) continue;
      return true;
    }
    if (c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return true;
  }
  return false;
}

// A client-chosen key as it may appear in a message: control characters replaced, long keys cut
// (on a code point boundary) so an error cannot echo a megabyte back.
std::string shown_key(std::string_view key) {
  std::string out;
  size_t end = key.size();
  if (end > kMaxShownKeyBytes) {
    end = kMaxShownKeyBytes;
    while (end > 0 && (static_cast<unsigned char>(key[end]) & 0xC0) == 0x80) --end;
  }
  for (size_t i = 0; i < end; ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    bool c1 = c == 0xC2 && i + 1 < end && static_cast<unsigned char>(key[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7F || c1) {
      out += '?';
      if (c1) ++i;
      continue;
    }
    out += key[i];
  }
  if (end < key.size()) out += "...";
  return out;
}

}  // namespace atelier::api
