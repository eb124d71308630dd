// Upload decoding (common/image_decode.h): sniffing, probing, every accepted format and variant
// decoding to the right pixels, EXIF orientation, alpha. Hostile files: image_decode_hostile_test.
#include "common/image_decode.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/image_decode_detail.h"
#include "tests/unit/common/image_decode_test_util.h"

namespace atelier::image {
namespace {

using testing::Bytes;

constexpr UploadLimits kLimits{16 << 20};

Bytes text_bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

bool contains(const Bytes& bytes, std::string_view needle) {
  const std::string_view hay(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return hay.find(needle) != std::string_view::npos;
}

int max_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.channels, b.channels);
  if (a.pixels.size() != b.pixels.size()) return 256;
  int worst = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i)
    worst = std::max(worst, std::abs(a.pixels[i] - b.pixels[i]));
  return worst;
}

Image decode_ok(const Bytes& bytes, ImageFormat format, AlphaMode alpha = AlphaMode::kKeep) {
  auto img = decode_upload(bytes, format, kLimits, alpha);
  EXPECT_TRUE(img.is_ok()) << img.status().to_string();
  return img.is_ok() ? *img : Image{};
}

// ---- Sniffing -----------------------------------------------------------------------------------

TEST(ImageDecodeSniff, RecognisesTheThreeFormats) {
  const Image img = testing::make_image(8, 8, 3);
  EXPECT_EQ(*sniff_format(*encode_png(img)), ImageFormat::kPng);
  EXPECT_EQ(*sniff_format(*encode_jpeg(img, 90)), ImageFormat::kJpeg);
  EXPECT_EQ(*sniff_format(*encode_webp(img, 90)), ImageFormat::kWebp);
  EXPECT_EQ(format_name(ImageFormat::kWebp), "WebP");
}

TEST(ImageDecodeSniff, NamesRefusedFormatsAndBlamesTheContentType) {
  const std::vector<std::pair<Bytes, std::string>> cases = {
      {text_bytes("GIF89a\x01\x00\x01\x00"), "GIF"},
      {text_bytes("GIF87a"), "GIF"},
      {text_bytes("\xef\xbb\xbf  <?xml version=\"1.0\"?>\n<svg xmlns=\"...\"></svg>"), "SVG"},
      {text_bytes("<svg width=\"10\"/>"), "SVG"},
      {text_bytes("<!DOCTYPE html><html></html>"), "XML or HTML"},
      {text_bytes(std::string("BM") + std::string(40, '\0')), "BMP"},
      {Bytes{'I', 'I', '*', 0, 8, 0, 0, 0}, "TIFF"},
      {Bytes{0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c'}, "HEIC"},
      {Bytes{0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'a', 'v', 'i', 'f'}, "AVIF"},
      {text_bytes("%PDF-1.7"), "PDF"},
  };
  for (const auto& [bytes, name] : cases) {
    auto r = sniff_format(bytes);
    ASSERT_FALSE(r.is_ok()) << name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().field(), "Content-Type") << name;
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("send PNG, JPEG or WebP"), std::string::npos);
  }
}

TEST(ImageDecodeSniff, UnrecognisedOrCutBytesAreAFileError) {
  for (const Bytes& bytes : {Bytes{}, text_bytes("hello"), Bytes{0x89, 'P', 'N'}, Bytes{0xFF, 0xD8},
                             text_bytes("RIFF\x10\0\0\0WAVE")}) {
    auto r = sniff_format(bytes);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().field(), "file");
    auto d = decode_upload(bytes, ImageFormat::kPng, kLimits, AlphaMode::kFlatten);
    EXPECT_EQ(d.status().field(), "file");
  }
}

TEST(ImageDecodeUpload, DeclaredTypeMustMatchTheBytes) {
  const Bytes jpeg = *encode_jpeg(testing::make_image(8, 8, 3), 90);
  auto r = decode_upload(jpeg, ImageFormat::kPng, kLimits, AlphaMode::kFlatten);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().field(), "Content-Type");
  EXPECT_NE(r.status().message().find("JPEG"), std::string::npos) << r.status().message();
  // A refused format sent as an accepted type is also the Content-Type's fault.
  auto gif =
      decode_upload(text_bytes("GIF89a...."), ImageFormat::kWebp, kLimits, AlphaMode::kFlatten);
  EXPECT_EQ(gif.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(gif.status().field(), "Content-Type");
  EXPECT_NE(gif.status().message().find("GIF"), std::string::npos);
}

// ---- PNG ----------------------------------------------------------------------------------------

TEST(ImageDecodePng, RgbAndRgbaDecodeExactly) {
  for (int ch : {3, 4}) {
    const Image img = testing::make_image(13, 7, ch);
    EXPECT_EQ(max_diff(decode_ok(*encode_png(img), ImageFormat::kPng), img), 0) << ch;
  }
}

