// The upload route's request: raw bodies and multipart forms read into an UploadRequest (the
// declared or sniffed format, the file's bytes, the alpha mode, the sanitised file name), and
// every refusal naming its field (Content-Type 415, file, alpha, body).
#include "server/api/upload_request.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "server/api/errors.h"
#include "tests/support/multipart_form.h"

namespace atelier::api {
namespace {

using image::AlphaMode;
using image::ImageFormat;

// Enough of each format's magic for sniffing (the parser never decodes).
const std::string kPngMagic("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
const std::string kJpegMagic("\xff\xd8\xff\xe0\0\x10JFIF\0", 11);
const std::string kGifMagic("GIF89a\x01\0\x01\0", 10);

http::Request make(std::string content_type, std::string body, std::string query = {}) {
  http::Request r;
  r.method = http::Method::kPost;
  r.path = "/api/v1/projects/1/uploads";
  r.query = std::move(query);
  r.target = r.path + (r.query.empty() ? "" : "?" + r.query);
  if (!content_type.empty()) r.headers.set("Content-Type", content_type);
  r.body = std::move(body);
  return r;
}

std::string view_text(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

using Form = testing::MultipartForm;

http::Request request_of(const Form& form, const std::string& query = {}) {
  return make(form.content_type(), form.finished(), query);
}

void expect_refused(const Result<UploadRequest>& r, std::string_view field) {
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(r.status().field(), field) << r.status().to_string();
}

TEST(UploadRequestTest, RawBodiesDeclareTheirFormatAndViewTheBody) {
  struct Case {
    std::string type;
    ImageFormat format;
  } cases[] = {{"image/png", ImageFormat::kPng},
               {"image/jpeg", ImageFormat::kJpeg},
               {"image/webp", ImageFormat::kWebp},
               {"IMAGE/PNG; charset=binary", ImageFormat::kPng},
               {" image/jpeg ;q=1", ImageFormat::kJpeg}};
  for (const Case& c : cases) {
    http::Request req = make(c.type, kPngMagic);
    auto r = parse_upload_request(req);
    ASSERT_TRUE(r.is_ok()) << c.type << ": " << r.status().to_string();
    EXPECT_EQ(r->format, c.format) << c.type;
    // A view, not a copy: the decoder reads the request's own bytes.
    EXPECT_EQ(static_cast<const void*>(r->file.data()), static_cast<const void*>(req.body.data()));
    EXPECT_EQ(r->file.size(), req.body.size());
    EXPECT_EQ(r->alpha, AlphaMode::kFlatten) << "flatten is the default";
    EXPECT_EQ(r->original_name, "");
  }
}

TEST(UploadRequestTest, RawBodiesTakeFilenameAndAlphaFromTheQuery) {
  http::Request req = make("image/png", kPngMagic, "filename=..%2Fholiday%20photo.png&alpha=keep");
  auto r = parse_upload_request(req);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->original_name, "holiday photo.png");
  EXPECT_EQ(r->alpha, AlphaMode::kKeep);
  auto flatten = parse_upload_request(make("image/png", kPngMagic, "alpha=flatten"));
  ASSERT_TRUE(flatten.is_ok());
  EXPECT_EQ(flatten->alpha, AlphaMode::kFlatten);
  expect_refused(parse_upload_request(make("image/png", kPngMagic, "alpha=yes")), "alpha");
}

TEST(UploadRequestTest, OtherOrMissingContentTypesAre415WithTheAcceptedList) {
  for (const std::string type :
       {"", "image/gif", "image/svg+xml", "text/plain", "application/json",
        "application/octet-stream", "image/png-ish", "multipart/mixed; boundary=x", ";"}) {
    auto r = parse_upload_request(make(type, kPngMagic));
    expect_refused(r, kContentTypeField);
    EXPECT_EQ(http_error_for(r.status()).http_status, 415) << type;
    EXPECT_NE(r.status().message().find("image/png, image/jpeg, image/webp"), std::string::npos)
        << r.status().message();
  }
}

TEST(UploadRequestTest, AnEmptyFileIsRefusedNamingFile) {
  expect_refused(parse_upload_request(make("image/png", "")), "file");
  expect_refused(parse_upload_request(request_of(Form().file("f", "a.png", "image/png", ""))),
                 "file");
}

TEST(UploadRequestTest, MultipartLikeCurlDashF) {
  const std::string bytes = kJpegMagic + std::string("\r\n--not-the-boundary\r\n\0tail", 27);
  Form form;
  form.file("file", "cat.jpg", "image/jpeg", bytes);
  http::Request req = request_of(form);
  auto r = parse_upload_request(req);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->format, ImageFormat::kJpeg);
  EXPECT_EQ(view_text(r->file), bytes) << "the part's body, byte for byte";
  EXPECT_EQ(r->original_name, "cat.jpg");
  EXPECT_EQ(r->alpha, AlphaMode::kFlatten);
}

TEST(UploadRequestTest, MultipartLikeABrowserFormDataWithAnAlphaPart) {
  Form form;
  form.boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
  // Old browsers sent the whole path; quoted-pairs keep its backslashes.
  form.text("alpha", "keep")
      .file("image", "C:\\\\Users\\\\ada\\\\mask.png", "image/png", kPngMagic);
  auto r = parse_upload_request(request_of(form));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->format, ImageFormat::kPng);
  EXPECT_EQ(r->alpha, AlphaMode::kKeep);
  EXPECT_EQ(r->original_name, "mask.png") << "only the base name of a Windows path";

