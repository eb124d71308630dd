// Fuzz target for the multipart/form-data parser (server/http/multipart.h). The input is
// "<Content-Type header value>\n<body>", so the boundary parameter is fuzzed with the body.
//
// Besides "no crash, no sanitizer report": a refusal is invalid_argument naming "body" with a
// short message; an accepted body yields at most max_parts parts whose bodies lie inside the
// input body, in order, without overlap, each followed by CRLF "--" (its delimiter), with names
// and file names that are valid UTF-8 and media types that are lower-case.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "server/http/multipart.h"

namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string_view header = input.substr(0, nl);
  const std::span<const uint8_t> body = nl == std::string_view::npos
                                            ? std::span<const uint8_t>()
                                            : std::span(data + nl + 1, size - nl - 1);
  constexpr size_t kMaxParts = 4;
  auto parts = atelier::http::parse_multipart(header, body, kMaxParts);
  if (!parts.is_ok()) {
    check(parts.status().code() == atelier::StatusCode::kInvalidArgument);
    check(parts.status().field() == "body");
    check(!parts.status().message().empty() && parts.status().message().size() < 200);
    return 0;
  }
  check(parts->size() <= kMaxParts);
  const uint8_t* last_end = body.data();
  for (const auto& part : *parts) {
    check(part.body.data() >= last_end);
    check(part.body.data() + part.body.size() <= body.data() + body.size());
    last_end = part.body.data() + part.body.size();
    const std::string_view after(reinterpret_cast<const char*>(last_end),
                                 static_cast<size_t>(body.data() + body.size() - last_end));
    check(after.starts_with("\r\n--"));
    check(valid_utf8(part.name));
    check(!part.filename || valid_utf8(*part.filename));
    for (char c : part.content_type) check(!(c >= 'A' && c <= 'Z'));
  }
  return 0;
}
