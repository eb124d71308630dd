#include "server/http/multipart.h"

#include <gtest/gtest.h>

#include <string>

namespace atelier::http {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Expects a refusal naming "body" whose message holds `words`.
void expect_refused(const std::string& content_type, const std::string& body,
                    const std::string& words, size_t max_parts = 8) {
  auto parts = parse_multipart(content_type, bytes(body), max_parts);
  ASSERT_FALSE(parts.is_ok()) << "accepted: " << body;
  EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parts.status().field(), "body");
  EXPECT_NE(parts.status().message().find(words), std::string::npos) << parts.status().message();
}

// Binary content with NULs, CRLFs and dashes, ending in CRLF '-' (just short of a delimiter).
constexpr char kPngBytes[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR--binary\r\n-";
const std::string kPng(kPngBytes, sizeof(kPngBytes) - 1);

// What `curl -F file=@cat.png -F alpha=keep` sends.
TEST(MultipartTest, CurlStyleFileAndTextParts) {
  const std::string b = "------------------------d74496d66958873e";
  const std::string body = "--" + b +
                           "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cat.png\""
                           "\r\nContent-Type: image/png\r\n\r\n" +
                           kPng + "\r\n--" + b +
                           "\r\nContent-Disposition: form-data; name=\"alpha\"\r\n\r\nkeep\r\n--" +
                           b + "--\r\n";
  auto parts = parse_multipart("multipart/form-data; boundary=" + b, bytes(body));
  ASSERT_TRUE(parts.is_ok()) << parts.status().to_string();
  ASSERT_EQ(parts->size(), 2u);
  const MultipartPart& file = (*parts)[0];
  EXPECT_EQ(file.name, "file");
  EXPECT_EQ(file.filename, "cat.png");
  EXPECT_EQ(file.content_type, "image/png");
  EXPECT_EQ(text(file.body), kPng);
  // A span into the input, not a copy.
  EXPECT_GE(file.body.data(), bytes(body).data());
  EXPECT_LE(file.body.data() + file.body.size(), bytes(body).data() + body.size());
  const MultipartPart& alpha = (*parts)[1];
  EXPECT_EQ(alpha.name, "alpha");
  EXPECT_FALSE(alpha.filename.has_value());
  EXPECT_EQ(alpha.content_type, "");
  EXPECT_EQ(text(alpha.body), "keep");
}

// What a browser's FormData sends: a quoted boundary in the header, a quoted file name with
// spaces, UTF-8 and the HTML standard's %22 escape, application/octet-stream.
TEST(MultipartTest, BrowserStyleQuotedUnicodeFilename) {
  const std::string b = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
  const std::string body = "--" + b +
                           "\r\nContent-Disposition: form-data; name=\"upload\"; "
                           "filename=\"my %22photo%22 \xc3\xa9t\xc3\xa9; 1.png\"\r\n"
                           "Content-Type: application/octet-stream\r\n\r\n" +
                           kPng + "\r\n--" + b + "--";
  auto parts = parse_multipart("multipart/form-data; boundary=\"" + b + "\"", bytes(body));
  ASSERT_TRUE(parts.is_ok()) << parts.status().to_string();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].name, "upload");
  EXPECT_EQ((*parts)[0].filename, "my \"photo\" \xc3\xa9t\xc3\xa9; 1.png");
  EXPECT_EQ((*parts)[0].content_type, "application/octet-stream");
  EXPECT_EQ(text((*parts)[0].body), kPng);
}

// filename* (RFC 8187) wins over filename; header names and media types in any case; a
// preamble, transport padding and an epilogue are allowed.
TEST(MultipartTest, FilenameStarPaddingPreambleEpilogue) {
  const std::string body =
      "this is a preamble\r\n--abc \t\r\n"
      "content-disposition: Form-Data; Name=f; filename=\"fallback.png\"; "
      "filename*=UTF-8''%E2%9C%93%20ok.png\r\n"
      "CONTENT-TYPE: Image/PNG; charset=binary\r\n\r\n"
      "data\r\n--abc--  \r\nepilogue --abc\r\n";
  auto parts = parse_multipart("Multipart/Form-Data;boundary=abc", bytes(body));
  ASSERT_TRUE(parts.is_ok()) << parts.status().to_string();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].name, "f");
  EXPECT_EQ((*parts)[0].filename, "\xe2\x9c\x93 ok.png");
  EXPECT_EQ((*parts)[0].content_type, "image/png");
  EXPECT_EQ(text((*parts)[0].body), "data");

  // ISO-8859-1 is converted to UTF-8.
  const std::string latin1 =
      "--x\r\nContent-Disposition: form-data; name=f; filename*=iso-8859-1'fr'caf%E9.webp"
      "\r\n\r\nw\r\n--x--";
  auto l = parse_multipart("multipart/form-data; boundary=x", bytes(latin1));
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  EXPECT_EQ((*l)[0].filename, "caf\xc3\xa9.webp");
}

