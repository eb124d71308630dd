// Uploads over REST against an in-process server (POST /api/v1/projects/{id}/uploads): raw and
// multipart bodies of each format stored and served back, the live and durable image.uploaded
// event, EXIF orientation applied and every metadata chunk dropped, file names sanitised, alpha
// flattened or kept, and every refusal (415, 413, 400, 429, 403/404/401) leaving no file in the
// image store and no images row behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "tests/integration/job_test_helpers.h"
#include "tests/integration/upload_test_files.h"
#include "tests/support/multipart_form.h"
#include "tests/support/ws_client.h"

namespace atelier::apitest {
namespace {

using namespace std::chrono_literals;
using namespace uploadtest;
using nlohmann::json;
using testing::Connection;
using testing::WsClient;

constexpr int64_t kMaxBytes = 256 * 1024;
constexpr int64_t kMaxPixels = 1'000'000;
constexpr int64_t kFraming = 64 * 1024;  // the route's allowance for multipart framing

using Form = testing::MultipartForm;

class UploadsTest : public ProjectServerTest {
 protected:
  void SetUp() override { start(config()); }

  ServerConfig config() {
    ServerConfig c = test_config(dir_);
    c.max_upload_bytes = kMaxBytes;
    c.max_upload_pixels = kMaxPixels;
    return c;
  }

  Reply upload(const Account& who, const std::string& type, const std::string& body,
               const std::string& query = {}) {
    return upload_with(bearer(who.token), type, body, query);
  }
  Reply upload_with(const std::string& credential, const std::string& type, const std::string& body,
                    const std::string& query = {}) {
    return call(port_, "POST", project_path(project_, "/uploads" + query), body,
                header_lines({credential, type.empty() ? "" : "Content-Type: " + type}));
  }
  json upload_ok(const Account& who, const std::string& type, const std::string& body,
                 const std::string& query = {}) {
    Reply r = upload(who, type, body, query);
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) throw std::runtime_error("upload refused: " + r.body);
    EXPECT_EQ(r.header("location"),
              "/api/v1/images/" + std::to_string(r.json["image"]["id"].get<int64_t>()));
    return r.json["image"];
  }
  // The served file of an image, decoded.
  image::Image served(const json& image) {
    Reply r = call(port_, "GET", image["url"].get<std::string>(), "", bearer(viewer_.token));
    if (r.status != 200) throw std::runtime_error("file: " + r.body);
    EXPECT_EQ(r.header("content-type"), "image/png");
    return decode_png_text(r.body);
  }
  std::string served_bytes(const json& image) {
    return call(port_, "GET", image["url"].get<std::string>(), "", bearer(viewer_.token)).body;
  }

  // What a refusal must leave unchanged: the project's rows and the store's files.
  struct Kept {
    size_t rows = 0;
    size_t files = 0;
  };
  Kept kept() {
    Reply r =
        call(port_, "GET", project_path(project_, "/images?limit=200"), "", bearer(owner_.token));
    EXPECT_EQ(r.status, 200) << r.body;
    Kept k;
    k.rows = r.json["images"].size();
    std::error_code ec;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(dir_ / "data" / "images", ec)) {
      if (e.is_regular_file()) ++k.files;
    }
    return k;
  }
  void expect_refused(const Reply& r, int status, const std::string& field, const Kept& before,
                      const std::string& what) {
    EXPECT_EQ(r.status, status) << what << ": " << r.body;
    EXPECT_EQ(r.error_field(), field) << what << ": " << r.body;
    const Kept after = kept();
    EXPECT_EQ(after.rows, before.rows) << what << " left an images row";
    EXPECT_EQ(after.files, before.files) << what << " left a file in the image store";
  }
};

