#include "server/http/static_files.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace atelier::http {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kNoCache = "no-cache";
constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";
constexpr std::string_view kHtml = "text/html; charset=utf-8";

// The web client's policy: its own scripts, styles, images and connections (WebSocket included:
// CSP3 lets 'self' match ws:/wss: to the same host), preview frames as blob: images, nothing
// inline or evaluated, never framed. Vite's build emits no inline script or style; the e2e
// suite (tests/e2e/security.mjs) runs the app under this policy and fails on any violation.
constexpr std::string_view kAppCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";
// The built-in page below: no script at all, and its one inline <style>.
constexpr std::string_view kNoBuildCsp =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

// Shown when the web client has not been built, so that someone who runs the bare binary learns
// what is missing instead of getting a 404.
constexpr std::string_view kNoBuildPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Atelier server</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }
code, pre { background: #f3f3f3; border-radius: 4px; padding: 0.1rem 0.3rem; }
pre { padding: 0.6rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>Atelier server</h1>
<p>This is the Atelier server. It is running, but the web client has not been built, so there is
no user interface to show yet.</p>
<p>To build everything (server and web client) and run it:</p>
<pre>make run</pre>
<p>Or build only the web client, then reload this page:</p>
<pre>npm --prefix web-client ci &amp;&amp; npm --prefix web-client run build</pre>
<p>The API lives under <a href="/api/v1/info"><code>/api/v1</code></a>. Health checks:
<a href="/healthz"><code>/healthz</code></a> and <a href="/readyz"><code>/readyz</code></a>.</p>
</body>
</html>
)html";

Response not_found() {
  return Response::error(404, "not_found", "no such file");
}

Response bad_request(std::string_view message) {
  return Response::error(400, "bad_request", message);
}

bool is_api_path(std::string_view decoded) {
  return decoded == "/api" || decoded.starts_with("/api/");
}

// True when the last path segment looks like a file name ("app.js", "robots.txt"): a dot that is
// neither the first nor the last character. Such misses are real 404s, not client routes.
bool has_extension(std::string_view segment) {
  size_t dot = segment.rfind('.');
  return dot != std::string_view::npos && dot != 0 && dot + 1 < segment.size();
}

// Whether `inner` (canonical) is `root` (canonical) or lies below it, compared by path element so
// that "/srv/www-evil" is not taken to be inside "/srv/www".
bool is_within(const fs::path& root, const fs::path& inner) {
  auto r = root.begin();
  auto i = inner.begin();
  for (; r != root.end(); ++r, ++i) {
    if (i == inner.end() || *r != *i) return false;
  }
  return true;
}

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate). Formatted by hand because strftime's
// day and month names follow the process locale.
std::string http_date(std::chrono::system_clock::time_point tp) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = std::chrono::system_clock::to_time_t(tp);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// If-None-Match uses weak comparison (RFC 9110 13.1.2): the W/ prefix is ignored on both sides.
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  auto opaque = [](std::string_view tag) {
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    return tag;
  };
  while (!if_none_match.empty()) {
    size_t comma = if_none_match.find(',');
    std::string_view candidate = trim(if_none_match.substr(0, comma));
    if_none_match =
        comma == std::string_view::npos ? std::string_view() : if_none_match.substr(comma + 1);
    if (candidate == "*" || (!candidate.empty() && opaque(candidate) == opaque(etag))) return true;
  }
  return false;
}

// What every HTML page carries: no framing (clickjacking), no referrer to other sites.
void set_page_headers(Response& r, std::string_view csp) {
  r.headers.set("Content-Security-Policy", csp);
  r.headers.set("X-Frame-Options", "DENY");  // for browsers without frame-ancestors
  r.headers.set("Referrer-Policy", "same-origin");
}

Response no_build_page() {
  Response r = Response::text(200, std::string(kNoBuildPage), kHtml);
  r.headers.set("Cache-Control", kNoCache);
  r.headers.set("X-Content-Type-Options", "nosniff");
  set_page_headers(r, kNoBuildCsp);
  return r;
}

}  // namespace

std::filesystem::path default_web_root() {
#ifdef ATELIER_DEFAULT_WEB_ROOT
  return fs::path(ATELIER_DEFAULT_WEB_ROOT);
#else
  return {};
#endif
}

std::string_view content_type_for(std::string_view file_name) {
  struct Entry {
    std::string_view ext;
    std::string_view type;
  };
  static constexpr std::array<Entry, 18> kTypes = {{
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json; charset=utf-8"},
      {"map", "application/json; charset=utf-8"},
      {"svg", "image/svg+xml; charset=utf-8"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"webp", "image/webp"},
      {"gif", "image/gif"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"txt", "text/plain; charset=utf-8"},
      {"wasm", "application/wasm"},
  }};
  size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string_view ext = file_name.substr(dot + 1);
  for (const Entry& e : kTypes) {
    if (iequals(ext, e.ext)) return e.type;
  }
  if (iequals(ext, "webmanifest")) return "application/manifest+json; charset=utf-8";
  return "application/octet-stream";
}

bool has_content_hash(std::string_view name) {
  auto hash_char = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  // Each '-' or '.' may start the hash; the run after it must be long enough and be followed by
  // the extension's dot ("index-3f9a1c2b.js", "index-3f9a1c2b.js.map"), so the extension itself
  // ("logo.png") never counts.
  for (size_t i = 1; i < name.size(); ++i) {
    if (name[i] != '-' && name[i] != '.') continue;
    size_t j = i + 1;
    while (j < name.size() && hash_char(name[j])) ++j;
    if (j - (i + 1) >= 8 && j < name.size() && name[j] == '.') return true;
  }
  return false;
}

