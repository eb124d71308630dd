#include "common/image.h"

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <webp/decode.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace atelier::image {
namespace {

// Deterministic, non-trivial pixels so codecs have something to compress.
Image make_image(int w, int h, int channels) {
  Image img{w, h, channels, std::vector<uint8_t>(static_cast<size_t>(w) * h * channels)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[(static_cast<size_t>(y) * w + x) * channels];
      p[0] = static_cast<uint8_t>(x * 37 + y * 11);
      p[1] = static_cast<uint8_t>(x * 5 + y * 53 + 7);
      p[2] = static_cast<uint8_t>((x ^ y) * 29);
      if (channels == 4) p[3] = static_cast<uint8_t>(255 - x * 17 - y * 3);
    }
  }
  return img;
}

bool contains(const std::vector<uint8_t>& bytes, std::string_view needle) {
  const std::string_view haystack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return haystack.find(needle) != std::string_view::npos;
}

uint32_t crc32(const uint8_t* data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(std::vector<uint8_t>* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<uint8_t>(v >> s));
}

// Decodes a JPEG with libjpeg's default error manager (fine for known-good data in a test).
Image decode_jpeg_for_test(const std::vector<uint8_t>& data) {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data.data(), data.size());
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  Image img{static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height), 3, {}};
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * img.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return img;
}

const std::string kA1111 =
    "a cozy café ☕ at dawn, watercolor\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1234567890, Size: 512x512, Model: "
    "sd-v1-5";

TEST(ImageTest, PngRoundTripRgbOddSize) {
  const Image img = make_image(7, 5, 3);
  auto png = encode_png(img);
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  ASSERT_GE(png->size(), 8u);
  EXPECT_EQ(0, std::memcmp(png->data(), "\x89PNG\r\n\x1a\n", 8));
  auto back = decode_png(*png);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->width, 7);
  EXPECT_EQ(back->height, 5);
  EXPECT_EQ(back->channels, 3);
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(ImageTest, PngRoundTripRgba) {
  for (auto [w, h] : {std::pair{7, 5}, std::pair{1, 1}, std::pair{1, 33}, std::pair{64, 3}}) {
    const Image img = make_image(w, h, 4);
    auto png = encode_png(img);
    ASSERT_TRUE(png.is_ok()) << png.status().to_string();
    auto back = decode_png(*png);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->width, w);
    EXPECT_EQ(back->height, h);
    EXPECT_EQ(back->channels, 4);
    EXPECT_EQ(back->pixels, img.pixels);
  }
}

TEST(ImageTest, PngTextRoundTripLatin1AsTextUtf8AsItxt) {
  const TextChunks chunks = {
      {"parameters", kA1111},                 // has U+2615: needs iTXt
      {"Software", "Atelier, café edition"},  // Latin-1 only: tEXt
      {"Comment", ""},
  };
  auto png = encode_png(make_image(7, 5, 3), chunks);
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  EXPECT_TRUE(contains(*png, "iTXtparameters"));
  EXPECT_TRUE(contains(*png, "tEXtSoftware"));
  // tEXt holds Latin-1: "é" is the single byte 0xE9.
  EXPECT_TRUE(contains(*png, "Atelier, caf\xe9 edition"));
  auto text = read_png_text(*png);
  ASSERT_TRUE(text.is_ok()) << text.status().to_string();
  EXPECT_EQ(*text, chunks);
}

TEST(ImageTest, PngTextKeywordMayBeLatin1) {
  const TextChunks chunks = {{"Beschreibung Größe", "ok"}};
  auto png = encode_png(make_image(2, 2, 3), chunks);
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  auto text = read_png_text(*png);
  ASSERT_TRUE(text.is_ok());
  EXPECT_EQ(*text, chunks);
}