// Empty bodies, in both spellings (with and without the optional CRLF after the headers), an
// empty file name (a browser's file input with nothing chosen), and a form of no parts.
TEST(MultipartTest, EmptyPartsAndEmptyForm) {
  const std::string body =
      "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n"
      "--x\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n"
      "--x\r\nContent-Disposition: form-data; name=\"c\"; filename=\"\"\r\n\r\n\r\n--x--";
  auto parts = parse_multipart("multipart/form-data; boundary=x", bytes(body));
  ASSERT_TRUE(parts.is_ok()) << parts.status().to_string();
  ASSERT_EQ(parts->size(), 3u);
  for (const auto& p : *parts) EXPECT_TRUE(p.body.empty()) << p.name;
  EXPECT_EQ((*parts)[2].filename, "");

  auto none = parse_multipart("multipart/form-data; boundary=x", bytes("--x--\r\n"));
  ASSERT_TRUE(none.is_ok()) << none.status().to_string();
  EXPECT_TRUE(none->empty());
}

// A body holding "--boundary" that is not after CRLF, and CRLFs, stays content.
TEST(MultipartTest, BoundaryTextInsideContentIsContent) {
  const std::string content = "a--x b\r\n-x\r\n\r\n--y";
  const std::string body =
      "--x\r\nContent-Disposition: form-data; name=f\r\n\r\n" + content + "\r\n--x--";
  auto parts = parse_multipart("multipart/form-data; boundary=x", bytes(body));
  ASSERT_TRUE(parts.is_ok()) << parts.status().to_string();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ(text((*parts)[0].body), content);
}

TEST(MultipartTest, UpToMaxPartsAreAccepted) {
  std::string body;
  for (int i = 0; i < 3; ++i) {
    body += "--x\r\nContent-Disposition: form-data; name=p" + std::to_string(i) + "\r\n\r\nv\r\n";
  }
  body += "--x--";
  EXPECT_TRUE(parse_multipart("multipart/form-data; boundary=x", bytes(body), 3).is_ok());
  expect_refused("multipart/form-data; boundary=x", body, "more than 2 parts", 2);
}

TEST(MultipartTest, BadContentTypeHeaders) {
  const std::string body = "--x\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--x--";
  expect_refused("multipart/form-data", body, "no multipart boundary");
  expect_refused("multipart/form-data; charset=utf-8", body, "no multipart boundary");
  expect_refused("multipart/form-data; boundary=", body, "malformed");
  expect_refused("multipart/form-data; boundary=\"\"", body, "1 to 70");
  expect_refused("multipart/form-data; boundary=" + std::string(71, 'b'), body, "1 to 70");
  expect_refused("multipart/form-data; boundary=\"a\x01\"", body, "1 to 70");
  expect_refused("multipart/form-data; boundary=\"ends \"", body, "1 to 70");
  expect_refused("multipart/form-data; boundary=x; boundary=y", body, "twice");
  expect_refused("multipart/form-data; boundary=\"x", body, "malformed");
  expect_refused("multipart/mixed; boundary=x", body, "not multipart/form-data");
  expect_refused("image/png", body, "not multipart/form-data");
  // 70 characters is the most RFC 2046 allows.
  const std::string b70(70, 'b');
  const std::string ok =
      "--" + b70 + "\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--" + b70 + "--";
  EXPECT_TRUE(parse_multipart("multipart/form-data; boundary=" + b70, bytes(ok)).is_ok());
}