StaticFiles::StaticFiles(fs::path root) {
  std::error_code ec;
  root_ = fs::canonical(root, ec);
  if (ec) {
    // Not there yet (e.g. the client is built later): keep an absolute, normalized path so that
    // the containment check still compares like with like.
    root_ = fs::weakly_canonical(fs::absolute(root, ec), ec);
    if (ec) root_ = root.lexically_normal();
  }
}

bool StaticFiles::has_build() const {
  std::error_code ec;
  return fs::is_regular_file(root_ / "index.html", ec);
}

namespace {

// Canonical path of `p` when it is a regular file inside `root`; nullopt otherwise (missing,
// a directory, a device, or a symlink that leads out of the root).
std::optional<fs::path> resolve_inside(const fs::path& root, const fs::path& p) {
  std::error_code ec;
  fs::path canon = fs::canonical(p, ec);
  if (ec || !is_within(root, canon)) return std::nullopt;
  if (!fs::is_regular_file(canon, ec)) return std::nullopt;
  return canon;
}

Response serve_file(const fs::path& root, const fs::path& file, const Request& req) {
  std::error_code ec;
  std::uintmax_t size = fs::file_size(file, ec);
  if (ec) return not_found();
  fs::file_time_type mtime = fs::last_write_time(file, ec);
  if (ec) return not_found();

  std::string name = file.filename().string();
  std::string rel = file.lexically_relative(root).generic_string();
  bool html = content_type_for(name).starts_with("text/html");
  // Hashed assets never change under their name, so browsers may keep them for a year; anything
  // else (index.html above all, which names the current hashes) must be revalidated.
  std::string_view cache =
      !html && rel.starts_with("assets/") && has_content_hash(name) ? kImmutable : kNoCache;

  auto mtime_ticks = static_cast<std::uint64_t>(mtime.time_since_epoch().count());
  char etag[64];
  std::snprintf(etag, sizeof(etag), "W/\"%jx-%jx\"", static_cast<std::uintmax_t>(size),
                static_cast<std::uintmax_t>(mtime_ticks));
  auto sys_time = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      std::chrono::file_clock::to_sys(mtime));

  Response r;
  r.headers.set("ETag", etag);
  r.headers.set("Last-Modified", http_date(sys_time));
  r.headers.set("Cache-Control", cache);
  r.headers.set("X-Content-Type-Options", "nosniff");
  if (html) set_page_headers(r, kAppCsp);

  if (auto inm = req.headers.get("If-None-Match"); inm && etag_matches(*inm, etag)) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.headers.set("Content-Type", content_type_for(name));
  // Set for HEAD too: the server takes Content-Length from the file and drops the body.
  r.file = file;
  return r;
}

}  // namespace

Response StaticFiles::serve(const Request& req) const {
  std::optional<std::string> decoded = percent_decode(req.path);
  if (!decoded) return bad_request("malformed percent-encoding in path");
  if (decoded->find('\0') != std::string::npos) return bad_request("NUL byte in path");
  // Checked before the method, so an unknown API route answers 404 rather than 405.
  if (is_api_path(*decoded)) return Response::error(404, "not_found", "no such API endpoint");

  if (req.method != Method::kGet && req.method != Method::kHead) {
    Response r = Response::error(405, "method_not_allowed", "static files allow GET and HEAD");
    r.headers.set("Allow", "GET, HEAD");
    return r;
  }

  // Origin-form only ("/..."); backslashes are refused outright because some clients and file
  // systems treat them as separators.
  std::string_view path = *decoded;
  if (!path.starts_with('/') || path.find('\\') != std::string_view::npos) return not_found();

  // Split into segments, refusing ".", ".." and empty segments. Empty ones would let
  // "//etc/passwd" become an absolute path once joined to the root. A trailing '/' (a directory)
  // is the one empty segment allowed.
  std::vector<std::string_view> segments;
  std::string_view rest = path.substr(1);
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    if (seg.empty() || seg == "." || seg == "..") return not_found();
    segments.push_back(seg);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }

  fs::path candidate = root_;
  for (std::string_view seg : segments) candidate /= fs::path(std::string(seg));

  std::error_code ec;
  fs::file_status st = fs::status(candidate, ec);
  if (fs::is_directory(st)) {
    if (auto index = resolve_inside(root_, candidate / "index.html")) {
      return serve_file(root_, *index, req);
    }
    // The root without index.html means "not built yet"; other directories are never listed.
    if (segments.empty() && !has_build()) return no_build_page();
    return not_found();
  }
  if (fs::exists(st)) {
    // Also refuses symlinks out of the root and non-regular files (FIFOs, devices).
    if (auto file = resolve_inside(root_, candidate)) return serve_file(root_, *file, req);
    return not_found();
  }
  if (st.type() != fs::file_type::not_found) return not_found();  // EACCES and the like
  // A dangling symlink is a refusal, not a client route.
  if (fs::exists(fs::symlink_status(candidate, ec))) return not_found();

  // SPA fallback: the client router owns extension-less paths such as /p/42.
  if (!segments.empty() && has_extension(segments.back())) return not_found();
  if (auto index = resolve_inside(root_, root_ / "index.html")) {
    return serve_file(root_, *index, req);
  }
  if (!has_build()) return no_build_page();
  return not_found();
}

}  // namespace atelier::http