TEST(ImageTest, PngTextKeywordAndValueValidation) {
  const Image img = make_image(3, 3, 3);
  const std::vector<TextChunks> bad = {
      {{"", "v"}},
      {{std::string(80, 'k'), "v"}},
      {{" lead", "v"}},
      {{"trail ", "v"}},
      {{"two  spaces", "v"}},
      {{"tab\there", "v"}},
      {{"cup☕", "v"}},      // not Latin-1
      {{"bad\xff", "v"}},   // not UTF-8
      {{"k", "bad \xc3"}},  // truncated UTF-8 value
      {{"k", "overlong \xc0\xaf"}},
      {{"k", std::string("nul\0inside", 10)}},
  };
  for (const auto& chunks : bad) {
    auto png = encode_png(img, chunks);
    ASSERT_FALSE(png.is_ok()) << chunks[0].first;
    EXPECT_EQ(png.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(png.status().field(), "text_chunks");
  }
  EXPECT_TRUE(encode_png(img, {{std::string(79, 'k'), "v"}}).is_ok());
  EXPECT_TRUE(encode_png(img, {{"one space", "v"}}).is_ok());
}

TEST(ImageTest, DecodeRejectsGarbageAndTruncation) {
  const std::vector<uint8_t> empty;
  EXPECT_FALSE(decode_png(empty).is_ok());
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g', '!'};
  auto r = decode_png(junk);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("signature"), std::string::npos);

  auto png = encode_png(make_image(9, 6, 4), {{"parameters", kA1111}});
  ASSERT_TRUE(png.is_ok());
  // Every strict prefix is refused, including one missing only the IEND chunk.
  for (size_t n = 0; n < png->size(); ++n) {
    std::span<const uint8_t> prefix(png->data(), n);
    auto img = decode_png(prefix);
    EXPECT_FALSE(img.is_ok()) << "prefix " << n;
    EXPECT_FALSE(read_png_text(prefix).is_ok()) << "prefix " << n;
  }
  // Flipping any single byte past the signature must never crash; critical-chunk damage is
  // caught by CRC checks.
  int refused = 0;
  for (size_t i = 8; i < png->size(); ++i) {
    std::vector<uint8_t> bad = *png;
    bad[i] ^= 0x5A;
    if (!decode_png(bad).is_ok()) ++refused;
  }
  EXPECT_GT(refused, 0);
}

TEST(ImageTest, DecodeRejectsChunkLengthBeyondData) {
  auto png = encode_png(make_image(3, 2, 3), {{"parameters", kA1111}});
  ASSERT_TRUE(png.is_ok());
  // The text chunk follows the 8-byte signature and the 25-byte IHDR chunk.
  std::vector<uint8_t> bad = *png;
  ASSERT_EQ(std::string(bad.begin() + 37, bad.begin() + 41), "iTXt");
  bad[33] = 0x7F;  // declared length ~2 GiB
  auto r = decode_png(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();
}

TEST(ImageTest, DecodeRejectsOversizedDimensions) {
  // A hand-made IHDR of 20000x1 with a valid CRC: refused before any allocation.
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> chunk = {'I', 'H', 'D', 'R'};
  put_be32(&chunk, 20000);
  put_be32(&chunk, 1);
  chunk.insert(chunk.end(), {8, 2, 0, 0, 0});
  put_be32(&png, 13);
  png.insert(png.end(), chunk.begin(), chunk.end());
  put_be32(&png, crc32(chunk.data(), chunk.size()));
  auto r = decode_png(png);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("png: ", 0), 0u) << r.status().message();
}

TEST(ImageTest, JpegSignatureSizeAndQuality) {
  const Image img = make_image(64, 48, 3);
  auto hi = encode_jpeg(img, 95);
  auto lo = encode_jpeg(img, 10);
  ASSERT_TRUE(hi.is_ok()) << hi.status().to_string();
  ASSERT_TRUE(lo.is_ok()) << lo.status().to_string();
  ASSERT_GE(hi->size(), 3u);
  EXPECT_EQ((*hi)[0], 0xFF);
  EXPECT_EQ((*hi)[1], 0xD8);
  EXPECT_EQ((*hi)[2], 0xFF);
  EXPECT_EQ((*hi)[hi->size() - 2], 0xFF);  // EOI
  EXPECT_EQ((*hi)[hi->size() - 1], 0xD9);
  EXPECT_LT(lo->size(), hi->size());
  const Image back = decode_jpeg_for_test(*hi);
  EXPECT_EQ(back.width, 64);
  EXPECT_EQ(back.height, 48);
}

TEST(ImageTest, JpegLargerThanItsInternalBuffer) {
  // Forces several destination-buffer flushes.
  auto jpeg = encode_jpeg(make_image(400, 300, 3), 100);
  ASSERT_TRUE(jpeg.is_ok());
  EXPECT_GT(jpeg->size(), 16384u * 2);
  const Image back = decode_jpeg_for_test(*jpeg);
  EXPECT_EQ(back.width, 400);
  EXPECT_EQ(back.height, 300);
}

TEST(ImageTest, JpegFlattensAlphaOverWhite) {
  Image img{8, 8, 4, std::vector<uint8_t>(8 * 8 * 4, 0)};  // fully transparent black
  auto jpeg = encode_jpeg(img, 90);
  ASSERT_TRUE(jpeg.is_ok()) << jpeg.status().to_string();
  const Image back = decode_jpeg_for_test(*jpeg);
  for (uint8_t v : back.pixels) EXPECT_GE(v, 250);
}

