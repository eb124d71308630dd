// multipart/form-data request bodies (RFC 7578 over RFC 2046's framing), as browsers' FormData
// and `curl -F` send them: the upload route reads its file part from here.
//
// Rules:
//   * The boundary comes from the Content-Type header's `boundary` parameter (token or quoted
//     string, 1..70 characters of RFC 2046's bchars, not ending in a space); the media type must
//     be multipart/form-data.
//   * Framing: an optional preamble, then `--boundary` at the start of the body or after CRLF;
//     every later delimiter is CRLF `--boundary`; transport padding (spaces, tabs) may follow a
//     boundary before its CRLF; the close delimiter `--boundary--` is required (without it: "body
//     is truncated"); the epilogue is ignored. Bare LF framing is refused.
//   * Each part: a header block of at most kMaxPartHeaderBytes, lines ending in CRLF, that must
//     hold one `Content-Disposition: form-data; name=...` (token or quoted string); `filename`
//     and `filename*` (RFC 8187: UTF-8 or ISO-8859-1, percent-encoded; it wins over `filename`)
//     give the file name. A quoted name or filename has the escapes browsers use undone (%22,
//     %0D, %0A, per the HTML standard; and backslash quoted-pairs). Names and file names must be
//     valid UTF-8. `Content-Type` gives the part's media type, lower-cased without parameters
//     (empty when absent). A Content-Transfer-Encoding other than 7bit, 8bit or binary is
//     refused (the body would not be the file). Other headers are ignored.
//   * At most `max_parts` parts.
//   * Any violation: invalid_argument naming the field "body", with a short message.
// Costs: linear in the body, whatever its bytes (a Boyer-Moore search for the delimiter runs
// once over it; Horspool's variant would take body x boundary steps on "aaaa..." against a
// boundary of a's); part bodies are spans into `body` (never copied); a few small strings per part.
// Threads: a pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace atelier::http {

inline constexpr size_t kMaxPartHeaderBytes = 8 << 10;
inline constexpr size_t kMaxBoundaryLength = 70;

struct MultipartPart {
  std::string name;
  std::optional<std::string> filename;
  std::string content_type;       // "image/png"; empty when the part has no Content-Type
  std::span<const uint8_t> body;  // into the request body
};

Result<std::vector<MultipartPart>> parse_multipart(std::string_view content_type_header,
                                                   std::span<const uint8_t> body,
                                                   size_t max_parts = 8);

}  // namespace atelier::http