  Form bad;
  bad.file("image", "a.png", "image/png", kPngMagic).text("alpha", "sometimes");
  expect_refused(parse_upload_request(request_of(bad)), "alpha");
}

TEST(UploadRequestTest, AnUntypedPartIsSniffedAndOnlyImagesPass) {
  Form octet;
  octet.file("file", "photo", "application/octet-stream", kJpegMagic);
  auto r = parse_upload_request(request_of(octet));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->format, ImageFormat::kJpeg);

  Form untyped;
  untyped.file("file", "photo", "", kPngMagic);
  auto u = parse_upload_request(request_of(untyped));
  ASSERT_TRUE(u.is_ok()) << u.status().to_string();
  EXPECT_EQ(u->format, ImageFormat::kPng);

  Form gif_bytes;
  gif_bytes.file("file", "anim.gif", "application/octet-stream", kGifMagic);
  expect_refused(parse_upload_request(request_of(gif_bytes)), kContentTypeField);
  for (const std::string type : {"image/gif", "image/svg+xml", "text/plain"}) {
    Form typed;
    typed.file("file", "x", type, kPngMagic);
    expect_refused(parse_upload_request(request_of(typed)), kContentTypeField);
  }
}

TEST(UploadRequestTest, MultipartNeedsExactlyOneFilePartAndAWellFormedBody) {
  Form none;
  none.text("alpha", "keep");
  expect_refused(parse_upload_request(request_of(none)), "file");
  Form two;
  two.file("a", "a.png", "image/png", kPngMagic).file("b", "b.png", "image/png", kPngMagic);
  expect_refused(parse_upload_request(request_of(two)), "file");
  // A text part with another name counts as a file part (curl -F 'file=<x.png' has no filename).
  Form text_file;
  text_file.text("file", kPngMagic);
  auto r = parse_upload_request(request_of(text_file));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->format, ImageFormat::kPng);

  Form truncated;
  truncated.file("file", "a.png", "image/png", kPngMagic);
  expect_refused(parse_upload_request(make(truncated.content_type(), truncated.body)), "body");
  expect_refused(parse_upload_request(make("multipart/form-data", truncated.body)), "body");
}