TEST(ImageTest, WebpSignatureSizeAndQuality) {
  for (int channels : {3, 4}) {
    const Image img = make_image(64, 48, channels);
    auto hi = encode_webp(img, 95);
    auto lo = encode_webp(img, 5);
    ASSERT_TRUE(hi.is_ok()) << hi.status().to_string();
    ASSERT_TRUE(lo.is_ok()) << lo.status().to_string();
    ASSERT_GE(hi->size(), 12u);
    EXPECT_EQ(std::string(hi->begin(), hi->begin() + 4), "RIFF");
    EXPECT_EQ(std::string(hi->begin() + 8, hi->begin() + 12), "WEBP");
    EXPECT_LT(lo->size(), hi->size());
    WebPBitstreamFeatures features;
    ASSERT_EQ(WebPGetFeatures(hi->data(), hi->size(), &features), VP8_STATUS_OK);
    EXPECT_EQ(features.width, 64);
    EXPECT_EQ(features.height, 48);
    EXPECT_EQ(features.has_alpha != 0, channels == 4);
  }
}

TEST(ImageTest, ResizeBoxDimensions) {
  auto dims = [](int w, int h, int max_side) {
    const Image out = resize_box(make_image(w, h, 3), max_side);
    EXPECT_EQ(out.pixels.size(), static_cast<size_t>(out.width) * out.height * 3);
    return std::pair{out.width, out.height};
  };
  EXPECT_EQ(dims(100, 50, 10), std::pair(10, 5));
  EXPECT_EQ(dims(50, 100, 10), std::pair(5, 10));
  EXPECT_EQ(dims(7, 5, 3), std::pair(3, 2));       // 5 * 3/7 = 2.14
  EXPECT_EQ(dims(1000, 1, 10), std::pair(10, 1));  // shorter side never below 1
  EXPECT_EQ(dims(8, 8, 8), std::pair(8, 8));
  EXPECT_EQ(dims(4, 3, 100), std::pair(4, 3));  // never upscales
}

TEST(ImageTest, ResizeBoxAveragesArea) {
  Image img{2, 2, 3, {0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255}};
  const Image out = resize_box(img, 1);
  ASSERT_EQ(out.width, 1);
  ASSERT_EQ(out.height, 1);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{139, 139, 139}));  // 555 / 4 = 138.75

  // Fractional ratio 3 -> 2: output 0 covers source 0 fully and half of source 1.
  Image row{3, 1, 3, {0, 0, 0, 90, 90, 90, 180, 180, 180}};
  const Image two = resize_box(row, 2);
  ASSERT_EQ(two.width, 2);
  ASSERT_EQ(two.height, 1);
  EXPECT_EQ(two.pixels, (std::vector<uint8_t>{30, 30, 30, 150, 150, 150}));
}

TEST(ImageTest, ResizeBoxPremultipliesAlpha) {
  // A transparent red pixel next to an opaque blue one: no red may bleed in.
  Image img{2, 1, 4, {255, 0, 0, 0, 0, 0, 255, 255}};
  const Image out = resize_box(img, 1);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{0, 0, 255, 128}));
}

TEST(ImageTest, ValidationNamesTheField) {
  struct Case {
    Image img;
    const char* field;
  };
  const std::vector<Case> cases = {
      {{0, 5, 3, {}}, "width"},
      {{kMaxDimension + 1, 1, 3, {}}, "width"},
      {{5, -1, 3, {}}, "height"},
      {{1, kMaxDimension + 1, 3, {}}, "height"},
      {{2, 2, 2, std::vector<uint8_t>(8)}, "channels"},
      {{2, 2, 3, std::vector<uint8_t>(11)}, "pixels"},
      {{2, 2, 4, std::vector<uint8_t>(12)}, "pixels"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(validate(c.img).field(), c.field);
    for (const Status& st : {encode_png(c.img).status(), encode_jpeg(c.img, 80).status(),
                             encode_webp(c.img, 80).status()}) {
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(st.field(), c.field) << st.to_string();
    }
  }
  EXPECT_TRUE(validate(make_image(1, 1, 3)).is_ok());
  // An invalid image passes through resize_box untouched instead of crashing.
  EXPECT_EQ(resize_box(cases[5].img, 1).pixels.size(), 11u);
}

TEST(ImageTest, QualityIsValidated) {
  const Image img = make_image(4, 4, 3);
  EXPECT_EQ(encode_jpeg(img, 0).status().field(), "quality");
  EXPECT_EQ(encode_jpeg(img, 101).status().field(), "quality");
  EXPECT_EQ(encode_webp(img, -1).status().field(), "quality");
  EXPECT_EQ(encode_webp(img, 101).status().field(), "quality");
  EXPECT_TRUE(encode_jpeg(img, 1).is_ok());
  EXPECT_TRUE(encode_webp(img, 0).is_ok());
}

}  // namespace
}  // namespace atelier::image