TEST_F(UploadsTest, RawPngJpegAndWebpAreStoredAndServedBack) {
  const image::Image original = gradient(96, 64);
  json png = upload_ok(editor_, "image/png", png_of(original));
  EXPECT_EQ(png["source"], "upload");
  EXPECT_EQ(png["job_id"], nullptr);
  EXPECT_EQ(png["parent_image_id"], nullptr);
  EXPECT_EQ(png["created_by"], editor_.id);
  EXPECT_EQ(png["original_name"], nullptr) << "no name was given";
  EXPECT_EQ(png["project_id"], project_);
  EXPECT_EQ(png["width"], 96);
  EXPECT_EQ(png["height"], 64);
  image::Image back = served(png);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, original.pixels) << "PNG is lossless: the same pixels come back";

  struct Lossy {
    std::string type;
    std::string bytes;
  } lossy[] = {{"image/jpeg", jpeg_of(original)},
               {"image/webp; charset=binary", webp_of(original)}};
  for (const Lossy& l : lossy) {
    json img = upload_ok(owner_, l.type, l.bytes);
    EXPECT_EQ(img["width"], 96) << l.type;
    EXPECT_EQ(img["height"], 64) << l.type;
    image::Image got = served(img);
    EXPECT_LT(mean_abs_diff(got, original), 4.0) << l.type << ": the decoded pixels, re-encoded";
    // Stored as PNG, whatever came in.
    EXPECT_EQ(served_bytes(img).substr(0, 8), kPngSignature) << l.type;
  }
  EXPECT_EQ(kept().rows, 3u);
}

TEST_F(UploadsTest, MultipartLikeCurlAndLikeABrowserFormData) {
  const image::Image original = gradient(128, 96, 3, 7);
  // curl -F "file=@photo.png"
  Form curl{"------------------------3f1c2a9b5e7d4c21", {}};
  curl.file("file", "photo.png", "image/png", png_of(original));
  Reply r = upload(editor_, curl.content_type(), curl.finished());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json["image"]["original_name"], "photo.png");
  EXPECT_EQ(served(r.json["image"]).pixels, original.pixels);

  // A browser's FormData: a canvas blob named "blob", an untyped part sniffed, an alpha part.
  Form browser{"----WebKitFormBoundaryQ7kz3HcU0mLpX2dA", {}};
  browser.text("alpha", "keep")
      .file("image", "blob", "application/octet-stream", jpeg_of(original));
  Reply b = upload(editor_, browser.content_type(), browser.finished());
  ASSERT_EQ(b.status, 201) << b.body;
  EXPECT_EQ(b.json["image"]["original_name"], "blob");
  EXPECT_LT(mean_abs_diff(served(b.json["image"]), original), 4.0);

  // A file part over max_upload_bytes (the body is within the framing allowance): 413 "file".
  const Kept before = kept();
  Form big{"xyz", {}};
  big.file("file", "big.png", "image/png", std::string(kMaxBytes + 1, 'x'));
  Reply too_big = upload(editor_, big.content_type(), big.finished());
  expect_refused(too_big, 413, "file", before, "a file part over max_upload_bytes");
  EXPECT_NE(too_big.body.find("max_upload_bytes"), std::string::npos) << too_big.body;
  // Malformed framing names the body; two files, or none, name the file.
  expect_refused(upload(editor_, big.content_type(), big.body), 400, "body", before,
                 "no close delimiter");
  Form two{"b2", {}};
  two.file("a", "a.png", "image/png", png_of(original))
      .file("b", "b.png", "image/png", png_of(original));
  expect_refused(upload(editor_, two.content_type(), two.finished()), 400, "file", before,
                 "two file parts");
}

