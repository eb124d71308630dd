#include "server/http/static_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace atelier::http {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSecret = "TOP-SECRET-OUTSIDE-THE-ROOT";

void write_file(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << content;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Request make_request(std::string_view path, Method method = Method::kGet) {
  Request req;
  req.method = method;
  req.method_text = std::string(method_name(method));
  req.path = std::string(path);
  req.target = std::string(path);
  return req;
}

// What a client would receive as the body: the streamed file or the in-memory body.
std::string body_of(const Response& r) {
  return r.file ? read_file(*r.file) : r.body;
}

std::string header(const Response& r, std::string_view name) {
  auto v = r.headers.get(name);
  return v ? std::string(*v) : std::string();
}

// A web root laid out like Vite output, with a file and a directory outside it, and symlinks that
// try to lead out of the root.
class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "atelier_static_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    root_ = base_ / "www";

    write_file(root_ / "index.html", "<html>INDEX</html>");
    write_file(root_ / "assets" / "index-abc12345.js", "console.log('app');");
    write_file(root_ / "assets" / "index-abc12345.css", "body{}");
    write_file(root_ / "assets" / "logo.png", "PNG");
    write_file(root_ / "vendor-abc12345.js", "vendor");
    write_file(root_ / "robots.txt", "User-agent: *");
    write_file(root_ / "data.json", "{}");
    write_file(root_ / "site.webmanifest", "{}");
    write_file(root_ / "blob.xyz", "blob");
    write_file(root_ / "sub" / "index.html", "<html>SUB</html>");
    write_file(root_ / "sub" / "page.txt", "page");
    fs::create_directories(root_ / "nodir");

    write_file(base_ / "outside" / "secret.txt", kSecret);
    write_file(base_ / "outside" / "index.html", kSecret);
    // Shares the root's name as a string prefix: "/…/www-evil" must not count as inside "/…/www".
    write_file(base_ / "www-evil" / "secret.txt", kSecret);
    fs::create_symlink(base_ / "outside" / "secret.txt", root_ / "link_out");
    fs::create_symlink(base_ / "outside" / "secret.txt", root_ / "link_out.txt");
    fs::create_directory_symlink(base_ / "outside", root_ / "link_dir");
    fs::create_symlink(base_ / "www-evil" / "secret.txt", root_ / "link_prefix.txt");
    fs::create_symlink(base_ / "does-not-exist", root_ / "dangling");
    // A symlink that stays inside the root is fine.
    fs::create_symlink(root_ / "robots.txt", root_ / "robots-link.txt");
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  // Serves `path` and checks the answer is a refusal with the JSON error body.
  void expect_refused(const StaticFiles& files, std::string_view path, int status) {
    SCOPED_TRACE(std::string(path));
    Response r = files.serve(make_request(path));
    EXPECT_EQ(r.status, status);
    EXPECT_FALSE(r.file.has_value());
    EXPECT_EQ(header(r, "Content-Type").rfind("application/json", 0), 0u);
    EXPECT_NE(r.body.find("\"error\""), std::string::npos);
    EXPECT_EQ(body_of(r).find(kSecret), std::string::npos);
  }

  fs::path base_;
  fs::path root_;
};

TEST_F(StaticFilesTest, ServesIndexForRoot) {
  StaticFiles files(root_);
  EXPECT_TRUE(files.has_build());
  for (std::string_view path : {"/", "/index.html"}) {
    SCOPED_TRACE(std::string(path));
    Response r = files.serve(make_request(path));
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.file.has_value());
    EXPECT_EQ(body_of(r), "<html>INDEX</html>");
    EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  }
}

TEST_F(StaticFilesTest, RootIsCanonicalized) {
  fs::create_directory_symlink(root_, base_ / "www-link");
  StaticFiles files(base_ / "www-link" / "sub" / "..");
  EXPECT_EQ(files.root(), fs::canonical(root_));
  Response r = files.serve(make_request("/assets/index-abc12345.js"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r), "console.log('app');");
}

