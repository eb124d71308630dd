// The text checks JSON bodies apply to what clients send: well-formed UTF-8, a length in code
// points, control characters, and how a client-chosen key may be quoted back in an error.
// Pure functions on bytes; no allocation except shown_key's result.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace atelier::api {

// Returns the offset where the first ill-formed UTF-8 sequence starts (Unicode 15, table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequences), or nullopt.
std::optional<size_t> first_invalid_utf8(std::string_view s);

// Code points in valid UTF-8: every byte that is not a continuation byte starts one.
size_t count_chars(std::string_view s);

// True when valid UTF-8 `s` holds a C0 or C1 control character or DEL (tab, LF and CR pass when
// `multiline`). C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
bool has_control_chars(std::string_view s, bool multiline);

// A client-chosen key as it may appear in a message: control characters replaced, long keys cut
// (on a code point boundary) so an error cannot echo a megabyte back.
std::string shown_key(std::string_view key);

}  // namespace atelier::api