TEST_F(UploadsTest, TheUploadIsALiveDurableEventAndAListedLineageRoot) {
  auto ws = WsClient::connect(port_, "/api/v1/ws", {{bearer(viewer_.token)}, true});
  ASSERT_NE(ws, nullptr);
  ws->send_json({{"type", "hello"}, {"proto", 1}});
  ASSERT_TRUE(ws->wait_type("welcome"));
  ws->send_json({{"type", "subscribe"}, {"project", project_}, {"after_seq", 0}});
  ASSERT_TRUE(ws->wait_type("subscribed"));

  json image = upload_ok(editor_, "image/png", png_of(gradient(32, 32)), "?filename=cat.png");
  const int64_t id = image["id"];

  // Live, to another member.
  auto live = ws->wait_json(
      [](const json& m) { return m["type"] == "event" && m["event"]["type"] == "image.uploaded"; });
  ASSERT_TRUE(live) << "the viewer never saw image.uploaded";
  EXPECT_EQ((*live)["project"], project_);
  EXPECT_EQ((*live)["event"]["data"]["image"], image);
  EXPECT_EQ((*live)["event"]["actor"], editor_.id);

  // Durable, in the project's log.
  Reply events = call(port_, "GET", project_path(project_, "/events"), "", bearer(viewer_.token));
  ASSERT_EQ(events.status, 200) << events.body;
  int found = 0;
  for (const auto& e : events.json["events"]) {
    if (e["type"] != "image.uploaded") continue;
    ++found;
    EXPECT_EQ(e["data"]["image"], image);
    EXPECT_EQ(e["seq"], (*live)["event"]["seq"]);
  }
  EXPECT_EQ(found, 1);

  // Listed with the project's images, and shown as a lineage root without a job.
  Reply list = call(port_, "GET", project_path(project_, "/images"), "", bearer(viewer_.token));
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json["images"].size(), 1u);
  EXPECT_EQ(list.json["images"][0]["id"], id);
  EXPECT_EQ(list.json["images"][0]["source"], "upload");
  EXPECT_EQ(list.json["images"][0]["original_name"], "cat.png");

  Reply detail =
      call(port_, "GET", "/api/v1/images/" + std::to_string(id), "", bearer(viewer_.token));
  ASSERT_EQ(detail.status, 200) << detail.body;
  EXPECT_EQ(detail.json["source"], "upload");
  EXPECT_EQ(detail.json["job_id"], nullptr);
  EXPECT_EQ(detail.json["parent"], nullptr);
  EXPECT_EQ(detail.json["children"], json::array());
  for (const char* job_field : {"model", "prompt", "parameters", "mode"}) {
    EXPECT_FALSE(detail.json.contains(job_field)) << job_field << " of an upload: " << detail.body;
  }

  Reply thumb = call(port_, "GET", "/api/v1/images/" + std::to_string(id) + "/thumb?size=16", "",
                     bearer(viewer_.token));
  EXPECT_EQ(thumb.status, 200) << thumb.body;
  EXPECT_EQ(thumb.header("content-type"), "image/webp");
  EXPECT_EQ(thumb.body.substr(0, 4), "RIFF");
}

TEST_F(UploadsTest, ExifOrientationIsAppliedAndNoMetadataIsKept) {
  // Stored 64 x 32, left red and right blue; orientation 6 shows it turned 90 degrees clockwise:
  // 32 x 64, red on top and blue below.
  const std::string marker = "ATELIER-GPS-MARKER-51N";
  const std::string jpeg =
      with_exif(jpeg_of(halves(64, 32, {220, 20, 20}, {20, 20, 220})), 6, marker);
  ASSERT_NE(jpeg.find(marker), std::string::npos);
  json img = upload_ok(editor_, "image/jpeg", jpeg, "?filename=IMG_0001.JPG");
  EXPECT_EQ(img["width"], 32);
  EXPECT_EQ(img["height"], 64);
  const std::string stored = served_bytes(img);
  image::Image upright = decode_png_text(stored);
  ASSERT_EQ(upright.width, 32);
  ASSERT_EQ(upright.height, 64);
  const uint8_t* top = pixel(upright, 16, 8);
  const uint8_t* bottom = pixel(upright, 16, 56);
  EXPECT_GT(top[0], 150);
  EXPECT_LT(top[2], 100);
  EXPECT_LT(bottom[0], 100);
  EXPECT_GT(bottom[2], 150);

  // Pixels only: no EXIF, text or other ancillary chunk survives; no trace of the GPS block.
  for (const PngChunk& c : png_chunks(stored)) {
    EXPECT_TRUE(c.type == "IHDR" || c.type == "IDAT" || c.type == "IEND" || c.type == "PLTE")
        << "stored PNG has a " << c.type << " chunk";
  }
  EXPECT_EQ(stored.find(marker), std::string::npos);
  EXPECT_EQ(stored.find("Exif"), std::string::npos);
  auto text = image::read_png_text(bytes_of(stored));
  ASSERT_TRUE(text.is_ok());
  EXPECT_TRUE(text->empty());
}