TEST(ImageDecodePng, EveryColourTypeAndDepthDecodes) {
  // 4x2 images; each case gives the libpng rows and the expected RGB(A) pixels.
  struct Case {
    std::string name;
    testing::PngSpec spec;
    Image expected;
  };
  std::vector<Case> cases;
  {
    testing::PngSpec s{4, 2, PNG_COLOR_TYPE_GRAY, 1};
    s.rows = {0b10100000, 0b01010000};  // rows padded to a byte
    cases.push_back(
        {"gray1", s, Image{4, 2, 3, {255, 255, 255, 0,   0,   0,   255, 255, 255, 0,   0,   0,
                                     0,   0,   0,   255, 255, 255, 0,   0,   0,   255, 255, 255}}});
  }
  {
    testing::PngSpec s{2, 1, PNG_COLOR_TYPE_GRAY, 16};
    s.rows = {0x12, 0x34, 0xAB, 0xCD};  // 16-bit samples keep their high byte
    cases.push_back({"gray16", s, Image{2, 1, 3, {0x12, 0x12, 0x12, 0xAB, 0xAB, 0xAB}}});
  }
  {
    testing::PngSpec s{2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8};
    s.rows = {10, 255, 200, 0};
    cases.push_back({"gray_alpha", s, Image{2, 1, 4, {10, 10, 10, 255, 200, 200, 200, 0}}});
  }
  {
    testing::PngSpec s{3, 1, PNG_COLOR_TYPE_PALETTE, 8};
    s.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    s.trns_alpha = {255, 128};  // entry 2 stays opaque
    s.rows = {2, 1, 0};
    cases.push_back(
        {"palette_trns", s, Image{3, 1, 4, {0, 0, 255, 255, 0, 255, 0, 128, 255, 0, 0, 255}}});
  }
  {
    testing::PngSpec s{2, 1, PNG_COLOR_TYPE_RGB, 16};
    s.rows = {0xFF, 0x00, 0x80, 0x01, 0x00, 0xFF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
    cases.push_back({"rgb16", s, Image{2, 1, 3, {0xFF, 0x80, 0x00, 0x01, 0x03, 0x05}}});
  }
  {
    testing::PngSpec s{2, 1, PNG_COLOR_TYPE_RGB, 8};
    s.rows = {1, 2, 3, 4, 5, 6};
    s.trns_color = true;
    s.trns.red = 4;
    s.trns.green = 5;
    s.trns.blue = 6;
    cases.push_back({"rgb_trns", s, Image{2, 1, 4, {1, 2, 3, 255, 4, 5, 6, 0}}});
  }
  {
    const Image big = testing::make_image(17, 11, 4);
    testing::PngSpec s{17, 11, PNG_COLOR_TYPE_RGB_ALPHA, 8, true, big.pixels};
    cases.push_back({"interlaced_rgba", s, big});
  }
  for (const Case& c : cases) {
    const Bytes png = testing::write_png(c.spec);
    auto probe = probe_image(png);
    ASSERT_TRUE(probe.is_ok()) << c.name << ": " << probe.status().to_string();
    EXPECT_EQ(probe->has_alpha, c.expected.channels == 4) << c.name;
    EXPECT_EQ(max_diff(decode_ok(png, ImageFormat::kPng), c.expected), 0) << c.name;
  }
}

// ---- JPEG ---------------------------------------------------------------------------------------

TEST(ImageDecodeJpeg, BaselineAndProgressiveDecodeWithinTolerance) {
  // Smooth content so that JPEG at quality 95 stays close.
  Image img{64, 48, 3, std::vector<uint8_t>(64 * 48 * 3)};
  for (int y = 0; y < 48; ++y) {
    for (int x = 0; x < 64; ++x) {
      uint8_t* p = &img.pixels[(y * 64 + x) * 3];
      p[0] = static_cast<uint8_t>(x * 4);
      p[1] = static_cast<uint8_t>(y * 5);
      p[2] = static_cast<uint8_t>(128 + (x - y));
    }
  }
  for (bool progressive : {false, true}) {
    const Bytes jpeg = testing::rgb_jpeg(img, progressive);
    EXPECT_LE(max_diff(decode_ok(jpeg, ImageFormat::kJpeg), img), 12) << progressive;
  }
}

TEST(ImageDecodeJpeg, GrayscaleBecomesRgb) {
  testing::JpegSpec s;
  s.width = 16;
  s.height = 16;
  s.components = 1;
  s.in_space = JCS_GRAYSCALE;
  s.jpeg_space = JCS_GRAYSCALE;
  s.pixels.assign(16 * 16, 77);
  const Image out = decode_ok(testing::write_jpeg(s), ImageFormat::kJpeg);
  ASSERT_EQ(out.channels, 3);
  for (uint8_t v : out.pixels) EXPECT_NEAR(v, 77, 1);
}

TEST(ImageDecodeJpeg, CmykAndYcckConvertToRgb) {
  // libjpeg writes the Adobe marker for CMYK and YCCK; such files store inverted CMYK
  // (Photoshop's convention), so true red (C=0, M=1, Y=1, K=0) is stored as 255, 0, 0, 255.
  for (J_COLOR_SPACE space : {JCS_CMYK, JCS_YCCK}) {
    testing::JpegSpec s;
    s.width = 16;
    s.height = 16;
    s.components = 4;
    s.in_space = JCS_CMYK;
    s.jpeg_space = space;
    for (int i = 0; i < 16 * 16; ++i) s.pixels.insert(s.pixels.end(), {255, 0, 0, 255});
    const Image out = decode_ok(testing::write_jpeg(s), ImageFormat::kJpeg);
    ASSERT_EQ(out.channels, 3);
    EXPECT_NEAR(out.pixels[0], 255, 4) << space;
    EXPECT_NEAR(out.pixels[1], 0, 4) << space;
    EXPECT_NEAR(out.pixels[2], 0, 4) << space;
  }
}

// ---- WebP ---------------------------------------------------------------------------------------

TEST(ImageDecodeWebp, LosslessExactLossyClose) {
  for (int ch : {3, 4}) {
    Image img = testing::make_image(19, 9, ch);
    // libwebp's lossless encoder may change the colour under alpha 0 (it is invisible).
    for (size_t i = 3; ch == 4 && i < img.pixels.size(); i += 4) {
      img.pixels[i] = std::max<uint8_t>(img.pixels[i], 1);
    }
    EXPECT_EQ(max_diff(decode_ok(testing::lossless_webp(img), ImageFormat::kWebp), img), 0) << ch;
  }
  Image flat{32, 32, 4, {}};
  for (int i = 0; i < 32 * 32; ++i) flat.pixels.insert(flat.pixels.end(), {200, 40, 90, 128});
  const Image lossy = decode_ok(*encode_webp(flat, 95), ImageFormat::kWebp);
  EXPECT_LE(max_diff(lossy, flat), 8);
}

// ---- Alpha --------------------------------------------------------------------------------------

TEST(ImageDecodeAlpha, FlattenOverWhiteOrKeep) {
  const Image rgba{2, 1, 4, {0, 0, 0, 0, 100, 50, 200, 128}};
  const Bytes png = *encode_png(rgba);
  const Image kept = decode_ok(png, ImageFormat::kPng, AlphaMode::kKeep);
  EXPECT_EQ(kept.channels, 4);
  EXPECT_EQ(kept.pixels, rgba.pixels);
  const Image flat = decode_ok(png, ImageFormat::kPng, AlphaMode::kFlatten);
  ASSERT_EQ(flat.channels, 3);
  // Transparent black is white; half-transparent colour is halfway to white.
  EXPECT_EQ(flat.pixels, (std::vector<uint8_t>{255, 255, 255, 177, 152, 227}));
  // An alpha channel that is opaque everywhere is dropped even with kKeep.
  const Image opaque{2, 1, 4, {1, 2, 3, 255, 4, 5, 6, 255}};
  const Image out = decode_ok(*encode_png(opaque), ImageFormat::kPng, AlphaMode::kKeep);
  EXPECT_EQ(out.channels, 3);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
}

// ---- Orientation --------------------------------------------------------------------------------

// A 48x32 JPEG of six 16x16 blocks (one per 4:2:0 MCU, so colours stay clean):
//   R G B
//   Y W K
Bytes six_block_jpeg() {
  static constexpr uint8_t kColours[6][3] = {{255, 0, 0},   {0, 255, 0},     {0, 0, 255},
                                             {255, 255, 0}, {255, 255, 255}, {0, 0, 0}};
  Image img{48, 32, 3, std::vector<uint8_t>(48 * 32 * 3)};
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 48; ++x) {
      const uint8_t* c = kColours[(y / 16) * 3 + x / 16];
      std::copy(c, c + 3, &img.pixels[(y * 48 + x) * 3]);
    }
  }
  return testing::rgb_jpeg(img);
}

