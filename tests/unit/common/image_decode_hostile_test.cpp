// Hostile files for the upload decoder (common/image_decode.h) and decode_png: decompression
// bombs refused before their pixel buffer exists, animation, truncation and corruption of every
// format, JPEG scan floods, and the size limits' messages.
//
// A decode that allocates its declared size first is caught by LargestAllocation (the largest
// operator new request), without running out of memory or timing anything.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/image_decode.h"
#include "tests/unit/common/image_decode_test_util.h"
#include "tests/unit/common/largest_allocation.h"

namespace atelier::image {
namespace {

using testing::Bytes;

constexpr UploadLimits kLimits{16 << 20};

using atelier::testing::LargestAllocation;

constexpr size_t kSmall = 1 << 20;  // far below any pixel buffer of the declared sizes

// A PNG of a few dozen bytes declaring width x height RGB, with a token IDAT.
Bytes png_bomb(uint32_t width, uint32_t height) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  testing::put_be32(&ihdr, width);
  testing::put_be32(&ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  for (const Bytes& c : {testing::png_chunk("IHDR", ihdr),
                         testing::png_chunk("IDAT", {0x78, 0x9c, 0x63, 0x60, 0x00, 0x00}),
                         testing::png_chunk("IEND", {})}) {
    png.insert(png.end(), c.begin(), c.end());
  }
  return png;
}

void expect_file_error(const Result<Image>& r, std::string_view needle = {}) {
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(r.status().field(), "file") << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST(ImageDecodeHostile, PngBombRefusedBeforeAllocating) {
  const Bytes bomb = png_bomb(16384, 16384);  // 805 MB of RGB from 57 bytes
  {
    LargestAllocation largest;
    auto r = decode_png(bomb);  // the generic decoder too, with no limits of its own
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().message().rfind("png: ", 0), 0u) << r.status().message();
    EXPECT_LT(largest.bytes(), kSmall);
  }
  {
    LargestAllocation largest;
    expect_file_error(decode_upload(bomb, ImageFormat::kPng, kLimits, AlphaMode::kFlatten),
                      "each side at most 8192");
    expect_file_error(
        decode_upload(bomb, ImageFormat::kPng, {16 << 20, 16384}, AlphaMode::kFlatten),
        "max_upload_pixels");
    // Within every limit (exactly 16 MP) but with no data to fill it: still nothing allocated.
    expect_file_error(
        decode_upload(png_bomb(4096, 4096), ImageFormat::kPng, kLimits, AlphaMode::kFlatten),
        "truncated");
    EXPECT_LT(largest.bytes(), kSmall);
  }
}

TEST(ImageDecodeHostile, JpegAndWebpDeclaringHugeSizesRefusedFromTheHeader) {
  Bytes jpeg = *encode_jpeg(testing::make_image(8, 8, 3), 90);
  size_t sof = 2;
  while (sof + 1 < jpeg.size() && !(jpeg[sof] == 0xFF && jpeg[sof + 1] == 0xC0)) ++sof;
  ASSERT_LT(sof + 9, jpeg.size());
  auto set_size = [&](uint16_t w, uint16_t h) {
    jpeg[sof + 5] = static_cast<uint8_t>(h >> 8);
    jpeg[sof + 6] = static_cast<uint8_t>(h);
    jpeg[sof + 7] = static_cast<uint8_t>(w >> 8);
    jpeg[sof + 8] = static_cast<uint8_t>(w);
  };
  LargestAllocation largest;
  set_size(60000, 60000);
  EXPECT_EQ(probe_image(jpeg)->width, 60000);
  expect_file_error(decode_upload(jpeg, ImageFormat::kJpeg, kLimits, AlphaMode::kFlatten),
                    "each side at most 8192");
  set_size(8000, 8000);
  expect_file_error(decode_upload(jpeg, ImageFormat::kJpeg, kLimits, AlphaMode::kFlatten),
                    "max_upload_pixels");

  // VP8L header: 0x2f, then 14 bits width - 1, 14 bits height - 1, alpha, version.
  Bytes webp = testing::lossless_webp(testing::make_image(8, 8, 3));
  ASSERT_EQ(webp[20], 0x2f);
  const uint32_t bits = 0x3FFFu | (0x3FFFu << 14);
  for (int i = 0; i < 4; ++i) webp[21 + i] = static_cast<uint8_t>(bits >> (8 * i));
  EXPECT_EQ(probe_image(webp)->height, 16384);
  expect_file_error(decode_upload(webp, ImageFormat::kWebp, kLimits, AlphaMode::kFlatten),
                    "each side at most 8192");
  EXPECT_LT(largest.bytes(), kSmall);
}

TEST(ImageDecodeHostile, SizeLimitsNameTheKeyAndAllowTheExactLimit) {
  const Bytes png = *encode_png(testing::make_image(100, 50, 3));
  EXPECT_TRUE(decode_upload(png, ImageFormat::kPng, {5000}, AlphaMode::kFlatten).is_ok());
  expect_file_error(decode_upload(png, ImageFormat::kPng, {4999}, AlphaMode::kFlatten),
                    "max_upload_pixels (4999)");
  EXPECT_TRUE(decode_upload(png, ImageFormat::kPng, {5000, 100}, AlphaMode::kFlatten).is_ok());
  expect_file_error(decode_upload(png, ImageFormat::kPng, {5000, 99}, AlphaMode::kFlatten),
                    "each side at most 99");
}

TEST(ImageDecodeHostile, AnimatedImagesRefused) {
  const Image img = testing::make_image(4, 4, 3);
  Bytes actl;
  testing::put_be32(&actl, 2);  // frames
  testing::put_be32(&actl, 0);  // plays
  const Bytes actl_chunk = testing::png_chunk("acTL", actl);
  const Bytes apng = testing::insert_png_chunk(*encode_png(img), actl_chunk, "IDAT");
  EXPECT_TRUE(probe_image(apng)->animated);
  expect_file_error(decode_upload(apng, ImageFormat::kPng, kLimits, AlphaMode::kFlatten), "APNG");
  // After the image data an acTL means nothing: APNG readers show the still image.
  const Bytes late = testing::insert_png_chunk(*encode_png(img), actl_chunk, "IEND");
  EXPECT_FALSE(probe_image(late)->animated);
  EXPECT_TRUE(decode_upload(late, ImageFormat::kPng, kLimits, AlphaMode::kFlatten).is_ok());

  const Bytes anim = testing::animated_webp(testing::lossless_webp(img), 4, 4);
  auto probe = probe_image(anim);
  ASSERT_TRUE(probe.is_ok()) << probe.status().to_string();
  EXPECT_TRUE(probe->animated);
  expect_file_error(decode_upload(anim, ImageFormat::kWebp, kLimits, AlphaMode::kFlatten),
                    "animated WebP");
}

// A progressive grayscale 8x8 JPEG whose AC coefficients are each sent in their own scans by
// successive approximation from bit `first_al` down: 1 + 63 * (first_al + 1) scans.
Bytes many_scan_jpeg(int first_al) {
  testing::JpegSpec s;
  s.width = 8;
  s.height = 8;
  s.components = 1;
  s.in_space = JCS_GRAYSCALE;
  s.jpeg_space = JCS_GRAYSCALE;
  for (int i = 0; i < 64; ++i) s.pixels.push_back(static_cast<uint8_t>(i * 4));
  s.scans.push_back({1, {0}, 0, 0, 0, 0});
  for (int k = 1; k <= 63; ++k) {
    s.scans.push_back({1, {0}, k, k, 0, first_al});
    for (int al = first_al; al > 0; --al) s.scans.push_back({1, {0}, k, k, al, al - 1});
  }
  return testing::write_jpeg(s);
}

TEST(ImageDecodeHostile, JpegScanFloodRefused) {
  // 379 scans decode; 631 are refused.
  EXPECT_TRUE(
      decode_upload(many_scan_jpeg(5), ImageFormat::kJpeg, kLimits, AlphaMode::kFlatten).is_ok());
  expect_file_error(
      decode_upload(many_scan_jpeg(9), ImageFormat::kJpeg, kLimits, AlphaMode::kFlatten),
      "more than 500 scans");
}

// Files of each format and kind whose every strict prefix must be refused.
std::vector<std::pair<std::string, Bytes>> sample_files() {
  const Image rgb = testing::make_image(16, 16, 3);
  const Image rgba = testing::make_image(9, 6, 4);
  testing::PngSpec interlaced{9, 6, PNG_COLOR_TYPE_RGB_ALPHA, 8, true, rgba.pixels};
  return {
      {"png", *encode_png(rgba)},
      {"png_interlaced", testing::write_png(interlaced)},
      {"jpeg", testing::rgb_jpeg(rgb)},
      {"jpeg_progressive", testing::rgb_jpeg(rgb, true)},
      {"webp_lossy", *encode_webp(rgb, 80)},
      {"webp_lossy_alpha", *encode_webp(rgba, 80)},
      {"webp_lossless", testing::lossless_webp(rgba)},
  };
}

ImageFormat format_of(const std::string& name) {
  return name.rfind("png", 0) == 0    ? ImageFormat::kPng
         : name.rfind("jpeg", 0) == 0 ? ImageFormat::kJpeg
                                      : ImageFormat::kWebp;
}

TEST(ImageDecodeHostile, EveryTruncationOfEveryFormatRefused) {
  for (const auto& [name, file] : sample_files()) {
    const ImageFormat format = format_of(name);
    ASSERT_TRUE(decode_upload(file, format, kLimits, AlphaMode::kKeep).is_ok()) << name;
    for (size_t n = 0; n < file.size(); ++n) {
      auto r = decode_upload(std::span<const uint8_t>(file.data(), n), format, kLimits,
                             AlphaMode::kKeep);
      ASSERT_FALSE(r.is_ok()) << name << " cut at " << n;
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << name << " " << n;
      EXPECT_EQ(r.status().field(), "file") << name << " " << n;
    }
  }
}

TEST(ImageDecodeHostile, CorruptBytesAreRefusedOrDecodeCleanly) {
  for (const auto& [name, file] : sample_files()) {
    const ImageFormat format = format_of(name);
    int refused = 0;
    for (size_t i = 0; i < file.size(); ++i) {
      Bytes bad = file;
      bad[i] ^= 0x5A;
      auto r = decode_upload(bad, format, kLimits, AlphaMode::kKeep);
      if (r.is_ok()) {
        EXPECT_TRUE(validate(*r).is_ok()) << name << " " << i;
        continue;
      }
      ++refused;
      EXPECT_TRUE(r.status().field() == "file" || r.status().field() == "Content-Type")
          << name << " " << i << ": " << r.status().to_string();
    }
    EXPECT_GT(refused, 0) << name;
  }
}

TEST(ImageDecodeHostile, PngCrcErrorInImageDataRefused) {
  Bytes png = *encode_png(testing::make_image(8, 8, 3));
  png[png.size() - 13] ^= 0x01;  // last byte of the IDAT chunk's CRC
  expect_file_error(decode_upload(png, ImageFormat::kPng, kLimits, AlphaMode::kFlatten), "CRC");
}

}  // namespace
}  // namespace atelier::image
