#include "server/api/upload_request.h"

#include <optional>
#include <vector>

#include "server/api/errors.h"
#include "server/http/multipart.h"

namespace atelier::api {

namespace {

constexpr std::string_view kAccepted =
    "image/png, image/jpeg, image/webp or multipart/form-data with one such file";
constexpr char32_t kReplacement = 0xFFFD;
// An extension longer than this is not kept apart when a name is cut ("x.tar.gz" keeps ".gz").
constexpr size_t kMaxExtensionBytes = 16;

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The media type of a Content-Type value without its parameters ("image/png; x=y" -> image/png).
std::string_view media_type(std::string_view value) {
  return trim_ows(value.substr(0, value.find(';')));
}

std::optional<image::ImageFormat> image_format_for(std::string_view type) {
  if (http::iequals(type, "image/png")) return image::ImageFormat::kPng;
  if (http::iequals(type, "image/jpeg")) return image::ImageFormat::kJpeg;
  if (http::iequals(type, "image/webp")) return image::ImageFormat::kWebp;
  return std::nullopt;
}

Status refuse_type(std::string_view what) {
  return unsupported_media_type(std::string(what) + " is not accepted: send " +
                                std::string(kAccepted));
}

Result<image::AlphaMode> parse_alpha(std::string_view text) {
  if (text == "flatten") return image::AlphaMode::kFlatten;
  if (text == "keep") return image::AlphaMode::kKeep;
  return Status::invalid_argument("'alpha' must be flatten or keep", "alpha");
}

// The query's alpha (default flatten) and filename, shared by both body forms.
struct QueryOptions {
  image::AlphaMode alpha = image::AlphaMode::kFlatten;
  std::optional<std::string> filename;
};

Result<QueryOptions> query_options(const http::Request& request) {
  QueryOptions out;
  if (auto alpha = request.query_param("alpha"); alpha && !alpha->empty()) {
    ATELIER_ASSIGN_OR_RETURN(out.alpha, parse_alpha(*alpha));
  }
  out.filename = request.query_param("filename");
  return out;
}

Status require_file(std::span<const uint8_t> file) {
  if (file.empty()) return Status::invalid_argument("the file is empty", "file");
  return Status::ok();
}

std::span<const uint8_t> bytes_of(const std::string& body) {
  return {reinterpret_cast<const uint8_t*>(body.data()), body.size()};
}

Result<UploadRequest> parse_multipart_upload(const http::Request& request,
                                             std::string_view content_type,
                                             const QueryOptions& query) {
  ATELIER_ASSIGN_OR_RETURN(std::vector<http::MultipartPart> parts,
                           http::parse_multipart(content_type, bytes_of(request.body)));
  const http::MultipartPart* file = nullptr;
  UploadRequest out;
  out.alpha = query.alpha;
  for (const http::MultipartPart& part : parts) {
    if (part.name == "alpha" && !part.filename) {
      std::string_view text(reinterpret_cast<const char*>(part.body.data()), part.body.size());
      ATELIER_ASSIGN_OR_RETURN(out.alpha, parse_alpha(text));
      continue;
    }
    if (file) {
      return Status::invalid_argument("send exactly one file part (and optionally 'alpha')",
                                      "file");
    }
    file = &part;
  }
  if (!file) return Status::invalid_argument("the form has no file part", "file");
  ATELIER_RETURN_IF_ERROR(require_file(file->body));
  const std::string_view type = media_type(file->content_type);
  if (type.empty() || http::iequals(type, "application/octet-stream")) {
    // Browsers send octet-stream for files they cannot type: the bytes say what it is. A known
    // but refused format (GIF, SVG, ...) is named with field Content-Type (415), unrecognisable
    // bytes with field "file".
    ATELIER_ASSIGN_OR_RETURN(out.format, image::sniff_format(file->body));
  } else if (auto format = image_format_for(type)) {
    out.format = *format;
  } else {
    return refuse_type("a file part of type " + std::string(type));
  }
  out.file = file->body;
  // The part's own name first: that is the file the user picked.
  out.original_name =
      sanitize_file_name(file->filename ? *file->filename : query.filename.value_or(std::string()));
  return out;
}

// --- file names -----------------------------------------------------------------------------

// Decodes one code point at `s[i]`, advancing `i`; an invalid sequence yields U+FFFD for its
// first byte (and decoding resumes after that byte).
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    ++i;
    return kReplacement;
  }
  if (i + len > s.size()) {
    ++i;
    return kReplacement;
  }
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return kReplacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return kReplacement;
  }
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_space(char32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' ||
         cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Characters that are dropped: C0/C1 controls and DEL, and the bidirectional formatting
// characters that can make "gpj.exe" display as "exe.jpg" (overrides, embeddings, isolates,
// marks).
bool is_dropped(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

// The longest prefix of `s` (valid UTF-8) of at most `max` bytes that ends on a character.
std::string_view utf8_prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

std::string sanitize_file_name(std::string_view name) {
  // The base name: browsers on Windows and old ones send full paths.
  if (size_t slash = name.find_last_of("/\\"); slash != std::string_view::npos) {
    name.remove_prefix(slash + 1);
  }
  std::string clean;
  bool pending_space = false;
  for (size_t i = 0; i < name.size();) {
    const char32_t cp = next_code_point(name, i);
    if (is_space(cp)) {
      pending_space = true;
      continue;
    }
    if (is_dropped(cp)) continue;
    // Leading dots (hidden files, "..") go, and the spaces between them.
    if (clean.empty() && cp == '.') {
      pending_space = false;
      continue;
    }
    if (pending_space && !clean.empty()) clean += ' ';
    pending_space = false;
    append_utf8(clean, cp);
  }
  if (clean.size() <= kMaxUploadNameBytes) return clean;
  // Too long: cut the stem, keep a short extension.
  std::string_view all = clean;
  std::string_view ext;
  if (size_t dot = all.rfind('.');
      dot != std::string_view::npos && dot > 0 && all.size() - dot <= kMaxExtensionBytes) {
    ext = all.substr(dot);
  }
  std::string_view stem = all.substr(0, all.size() - ext.size());
  std::string out(trim_spaces(utf8_prefix(stem, kMaxUploadNameBytes - ext.size())));
  out += ext;
  return out;
}

Result<UploadRequest> parse_upload_request(const http::Request& request) {
  const std::optional<std::string_view> header = request.headers.get(kContentTypeField);
  if (!header || media_type(*header).empty()) return refuse_type("a request without Content-Type");
  ATELIER_ASSIGN_OR_RETURN(QueryOptions query, query_options(request));
  const std::string_view type = media_type(*header);
  if (http::iequals(type, "multipart/form-data")) {
    return parse_multipart_upload(request, *header, query);
  }
  const std::optional<image::ImageFormat> format = image_format_for(type);
  if (!format) return refuse_type("Content-Type " + std::string(type));
  UploadRequest out;
  out.format = *format;
  out.file = bytes_of(request.body);
  ATELIER_RETURN_IF_ERROR(require_file(out.file));
  out.alpha = query.alpha;
  out.original_name = sanitize_file_name(query.filename.value_or(std::string()));
  return out;
}

}  // namespace atelier::api