TEST_F(UploadsTest, FileNamesAreSanitised) {
  const std::string png = png_of(gradient(8, 8));
  struct Case {
    std::string query;
    json want;
  } cases[] = {
      {"?filename=holiday%20photo.png", "holiday photo.png"},
      {"?filename=..%2F..%2Fetc%2Fpasswd", "passwd"},
      {"?filename=C%3A%5CUsers%5Cada%5Cscan.png", "scan.png"},
      {"?filename=invoice%E2%80%AEgnp.exe", "invoicegnp.exe"},
      {"?filename=a%00b%0D%0Ac%09%09d.png", "ab c d.png"},
      {"?filename=%FF.png", "\xEF\xBF\xBD.png"},
      {"?filename=...", nullptr},
      {"?filename=" + std::string(200, 'n') + ".png", std::string(116, 'n') + ".png"},
  };
  for (const Case& c : cases) {
    Reply r = upload(editor_, "image/png", png, c.query);
    ASSERT_EQ(r.status, 201) << c.query << ": " << r.body;
    EXPECT_EQ(r.json["image"]["original_name"], c.want) << c.query;
  }
  // In a multipart part's Content-Disposition too (a full path, as old browsers send it).
  Form form{"fn", {}};
  form.file("file", "/home/ada/.hidden \xE2\x80\x8F scan.png", "image/png", png);
  Reply r = upload(editor_, form.content_type(), form.finished());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json["image"]["original_name"], "hidden scan.png");
}

TEST_F(UploadsTest, AlphaIsFlattenedOverWhiteUnlessKept) {
  image::Image rgba = gradient(16, 16, 4, 3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 8; ++x) rgba.pixels[(static_cast<size_t>(y) * 16 + x) * 4 + 3] = 0;
  }
  const std::string png = png_of(rgba);
  image::Image flat = served(upload_ok(editor_, "image/png", png));
  EXPECT_EQ(flat.channels, 3) << "flatten is the default";
  EXPECT_EQ(std::vector<uint8_t>(pixel(flat, 2, 2), pixel(flat, 2, 2) + 3),
            (std::vector<uint8_t>{255, 255, 255}))
      << "transparent pixels become white";
  EXPECT_EQ(std::vector<uint8_t>(pixel(flat, 12, 2), pixel(flat, 12, 2) + 3),
            std::vector<uint8_t>(pixel(rgba, 12, 2), pixel(rgba, 12, 2) + 3));

  image::Image kept_alpha = served(upload_ok(editor_, "image/png", png, "?alpha=keep"));
  ASSERT_EQ(kept_alpha.channels, 4);
  EXPECT_EQ(kept_alpha.pixels, rgba.pixels) << "kept as it was, alpha included";

  // An opaque image kept is RGB: there is no alpha worth keeping.
  image::Image opaque =
      served(upload_ok(editor_, "image/png", png_of(gradient(8, 8, 4)), "?alpha=keep"));
  EXPECT_EQ(opaque.channels, 3);

  const Kept before = kept();
  expect_refused(upload(editor_, "image/png", png, "?alpha=maybe"), 400, "alpha", before,
                 "alpha=maybe");
}

TEST_F(UploadsTest, UnsupportedTypesAre415NamingContentType) {
  const std::string png = png_of(gradient(8, 8));
  const std::string gif(
      "GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;", 35);
  const std::string svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><rect width=\"8\" "
      "height=\"8\"/></svg>";
  const Kept before = kept();
  struct Case {
    std::string what, type, body;
  } cases[] = {
      {"no Content-Type", "", png},
      {"text/plain", "text/plain", png},
      {"JSON", "application/json", "{}"},
      {"GIF", "image/gif", gif},
      {"SVG", "image/svg+xml", svg},
      {"declared PNG, JPEG bytes", "image/png", jpeg_of(gradient(8, 8))},
      {"declared WebP, PNG bytes", "image/webp", png},
      {"declared PNG, GIF bytes", "image/png", gif},
  };
  for (const Case& c : cases) {
    Reply r = upload(editor_, c.type, c.body);
    expect_refused(r, 415, "Content-Type", before, c.what);
    EXPECT_EQ(r.error_code(), "unsupported_media_type") << c.what;
  }
  Reply listed = upload(editor_, "", png);
  EXPECT_NE(listed.body.find("image/png, image/jpeg, image/webp"), std::string::npos)
      << "the accepted types are named: " << listed.body;
  Form form{"g", {}};
  form.file("file", "a.gif", "image/gif", gif);
  expect_refused(upload(editor_, form.content_type(), form.finished()), 415, "Content-Type", before,
                 "a GIF part");
  Form sniffed{"s", {}};
  sniffed.file("file", "a", "application/octet-stream", svg);
  Reply s = upload(editor_, sniffed.content_type(), sniffed.finished());
  EXPECT_TRUE(s.status == 415 || s.status == 400) << "an untyped SVG part: " << s.body;
  EXPECT_EQ(kept().files, before.files);
}

