#include "server/http/multipart.h"

#include <algorithm>
#include <functional>

namespace atelier::http {

namespace {

constexpr std::string_view kCrlf = "\r\n";

Status bad(std::string message) {
  return Status::invalid_argument(std::move(message), "body");
}

Status truncated() {
  return bad("body is truncated: the closing multipart boundary is missing");
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 2046 bchars (a space only inside).
bool is_bchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

struct Param {
  std::string name;  // lower-cased
  std::string value;
};

// `value *( OWS ";" OWS name OWS "=" OWS ( token | quoted-string ) ) OWS`, as Content-Type and
// Content-Disposition carry. The main value comes back lower-cased. A quoted string has its
// quoted-pairs undone; an unquoted value runs to the next ';' or space. Nullopt on bad syntax.
struct HeaderValue {
  std::string main;
  std::vector<Param> params;
};
std::optional<HeaderValue> parse_header_value(std::string_view s) {
  HeaderValue out;
  size_t semi = s.find(';');
  out.main = lowered(trim(s.substr(0, semi)));
  if (semi == std::string_view::npos) return out;
  size_t i = semi + 1;
  auto skip_ows = [&] {
    while (i < s.size() && is_ows(s[i])) ++i;
  };
  while (true) {
    skip_ows();
    if (i == s.size()) return out;  // a trailing ';' is tolerated
    const size_t name_start = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    if (i == name_start) return std::nullopt;
    Param p{lowered(s.substr(name_start, i - name_start)), {}};
    skip_ows();
    if (i == s.size() || s[i] != '=') return std::nullopt;
    ++i;
    skip_ows();
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i == s.size()) return std::nullopt;
          p.value += s[i++];
        } else {
          p.value += c;
        }
      }
      if (!closed) return std::nullopt;
    } else {
      const size_t start = i;
      while (i < s.size() && s[i] != ';' && !is_ows(s[i]) && s[i] != '"') ++i;
      if (i == start) return std::nullopt;
      p.value = std::string(s.substr(start, i - start));
    }
    out.params.push_back(std::move(p));
    skip_ows();
    if (i == s.size()) return out;
    if (s[i] != ';') return std::nullopt;
    ++i;
  }
}

// The one value of parameter `name`; an error when it is given twice.
Result<std::optional<std::string>> unique_param(const HeaderValue& v, std::string_view name,
                                                std::string_view header) {
  std::optional<std::string> found;
  for (const Param& p : v.params) {
    if (p.name != name) continue;
    if (found) return bad(std::string(header) + " gives '" + std::string(name) + "' twice");
    found = p.value;
  }
  return found;
}

// Undoes the escapes the HTML standard has browsers apply to names and file names in
// multipart/form-data (%22, %0D, %0A); any other '%' stays as it is.
std::string undo_form_escapes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      const int byte = hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
      if (byte == '"' || byte == '\r' || byte == '\n') {
        out += static_cast<char>(byte);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// RFC 8187 ext-value: charset "'" [language] "'" percent-encoded bytes, as UTF-8.
Result<std::string> decode_ext_value(std::string_view v) {
  const size_t q1 = v.find('\'');
  const size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return bad("filename* is not charset'language'value");
  const std::string charset = lowered(v.substr(0, q1));
  const bool latin1 = charset == "iso-8859-1";
  if (charset != "utf-8" && !latin1) {
    return bad("filename* has an unsupported charset (UTF-8 or ISO-8859-1)");
  }
  std::string out;
  for (size_t i = q2 + 1; i < v.size(); ++i) {
    auto byte = static_cast<unsigned char>(v[i]);
    if (v[i] == '%') {
      const int hi = i + 2 < v.size() ? hex_digit(v[i + 1]) : -1;
      const int lo = i + 2 < v.size() ? hex_digit(v[i + 2]) : -1;
      if (hi < 0 || lo < 0) return bad("filename* has a malformed percent-escape");
      byte = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    if (latin1 && byte >= 0x80) {
      out += static_cast<char>(0xc0 | (byte >> 6));
      out += static_cast<char>(0x80 | (byte & 0x3f));
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out;
}

Status read_disposition(std::string_view value, MultipartPart& part) {
  auto v = parse_header_value(value);
  if (!v) return bad("a part's Content-Disposition is malformed");
  if (v->main != "form-data") return bad("a part's Content-Disposition is not form-data");
  ATELIER_ASSIGN_OR_RETURN(auto name, unique_param(*v, "name", "Content-Disposition"));
  if (!name) return bad("a part's Content-Disposition has no name");
  ATELIER_ASSIGN_OR_RETURN(auto filename, unique_param(*v, "filename", "Content-Disposition"));
  ATELIER_ASSIGN_OR_RETURN(auto ext, unique_param(*v, "filename*", "Content-Disposition"));
  part.name = undo_form_escapes(*name);
  if (ext) {
    ATELIER_ASSIGN_OR_RETURN(part.filename, decode_ext_value(*ext));
  } else if (filename) {
    part.filename = undo_form_escapes(*filename);
  }
  if (!valid_utf8(part.name) || (part.filename && !valid_utf8(*part.filename))) {
    return bad("a part's name or filename is not valid UTF-8");
  }
  return Status::ok();
}

// `block`: the part's header lines, each ending in CRLF (empty when it has none).
Status read_part_headers(std::string_view block, MultipartPart& part) {
  bool has_disposition = false;
  while (!block.empty()) {
    const size_t eol = block.find(kCrlf);  // the block ends in CRLF, so there is one
    const std::string_view line = block.substr(0, eol);
    block.remove_prefix(eol + kCrlf.size());
    for (char c : line) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return bad("a part's header holds a control character (parts are framed by CRLF)");
      }
    }
    if (!line.empty() && is_ows(line.front())) return bad("folded part headers are not accepted");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), is_tchar)) {
      return bad("a part's header line is malformed");
    }
    const std::string name = lowered(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "content-disposition") {
      if (has_disposition) return bad("a part has two Content-Disposition headers");
      has_disposition = true;
      ATELIER_RETURN_IF_ERROR(read_disposition(value, part));
    } else if (name == "content-type") {
      const std::string type = lowered(trim(value.substr(0, value.find(';'))));
      if (!std::all_of(type.begin(), type.end(), [](char c) { return is_tchar(c) || c == '/'; })) {
        return bad("a part's Content-Type is malformed");
      }
      part.content_type = type;
    } else if (name == "content-transfer-encoding") {
      const std::string enc = lowered(value);
      if (enc != "7bit" && enc != "8bit" && enc != "binary") {
        return bad("a part's Content-Transfer-Encoding must be binary");
      }
    }
  }
  if (!has_disposition) return bad("a part has no Content-Disposition");
  return Status::ok();
}