TEST_F(StaticFilesTest, TraversalIsRefused) {
  StaticFiles files(root_);
  for (std::string_view path : {
           "/..",
           "/../",
           "/../outside/secret.txt",
           "/assets/../../outside/secret.txt",
           "/assets/../index.html",
           "/%2e%2e/outside/secret.txt",
           "/%2E%2e/outside/secret.txt",
           "/%2e%2E%2foutside%2fsecret.txt",
           "/..%2foutside%2fsecret.txt",
           "/..%2Foutside/secret.txt",
           "/.%2e/outside/secret.txt",
           "/%2e./outside/secret.txt",
           "/sub/%2e%2e/%2e%2e/outside/secret.txt",
           "/./index.html",
           "/%2e/index.html",
           "//etc/passwd",
           "//etc/passwd.txt",
           "/%2fetc/passwd",
           "/%2F%2Fetc%2Fpasswd",
           "/assets//index-abc12345.js",
           "/..\\outside\\secret.txt",
           "/%5c..%5coutside%5csecret.txt",
           "/sub\\page.txt",
           "/link_out",
           "/link_out.txt",
           "/link_dir/secret.txt",
           "/link_dir/",
           "/link_dir",
           "/link_prefix.txt",
           "/dangling",
           "/nodir/",
           "/nodir",
       }) {
    expect_refused(files, path, 404);
  }
  // The absolute path of the secret, glued on in every way, is never served.
  std::string abs = (base_ / "outside" / "secret.txt").string();
  expect_refused(files, "/" + abs, 404);
  expect_refused(files, "/%2f" + abs.substr(1), 404);
}

TEST_F(StaticFilesTest, MalformedInputIsBadRequest) {
  StaticFiles files(root_);
  for (std::string_view path : {"/%", "/%4", "/%zz", "/index.html%", "/a%g0.js", "/index.html%00",
                                "/index.html%00.png", "/%00"}) {
    expect_refused(files, path, 400);
  }
}

TEST_F(StaticFilesTest, ContentTypes) {
  StaticFiles files(root_);
  struct Case {
    std::string_view path;
    std::string_view type;
  };
  for (const Case& c : {
           Case{"/assets/index-abc12345.js", "text/javascript; charset=utf-8"},
           Case{"/assets/index-abc12345.css", "text/css; charset=utf-8"},
           Case{"/assets/logo.png", "image/png"},
           Case{"/robots.txt", "text/plain; charset=utf-8"},
           Case{"/data.json", "application/json; charset=utf-8"},
           Case{"/site.webmanifest", "application/manifest+json; charset=utf-8"},
           Case{"/blob.xyz", "application/octet-stream"},
           Case{"/sub/page.txt", "text/plain; charset=utf-8"},
       }) {
    SCOPED_TRACE(std::string(c.path));
    Response r = files.serve(make_request(c.path));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(header(r, "Content-Type"), c.type);
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  }
}