char block_letter(const Image& img, int bx, int by) {
  const uint8_t* p = &img.pixels[((by * 16 + 8) * img.width + bx * 16 + 8) * 3];
  auto on = [](uint8_t v) { return v > 128; };
  const int key = on(p[0]) * 4 + on(p[1]) * 2 + on(p[2]);
  static constexpr char kLetters[8] = {'K', 'B', 'G', '?', 'R', '?', 'Y', 'W'};
  return kLetters[key];
}

std::string layout(const Image& img) {
  std::string out;
  for (int by = 0; by < img.height / 16; ++by) {
    if (by > 0) out += '/';
    for (int bx = 0; bx < img.width / 16; ++bx) out += block_letter(img, bx, by);
  }
  return out;
}

TEST(ImageDecodeOrientation, AllEightExifOrientationsOfAJpeg) {
  // What a viewer shows for each EXIF value (TIFF 6.0, tag 274), written out by hand.
  const std::string kExpected[9] = {"",         "RGB/YWK",  "BGR/KWY",  "KWY/BGR", "YWK/RGB",
                                    "RY/GW/BK", "YR/WG/KB", "KB/WG/YR", "BK/GW/RY"};
  const Bytes plain = six_block_jpeg();
  for (int o = 1; o <= 8; ++o) {
    for (bool big_endian : {false, true}) {
      const Bytes jpeg = testing::insert_app1(plain, testing::exif_block(o, big_endian));
      auto probe = probe_image(jpeg);
      ASSERT_TRUE(probe.is_ok()) << probe.status().to_string();
      EXPECT_EQ(probe->orientation, o);
      EXPECT_EQ(probe->width, 48);
      const Image out = decode_ok(jpeg, ImageFormat::kJpeg);
      EXPECT_EQ(out.width, o >= 5 ? 32 : 48) << o;
      EXPECT_EQ(layout(out), kExpected[o]) << "orientation " << o << " big-endian " << big_endian;
    }
  }
}