Result<std::string> boundary_of(std::string_view content_type_header) {
  auto v = parse_header_value(content_type_header);
  if (!v) return bad("Content-Type is malformed");
  if (v->main != "multipart/form-data") return bad("Content-Type is not multipart/form-data");
  ATELIER_ASSIGN_OR_RETURN(auto boundary, unique_param(*v, "boundary", "Content-Type"));
  if (!boundary) return bad("Content-Type has no multipart boundary");
  if (boundary->empty() || boundary->size() > kMaxBoundaryLength ||
      !std::all_of(boundary->begin(), boundary->end(), is_bchar) || boundary->back() == ' ') {
    return bad("the multipart boundary must be 1 to 70 characters of RFC 2046");
  }
  return *boundary;
}

}  // namespace

Result<std::vector<MultipartPart>> parse_multipart(std::string_view content_type_header,
                                                   std::span<const uint8_t> body,
                                                   size_t max_parts) {
  ATELIER_ASSIGN_OR_RETURN(const std::string boundary, boundary_of(content_type_header));
  const std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
  const std::string delimiter = "\r\n--" + boundary;
  const std::string_view dash_boundary = std::string_view(delimiter).substr(kCrlf.size());
  const std::boyer_moore_searcher searcher(delimiter.begin(), delimiter.end());
  auto find_delimiter = [&](size_t from) {
    auto it = std::search(text.begin() + static_cast<std::ptrdiff_t>(from), text.end(), searcher);
    return it == text.end() ? std::string_view::npos : static_cast<size_t>(it - text.begin());
  };

  // `pos`: just past a boundary. The first may open the body or follow a preamble and CRLF.
  size_t pos;
  if (text.starts_with(dash_boundary)) {
    pos = dash_boundary.size();
  } else {
    const size_t first = find_delimiter(0);
    if (first == std::string_view::npos) return bad("body does not hold the multipart boundary");
    pos = first + delimiter.size();
  }
  std::vector<MultipartPart> parts;
  while (true) {
    const std::string_view rest = text.substr(pos);
    if (rest.starts_with("--")) return parts;  // the close delimiter; the epilogue is ignored
    while (pos < text.size() && is_ows(text[pos])) ++pos;  // transport padding
    if (text.size() - pos < kCrlf.size()) return truncated();
    if (text.substr(pos, kCrlf.size()) != kCrlf) {
      return bad("a multipart boundary line must end with CRLF");
    }
    if (parts.size() == max_parts) {
      return bad("body has more than " + std::to_string(max_parts) + " parts");
    }
    // The header block runs from the boundary line's CRLF to the first empty line.
    const size_t window = std::min(text.size(), pos + kMaxPartHeaderBytes + 2 * kCrlf.size());
    const size_t blank = text.substr(0, window).find("\r\n\r\n", pos);
    if (blank == std::string_view::npos) {
      if (window == text.size()) return truncated();
      return bad("a part's headers are larger than " + std::to_string(kMaxPartHeaderBytes >> 10) +
                 " KiB");
    }
    MultipartPart part;
    const size_t headers_start = pos + kCrlf.size();
    ATELIER_RETURN_IF_ERROR(
        read_part_headers(text.substr(headers_start, blank + kCrlf.size() - headers_start), part));
    // The body follows the empty line; a part may also end right after its headers, the
    // empty line's CRLF then being the delimiter's.
    const size_t next = find_delimiter(blank + kCrlf.size());
    if (next == std::string_view::npos) return truncated();
    const size_t body_start = std::min(next, blank + 2 * kCrlf.size());
    part.body = body.subspan(body_start, next - body_start);
    parts.push_back(std::move(part));
    pos = next + delimiter.size();
  }
}

}  // namespace atelier::http