TEST(ContentTypeFor, KnownExtensions) {
  EXPECT_EQ(content_type_for("a.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("a.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("a.json"), "application/json; charset=utf-8");
  EXPECT_EQ(content_type_for("a.js.map"), "application/json; charset=utf-8");
  EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml; charset=utf-8");
  EXPECT_EQ(content_type_for("a.png"), "image/png");
  EXPECT_EQ(content_type_for("a.jpg"), "image/jpeg");
  EXPECT_EQ(content_type_for("a.jpeg"), "image/jpeg");
  EXPECT_EQ(content_type_for("a.webp"), "image/webp");
  EXPECT_EQ(content_type_for("a.gif"), "image/gif");
  EXPECT_EQ(content_type_for("favicon.ico"), "image/x-icon");
  EXPECT_EQ(content_type_for("a.woff"), "font/woff");
  EXPECT_EQ(content_type_for("a.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("a.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("a.wasm"), "application/wasm");
  EXPECT_EQ(content_type_for("a.webmanifest"), "application/manifest+json; charset=utf-8");
  EXPECT_EQ(content_type_for("a.bin"), "application/octet-stream");
  EXPECT_EQ(content_type_for("noext"), "application/octet-stream");
}

TEST(HasContentHash, VitePatterns) {
  EXPECT_TRUE(has_content_hash("index-3f9a1c2b.js"));
  EXPECT_TRUE(has_content_hash("index-abc12345.css"));
  EXPECT_TRUE(has_content_hash("index-3f9a1c2b.js.map"));
  EXPECT_TRUE(has_content_hash("chunk.Ab_-9zYx.js"));
  EXPECT_TRUE(has_content_hash("vendor-DdKx_Pwq3.mjs"));
  EXPECT_FALSE(has_content_hash("index-abc1234.js"));  // 7 characters
  EXPECT_FALSE(has_content_hash("logo.png"));
  EXPECT_FALSE(has_content_hash("index.html"));
  EXPECT_FALSE(has_content_hash("index-3f9a1c2b"));  // no extension after it
  EXPECT_FALSE(has_content_hash("favicon.ico"));
}

TEST_F(StaticFilesTest, CacheHeaders) {
  StaticFiles files(root_);
  EXPECT_EQ(header(files.serve(make_request("/assets/index-abc12345.js")), "Cache-Control"),
            "public, max-age=31536000, immutable");
  EXPECT_EQ(header(files.serve(make_request("/assets/index-abc12345.css")), "Cache-Control"),
            "public, max-age=31536000, immutable");
  // Not hashed, or hashed but not under assets/: revalidate.
  EXPECT_EQ(header(files.serve(make_request("/assets/logo.png")), "Cache-Control"), "no-cache");
  EXPECT_EQ(header(files.serve(make_request("/vendor-abc12345.js")), "Cache-Control"), "no-cache");
  EXPECT_EQ(header(files.serve(make_request("/robots.txt")), "Cache-Control"), "no-cache");
  EXPECT_EQ(header(files.serve(make_request("/sub/")), "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, EtagAndLastModified) {
  // 2021-01-02 03:04:05 UTC, a Saturday.
  auto when = std::chrono::sys_seconds(std::chrono::seconds(1609556645));
  fs::last_write_time(root_ / "robots.txt", fs::file_time_type::clock::from_sys(when));
  StaticFiles files(root_);
  Response r = files.serve(make_request("/robots.txt"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Last-Modified"), "Sat, 02 Jan 2021 03:04:05 GMT");
  std::string etag = header(r, "ETag");
  EXPECT_EQ(etag.rfind("W/\"", 0), 0u) << etag;
  EXPECT_EQ(etag.back(), '"');

  // The tag follows size and mtime.
  write_file(root_ / "robots.txt", "User-agent: * and more");
  EXPECT_NE(header(files.serve(make_request("/robots.txt")), "ETag"), etag);
}

TEST_F(StaticFilesTest, IfNoneMatchGives304) {
  StaticFiles files(root_);
  Response first = files.serve(make_request("/assets/index-abc12345.js"));
  std::string etag = header(first, "ETag");
  ASSERT_FALSE(etag.empty());

  std::string strong = etag.substr(2);  // weak comparison ignores W/
  for (const std::string& inm : {etag, "\"nope\", " + etag, strong, std::string("*")}) {
    SCOPED_TRACE(inm);
    Request req = make_request("/assets/index-abc12345.js");
    req.headers.set("If-None-Match", inm);
    Response r = files.serve(req);
    EXPECT_EQ(r.status, 304);
    EXPECT_FALSE(r.file.has_value());
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(header(r, "ETag"), etag);
    EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  }

  Request stale = make_request("/assets/index-abc12345.js");
  stale.headers.set("If-None-Match", "W/\"0-0\"");
  EXPECT_EQ(files.serve(stale).status, 200);

  // Revalidating index.html through the SPA fallback works the same way.
  std::string index_etag = header(files.serve(make_request("/")), "ETag");
  Request spa = make_request("/p/42");
  spa.headers.set("If-None-Match", index_etag);
  EXPECT_EQ(files.serve(spa).status, 304);
}

TEST_F(StaticFilesTest, DirectoriesServeTheirIndex) {
  StaticFiles files(root_);
  for (std::string_view path : {"/sub", "/sub/", "/sub/index.html"}) {
    SCOPED_TRACE(std::string(path));
    Response r = files.serve(make_request(path));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(body_of(r), "<html>SUB</html>");
  }
  expect_refused(files, "/assets/", 404);  // no index.html, and never a listing
}

TEST_F(StaticFilesTest, SymlinkInsideRootIsServed) {
  StaticFiles files(root_);
  Response r = files.serve(make_request("/robots-link.txt"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r), "User-agent: *");
}

TEST_F(StaticFilesTest, SpaFallbackServesIndex) {
  StaticFiles files(root_);
  for (std::string_view path :
       {"/p/42", "/p/42/", "/gallery", "/settings/profile", "/apis", "/%70/42", "/etc/passwd"}) {
    SCOPED_TRACE(std::string(path));
    Response r = files.serve(make_request(path));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(body_of(r), "<html>INDEX</html>");
    EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
  }
  Response head = files.serve(make_request("/p/42", Method::kHead));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(header(head, "Content-Type"), "text/html; charset=utf-8");
}

// Every HTML page: a CSP that allows no inline or evaluated script and no framing, plus the
// older anti-framing header and a same-origin referrer policy. Other files do not need them.
void expect_page_headers(const Response& r) {
  std::string csp = header(r, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("object-src 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(r, "Referrer-Policy"), "same-origin");
}

TEST_F(StaticFilesTest, HtmlPagesCarrySecurityHeaders) {
  StaticFiles files(root_);
  for (std::string_view path : {"/", "/index.html", "/p/42", "/sub/", "/sub/index.html"}) {
    SCOPED_TRACE(std::string(path));
    Response r = files.serve(make_request(path));
    EXPECT_EQ(r.status, 200);
    expect_page_headers(r);
    expect_page_headers(files.serve(make_request(path, Method::kHead)));
  }
  Response js = files.serve(make_request("/assets/index-abc12345.js"));
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(header(js, "X-Content-Type-Options"), "nosniff");
  EXPECT_FALSE(js.headers.has("Content-Security-Policy"));

  // The built-in no-build page has no script at all; its one inline <style> is all it allows.
  fs::create_directories(base_ / "empty");
  Response page = StaticFiles(base_ / "empty").serve(make_request("/"));
  std::string csp = header(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("script-src"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(header(page, "X-Frame-Options"), "DENY");
  EXPECT_EQ(header(page, "Referrer-Policy"), "same-origin");
  EXPECT_EQ(page.body.find("<script"), std::string::npos);
}

TEST_F(StaticFilesTest, MissingFilesWithExtensionAre404) {
  StaticFiles files(root_);
  for (std::string_view path :
       {"/assets/missing.js", "/missing.txt", "/favicon.ico", "/sub/missing.css", "/p/v1.2"}) {
    expect_refused(files, path, 404);
  }
}

TEST_F(StaticFilesTest, ApiPathsAreNeverServed) {
  // Even a real file under api/ in the root is not served.
  write_file(root_ / "api" / "v1" / "info", "FROM-DISK");
  write_file(root_ / "api" / "index.html", "FROM-DISK");
  StaticFiles files(root_);
  for (std::string_view path :
       {"/api", "/api/", "/api/v1/info", "/api/v1/nope", "/api/v1/p/42", "/%61pi/v1/info"}) {
    expect_refused(files, path, 404);
    Response r = files.serve(make_request(path));
    EXPECT_EQ(r.body.find("FROM-DISK"), std::string::npos);
  }
  Request post = make_request("/api/v1/nope", Method::kPost);
  EXPECT_EQ(files.serve(post).status, 404);
}

TEST_F(StaticFilesTest, HeadServesHeaders) {
  StaticFiles files(root_);
  Response r = files.serve(make_request("/assets/index-abc12345.js", Method::kHead));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_FALSE(header(r, "ETag").empty());
  EXPECT_TRUE(r.body.empty());
}

TEST_F(StaticFilesTest, OtherMethodsAre405) {
  StaticFiles files(root_);
  for (Method m : {Method::kPost, Method::kPut, Method::kPatch, Method::kDelete, Method::kOptions,
                   Method::kOther}) {
    SCOPED_TRACE(std::string(method_name(m)));
    Response r = files.serve(make_request("/index.html", m));
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(header(r, "Allow"), "GET, HEAD");
    EXPECT_FALSE(r.file.has_value());
    EXPECT_NE(r.body.find("\"error\""), std::string::npos);
  }
}

TEST_F(StaticFilesTest, NoBuildAnswersWithHelpPage) {
  fs::path empty = base_ / "empty";
  fs::create_directories(empty);
  for (const fs::path& root : {empty, base_ / "missing-root"}) {
    SCOPED_TRACE(root.string());
    StaticFiles files(root);
    EXPECT_FALSE(files.has_build());
    for (std::string_view path : {"/", "/p/42", "/gallery"}) {
      SCOPED_TRACE(std::string(path));
      Response r = files.serve(make_request(path));
      EXPECT_EQ(r.status, 200);
      EXPECT_FALSE(r.file.has_value());
      EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
      EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
      EXPECT_NE(r.body.find("Atelier server"), std::string::npos);
      EXPECT_NE(r.body.find("not been built"), std::string::npos);
      EXPECT_NE(r.body.find("make run"), std::string::npos);
      EXPECT_NE(r.body.find("npm --prefix web-client ci"), std::string::npos);
      EXPECT_NE(r.body.find("npm --prefix web-client run build"), std::string::npos);
      EXPECT_NE(r.body.find("/api/v1"), std::string::npos);
      EXPECT_NE(r.body.find("/healthz"), std::string::npos);
      EXPECT_NE(r.body.find("/readyz"), std::string::npos);
    }
    expect_refused(files, "/assets/index-abc12345.js", 404);
    expect_refused(files, "/api/v1/info", 404);
    expect_refused(files, "/../www/index.html", 404);
  }
}

TEST_F(StaticFilesTest, BuildAppearingLaterIsPickedUp) {
  fs::path later = base_ / "later";
  StaticFiles files(later);
  EXPECT_FALSE(files.has_build());
  write_file(later / "index.html", "<html>LATER</html>");
  EXPECT_TRUE(files.has_build());
  EXPECT_EQ(body_of(files.serve(make_request("/"))), "<html>LATER</html>");
}

}  // namespace
}  // namespace atelier::http