TEST(MultipartTest, FramingErrors) {
  const std::string ct = "multipart/form-data; boundary=x";
  const std::string part = "Content-Disposition: form-data; name=a\r\n\r\nv";
  // No close delimiter, or cut anywhere near the end.
  expect_refused(ct, "--x\r\n" + part + "\r\n--x", "truncated");
  expect_refused(ct, "--x\r\n" + part + "\r\n--x\r", "truncated");
  expect_refused(ct, "--x\r\n" + part + "\r\n--x-", "truncated");
  expect_refused(ct, "--x\r\n" + part, "truncated");
  expect_refused(ct, "--x\r\nContent-Disposition: form-data; name=a\r\n", "truncated");
  expect_refused(ct, "--x", "truncated");
  // No boundary at all, or one the body never uses.
  expect_refused(ct, "", "does not hold");
  expect_refused(ct, "just text", "does not hold");
  expect_refused(ct, "--y\r\n" + part + "\r\n--y--", "does not hold");
  // LF-only framing (some hand-written clients).
  expect_refused(ct, "--x\nContent-Disposition: form-data; name=a\n\nv\n--x--\n", "CRLF");
  // A boundary line followed by something else than padding and CRLF.
  expect_refused(ct, "--x\r\n" + part + "\r\n--xy\r\n" + part + "\r\n--x--", "CRLF");
}

TEST(MultipartTest, PartHeaderErrors) {
  const std::string ct = "multipart/form-data; boundary=x";
  auto with_headers = [](const std::string& headers) {
    return "--x\r\n" + headers + "\r\nv\r\n--x--";
  };
  expect_refused(ct, with_headers("Content-Type: image/png\r\n"), "no Content-Disposition");
  expect_refused(ct, with_headers(""), "no Content-Disposition");
  expect_refused(ct, with_headers("Content-Disposition: attachment; name=a\r\n"), "not form-data");
  expect_refused(ct, with_headers("Content-Disposition: form-data; filename=a.png\r\n"), "no name");
  expect_refused(ct, with_headers("Content-Disposition: form-data; name=a; name=b\r\n"), "twice");
  expect_refused(ct,
                 with_headers("Content-Disposition: form-data; name=a\r\n"
                              "Content-Disposition: form-data; name=b\r\n"),
                 "two Content-Disposition");
  expect_refused(ct, with_headers("Content-Disposition: form-data; name=\"a\r\n"), "malformed");
  expect_refused(ct, with_headers("Content-Disposition: form-data; name=a\r\n no colon\r\n"),
                 "folded");
  expect_refused(ct, with_headers("Content-Disposition: form-data; name=a\r\nno colon\r\n"),
                 "malformed");
  expect_refused(ct, with_headers("Content-Disposition: form-data; name=a\nX: y\r\n"),
                 "control character");
  expect_refused(ct, with_headers("Content-Disposition: form-data; name=\"\xff\"\r\n"), "UTF-8");
  expect_refused(ct,
                 with_headers("Content-Disposition: form-data; name=a; filename*=UTF-8''%E2\r\n"),
                 "UTF-8");
  expect_refused(ct,
                 with_headers("Content-Disposition: form-data; name=a; filename*=UTF-8''%zz\r\n"),
                 "percent");
  expect_refused(ct,
                 with_headers("Content-Disposition: form-data; name=a; filename*=koi8-r''a\r\n"),
                 "charset");
  expect_refused(ct,
                 with_headers("Content-Disposition: form-data; name=a\r\n"
                              "Content-Transfer-Encoding: base64\r\n"),
                 "Content-Transfer-Encoding");
  expect_refused(ct,
                 with_headers("Content-Disposition: form-data; name=a\r\n"
                              "Content-Type: image/png\"evil\r\n"),
                 "Content-Type");
}

TEST(MultipartTest, HeaderBlockOver8KiBIsRefused) {
  const std::string ct = "multipart/form-data; boundary=x";
  const std::string disposition = "Content-Disposition: form-data; name=a\r\n";
  // A block of exactly 8 KiB (its lines with their CRLFs) is accepted; one byte more is not.
  auto block_of = [&](size_t total) {
    const size_t filler = total - disposition.size() - std::string("X-Pad: \r\n").size();
    return disposition + "X-Pad: " + std::string(filler, 'p') + "\r\n";
  };
  const std::string tail = "\r\nv\r\n--x--";
  ASSERT_EQ(block_of(kMaxPartHeaderBytes).size(), kMaxPartHeaderBytes);
  auto at_limit = parse_multipart(ct, bytes("--x\r\n" + block_of(kMaxPartHeaderBytes) + tail));
  EXPECT_TRUE(at_limit.is_ok()) << at_limit.status().to_string();
  expect_refused(ct, "--x\r\n" + block_of(kMaxPartHeaderBytes + 1) + tail, "larger than 8 KiB");
  // Many header lines in one block count together.
  std::string many = disposition;
  while (many.size() <= kMaxPartHeaderBytes) many += "X-A: b\r\n";
  expect_refused(ct, "--x\r\n" + many + tail, "larger than 8 KiB");
}

}  // namespace
}  // namespace atelier::http
