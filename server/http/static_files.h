// Serves the built web client (Vite output: index.html plus content-hashed files in assets/).
//
// Contract of StaticFiles::serve:
//   - Only GET and HEAD; anything else is 405 with `Allow: GET, HEAD`.
//   - Paths under /api/ (and /api itself) are never served from here: 404.
//   - The path is percent-decoded; malformed escapes and NUL bytes are 400. Backslashes, "." or
//     ".." segments (encoded or not), empty segments ("//etc/passwd") are 404. The resolved file
//     must be a regular file whose canonical (symlink-resolved) path lies inside the canonical
//     root, otherwise 404. Every refusal carries the standard JSON error body, never file bytes.
//   - A directory path serves that directory's index.html if present; directories are not listed.
//   - A missing path whose last segment has no extension (client routes such as /p/42) gets
//     index.html with 200 (SPA fallback). Missing paths with an extension are 404.
//   - File responses set Response::file (the body is streamed, never read here), Content-Type
//     (text types with charset=utf-8), X-Content-Type-Options: nosniff, Cache-Control, a weak
//     ETag from size and mtime, and Last-Modified. HTML (index.html, the SPA fallback, the
//     no-build page) also carries Content-Security-Policy (no inline or evaluated script;
//     frame-ancestors 'none'), X-Frame-Options: DENY and Referrer-Policy: same-origin. A matching
//     If-None-Match yields 304. Cache-Control is `public, max-age=31536000, immutable` for
//     content-hashed names under assets/, `no-cache` for everything else (index.html must be
//     revalidated so that a new build is picked up at once).
//   - Without a build (no index.html in the root), "/" and SPA-fallback paths answer 200 with a
//     built-in page explaining how to build the client, so a bare binary still answers.
//
// StaticFiles is immutable after construction and safe to use from many threads at once.
#pragma once

#include <filesystem>
#include <string_view>

#include "server/http/message.h"

namespace atelier::http {

class StaticFiles {
 public:
  // `root` is canonicalized here, once. A root that does not exist (yet) is kept as an absolute
  // path; has_build() then reports false until an index.html appears there.
  explicit StaticFiles(std::filesystem::path root);

  // True when root/index.html exists. Checked on each call, so a client built while the server
  // runs is picked up without a restart.
  bool has_build() const;

  Response serve(const Request& req) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

// The build-time default web root (web-client/dist of the source tree), for when the command line
// names none. Empty when the build did not define one.
std::filesystem::path default_web_root();

// Exposed for tests: the Content-Type served for a file name, by its extension.
std::string_view content_type_for(std::string_view file_name);

// Exposed for tests: whether `name` (a file name without directories) carries a content hash: a
// '-' or '.' followed by 8 or more characters of [A-Za-z0-9_-], followed by the extension.
bool has_content_hash(std::string_view name);

}  // namespace atelier::http