TEST(ImageDecodeOrientation, PngExifAndWebpExifAreApplied) {
  Image img{2, 1, 3, {255, 0, 0, 0, 0, 255}};  // red, blue
  const Bytes png = testing::insert_png_chunk(
      *encode_png(img), testing::png_chunk("eXIf", testing::exif_block(6, true, false)), "IDAT");
  EXPECT_EQ(probe_image(png)->orientation, 6);
  const Image out = decode_ok(png, ImageFormat::kPng);
  // Rotated 90 degrees clockwise: red on top, blue below.
  EXPECT_EQ(out.width, 1);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{255, 0, 0, 0, 0, 255}));

  const Bytes simple = testing::lossless_webp(img);
  const Bytes webp =
      testing::riff_webp({testing::vp8x_header(0x08, 2, 1), testing::webp_image_chunk(simple),
                          testing::riff_chunk("EXIF", testing::exif_block(8, false, false))});
  EXPECT_EQ(probe_image(webp)->orientation, 8);
  const Image w = decode_ok(webp, ImageFormat::kWebp);
  EXPECT_EQ(w.height, 2);
  EXPECT_EQ(w.pixels, (std::vector<uint8_t>{0, 0, 255, 255, 0, 0}));  // counter-clockwise
}

TEST(ImageDecodeOrientation, ExifParserIgnoresMalformedBlocks) {
  using detail::exif_orientation;
  const Bytes good = testing::exif_block(3, false);
  EXPECT_EQ(exif_orientation(good), 3);
  for (size_t n = 0; n + 4 < good.size(); ++n) {  // cut before the entry's end: 1
    EXPECT_EQ(exif_orientation(std::span<const uint8_t>(good.data(), n)), 1) << n;
  }
  Bytes bad_offset = good;
  bad_offset[10] = 0xF0;  // IFD0 offset far beyond the block
  EXPECT_EQ(exif_orientation(bad_offset), 1);
  Bytes huge_count = good;
  huge_count[14] = 0xFF;  // 65535 entries claimed, two present
  huge_count[15] = 0xFF;
  EXPECT_EQ(exif_orientation(huge_count), 3);
  EXPECT_EQ(exif_orientation(testing::exif_block(9, false)), 1);  // out of range
  EXPECT_EQ(exif_orientation(testing::exif_block(0, true)), 1);
}

// ---- Metadata -----------------------------------------------------------------------------------

TEST(ImageDecodeUpload, NoMetadataReachesTheStoredPng) {
  const Image img = testing::make_image(8, 8, 3);
  Bytes png = *encode_png(img, {{"parameters", "secret prompt"}, {"GPS", "48.85N 2.35E"}});
  png = testing::insert_png_chunk(
      png, testing::png_chunk("eXIf", testing::exif_block(1, false, false)), "IDAT");
  const Bytes jpeg = testing::insert_app1(*encode_jpeg(img, 90), testing::exif_block(1, false));
  const std::vector<std::pair<Bytes, ImageFormat>> files = {{png, ImageFormat::kPng},
                                                            {jpeg, ImageFormat::kJpeg}};
  for (const auto& [bytes, format] : files) {
    const Image out = decode_ok(bytes, format);
    const Bytes stored = *encode_png(out);
    for (std::string_view chunk : {"tEXt", "iTXt", "zTXt", "eXIf", "Exif", "secret", "GPS"}) {
      EXPECT_FALSE(contains(stored, chunk)) << chunk;
    }
  }
}

}  // namespace
}  // namespace atelier::image