TEST(UploadRequestTest, FileNamesAreSanitised) {
  EXPECT_EQ(sanitize_file_name("photo.jpg"), "photo.jpg");
  EXPECT_EQ(sanitize_file_name("/home/ada/photo.jpg"), "photo.jpg");
  EXPECT_EQ(sanitize_file_name("C:\\fakepath\\photo.jpg"), "photo.jpg");
  EXPECT_EQ(sanitize_file_name("dir/"), "");
  EXPECT_EQ(sanitize_file_name(""), "");
  // Control characters go; whitespace runs (tabs, newlines, no-break spaces) become one space.
  EXPECT_EQ(sanitize_file_name(std::string("a\0b\x07"
                                           "c\x7f.png",
                                           10)),
            "abc.png");
  EXPECT_EQ(sanitize_file_name("  my \t\r\n holiday\xc2\xa0\xc2\xa0photo .png  "),
            "my holiday photo .png");
  // Bidirectional overrides would show "\u202Egpj.exe" as "exe.jpg".
  EXPECT_EQ(sanitize_file_name("invoice\xe2\x80\xaegpj.exe"), "invoicegpj.exe");
  EXPECT_EQ(sanitize_file_name("a\xe2\x81\xa6"
                               "b\xe2\x81\xa9"
                               "c\xe2\x80\x8f.png"),
            "abc.png");
  // C1 controls (U+0085 is whitespace, U+009B a control).
  EXPECT_EQ(sanitize_file_name("a\xc2\x85"
                               "b\xc2\x9b"
                               "c"),
            "a bc");
  // Invalid UTF-8 (a stray byte, an overlong '/', a surrogate, a truncated sequence).
  EXPECT_EQ(sanitize_file_name("a\xff"
                               "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(sanitize_file_name("a\xc0\xaf"
                               "b"),
            "a\xef\xbf\xbd\xef\xbf\xbd"
            "b");
  EXPECT_EQ(sanitize_file_name("a\xed\xa0\x80"), "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(sanitize_file_name("a\xe2\x82"), "a\xef\xbf\xbd\xef\xbf\xbd");
  // Valid non-ASCII stays.
  EXPECT_EQ(sanitize_file_name("café 🎨 東京.webp"), "café 🎨 東京.webp");
  // Leading dots (hidden files, "..") go, with the spaces between them.
  EXPECT_EQ(sanitize_file_name(".bashrc"), "bashrc");
  EXPECT_EQ(sanitize_file_name(". . ..secret.png"), "secret.png");
  EXPECT_EQ(sanitize_file_name(".."), "");
  EXPECT_EQ(sanitize_file_name(" \t\xe2\x80\xae "), "");
  EXPECT_EQ(sanitize_file_name("a..b."), "a..b.");
}

TEST(UploadRequestTest, LongFileNamesAreCutAtACharacterKeepingTheExtension) {
  const std::string long_stem(300, 'x');
  std::string cut = sanitize_file_name(long_stem + ".png");
  EXPECT_EQ(cut.size(), kMaxUploadNameBytes);
  EXPECT_EQ(cut, std::string(kMaxUploadNameBytes - 4, 'x') + ".png");
  // No extension: just cut.
  EXPECT_EQ(sanitize_file_name(long_stem), std::string(kMaxUploadNameBytes, 'x'));
  // A multi-byte character across the limit is dropped whole, never split.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";  // é, 2 bytes
  std::string a = sanitize_file_name("x" + accents);
  EXPECT_EQ(a.size(), kMaxUploadNameBytes - 1);
  EXPECT_EQ(a, "x" + accents.substr(0, kMaxUploadNameBytes - 2));
  std::string b = sanitize_file_name("x" + accents + ".jpeg");
  EXPECT_EQ(b, "x" + accents.substr(0, kMaxUploadNameBytes - 6) + ".jpeg");
  // An "extension" too long to be one is cut like the rest.
  std::string odd = sanitize_file_name("a." + std::string(200, 'y'));
  EXPECT_EQ(odd, "a." + std::string(kMaxUploadNameBytes - 2, 'y'));
  // Spaces left at the cut go.
  std::string spaced = sanitize_file_name(std::string(kMaxUploadNameBytes - 5, 'z') + " word.png");
  EXPECT_EQ(spaced, std::string(kMaxUploadNameBytes - 5, 'z') + ".png");
  // Exactly the limit is kept as it is.
  const std::string exact = std::string(kMaxUploadNameBytes - 4, 'q') + ".png";
  EXPECT_EQ(sanitize_file_name(exact), exact);
}

}  // namespace
}  // namespace atelier::api