TEST_F(UploadsTest, OversizedBodiesAre413BeforeTheBodyIsSent) {
  const Kept before = kept();
  // Only the header goes out: the answer must come without a single body byte.
  const uint64_t declared = kMaxBytes + kFraming + 1;
  Connection c(port_);
  ASSERT_TRUE(c.send("POST " + project_path(project_, "/uploads") +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer(editor_.token) +
                     "\r\nContent-Type: image/png\r\nContent-Length: " + std::to_string(declared) +
                     "\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << "no answer before the body was sent";
  EXPECT_EQ(r->status, 413) << r->body;
  auto error = json::parse(r->body)["error"];
  EXPECT_EQ(error["code"], "body_too_large");
  EXPECT_NE(error["message"].get<std::string>().find(std::to_string(kMaxBytes + kFraming)),
            std::string::npos)
      << error["message"];
  EXPECT_TRUE(c.closed_within(2s));

  // A raw body within the framing allowance but over max_upload_bytes: 413 naming the file.
  Reply over = upload(editor_, "image/png", std::string(kMaxBytes + 1, 'p'));
  expect_refused(over, 413, "file", before, "a raw file over max_upload_bytes");
  // Exactly at the limit is read (and then refused for what it is, not for its size).
  Reply at = upload(editor_, "image/png", std::string(kMaxBytes, 'p'));
  expect_refused(at, 400, "file", before, "garbage at exactly max_upload_bytes");
}

TEST_F(UploadsTest, BrokenHostileAndOversizedImagesAre400NamingFile) {
  const std::string png = png_of(gradient(64, 64));
  // A "bomb": a tiny file whose header says 8000 x 8000.
  std::vector<PngChunk> chunks = png_chunks(png);
  chunks[0].data.replace(0, 8, be32(8000) + be32(8000));
  const std::string bomb = png_from_chunks(chunks);
  ASSERT_LT(bomb.size(), 64u * 1024);
  const Kept before = kept();
  struct Case {
    std::string what, type, body, in_message;
  } cases[] = {
      {"empty", "image/png", "", ""},
      {"garbage", "image/png", "this is not an image at all, just text", ""},
      {"truncated PNG", "image/png", png.substr(0, png.size() / 2), ""},
      {"truncated JPEG", "image/jpeg",
       jpeg_of(gradient(64, 64)).substr(0, jpeg_of(gradient(64, 64)).size() / 2), ""},
      {"truncated WebP", "image/webp", webp_of(gradient(64, 64)).substr(0, 60), ""},
      {"corrupt IDAT", "image/png",
       [&] {
         std::vector<PngChunk> c = png_chunks(png);
         for (auto& k : c) {
           if (k.type == "IDAT") std::fill(k.data.begin() + 2, k.data.end(), '\x5a');
         }
         return png_from_chunks(c);
       }(),
       ""},
      {"over max_upload_pixels", "image/png", png_of(halves(1100, 1000, {1, 2, 3}, {4, 5, 6})),
       "max_upload_pixels"},
      {"header bomb", "image/png", bomb, "max_upload_pixels"},
      {"a side over 8192", "image/png", png_of(gradient(8193, 2)), "8192"},
      {"APNG", "image/png", apng_of(gradient(16, 16)), ""},
      {"animated WebP", "image/webp", animated_webp_of(gradient(16, 16)), ""},
  };
  for (const Case& c : cases) {
    Reply r = upload(editor_, c.type, c.body);
    expect_refused(r, 400, "file", before, c.what);
    if (!c.in_message.empty()) {
      EXPECT_NE(r.body.find(c.in_message), std::string::npos) << c.what << ": " << r.body;
    }
  }
  // Still serving: a good file right after.
  upload_ok(editor_, "image/png", png);
}

TEST_F(UploadsTest, OnlyEditorsAndOwnersWithSubmitScopeMayUpload) {
  const std::string png = png_of(gradient(8, 8, 3, 1));
  const Kept before = kept();
  expect_refused(upload(viewer_, "image/png", png), 403, "", before, "viewer");
  expect_refused(upload(stranger_, "image/png", png), 404, "", before, "non-member");
  // Membership comes before anything about the body: a stranger learns nothing, whatever it sends.
  expect_refused(upload(stranger_, "image/gif", "GIF89a"), 404, "", before, "non-member, GIF");
  expect_refused(upload_with("", "image/png", png), 401, "", before, "anonymous");
  ApiToken read = create_api_token(port_, owner_.token, "read");
  expect_refused(upload_with(bearer(read.secret), "image/png", png), 403, "", before, "read token");
  ApiToken submit = create_api_token(port_, owner_.token, "submit");
  Reply ok = upload_with(bearer(submit.secret), "image/png", png);
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(ok.json["image"]["created_by"], owner_.id);
  Reply other = call(port_, "POST", project_path(999999, "/uploads"), png,
                     header_lines({bearer(owner_.token), "Content-Type: image/png"}));
  EXPECT_EQ(other.status, 404);
}

// A server allowing two uploads per user per hour.
class UploadsRateTest : public UploadsTest {
 protected:
  void SetUp() override {
    ServerConfig c = config();
    c.max_uploads_per_user_per_hour = 2;
    start(c);
  }
};

TEST_F(UploadsRateTest, OverTheHourlyRateIs429WithRetryAfter) {
  upload_ok(editor_, "image/png", png_of(gradient(8, 8, 3, 1)));
  upload_ok(editor_, "image/png", png_of(gradient(8, 8, 3, 2)));
  const Kept before = kept();
  Reply r = upload(editor_, "image/png", png_of(gradient(8, 8, 3, 3)));
  expect_refused(r, 429, "file", before, "a third upload");
  EXPECT_NE(r.body.find("max_uploads_per_user_per_hour"), std::string::npos) << r.body;
  const int retry = std::atoi(r.header("retry-after").c_str());
  EXPECT_GE(retry, 1) << r.header("retry-after");
  EXPECT_LE(retry, 3600);
  // Per user: the owner still may.
  upload_ok(owner_, "image/png", png_of(gradient(8, 8, 3, 4)));
}

// Uploads racing past the early check meet the limit in their transaction: exactly the allowed
// number commit, and the refused ones' files are removed at once, except bytes a committed row
// also uses.
TEST_F(UploadsRateTest, ConcurrentUploadsOverTheLimitLeaveNoFileBehind) {
  auto race = [&](const Account& who, const std::vector<std::string>& files) {
    std::vector<int> statuses(files.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < files.size(); ++i) {
      threads.emplace_back([&, i] { statuses[i] = upload(who, "image/png", files[i]).status; });
    }
    for (auto& t : threads) t.join();
    return statuses;
  };
  const Kept start = kept();
  std::vector<std::string> distinct;
  for (int i = 0; i < 6; ++i) distinct.push_back(png_of(gradient(200, 200, 3, 10 + i)));
  std::vector<int> got = race(editor_, distinct);
  EXPECT_EQ(std::count(got.begin(), got.end(), 201), 2);
  EXPECT_EQ(std::count(got.begin(), got.end(), 429), 4);
  Kept after = kept();
  EXPECT_EQ(after.rows, start.rows + 2);
  EXPECT_EQ(after.files, start.files + 2) << "a refused upload's file stayed in the store";

  // The same bytes six times: two rows share one file, which the refused ones must not remove.
  const std::string same = png_of(gradient(200, 200, 3, 99));
  got = race(owner_, std::vector<std::string>(6, same));
  EXPECT_EQ(std::count(got.begin(), got.end(), 201), 2);
  after = kept();
  EXPECT_EQ(after.rows, start.rows + 4);
  EXPECT_EQ(after.files, start.files + 3);
  Reply list = call(port_, "GET", project_path(project_, "/images"), "", bearer(owner_.token));
  const json newest = list.json["images"][0];
  EXPECT_EQ(served(newest).pixels, decode_png_text(same).pixels) << "the shared file is intact";
}

}  // namespace
}  // namespace atelier::apitest
