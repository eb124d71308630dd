// Preview frames (proto/websocket.md's binary layout) and the per-job preview throttle.
#include "server/rooms/preview.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>

namespace atelier::rooms {
namespace {

image::Image gradient(int w, int h) {
  image::Image img;
  img.width = w;
  img.height = h;
  img.channels = 3;
  img.pixels.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 7);
  return img;
}

TEST(PreviewFrameTest, HeaderFollowsTheDocumentedLayoutByteForByte) {
  auto frame =
      encode_preview_frame(0x0102030405060708LL, 0x1112131415161718LL, 3, 20, gradient(640, 320));
  ASSERT_TRUE(frame.is_ok()) << frame.status().to_string();
  const std::string& f = **frame;
  ASSERT_GT(f.size(), kPreviewHeaderBytes);
  EXPECT_EQ(f.substr(0, 4), "ATPV");
  EXPECT_EQ(f[4], 1);  // layout version
  EXPECT_EQ(f[5], 1);  // JPEG
  EXPECT_EQ(f[6], 0);
  EXPECT_EQ(f[7], 0);
  // Little-endian: the project id's lowest byte first.
  EXPECT_EQ(static_cast<unsigned char>(f[8]), 0x08);
  EXPECT_EQ(static_cast<unsigned char>(f[15]), 0x01);
  EXPECT_EQ(static_cast<unsigned char>(f[16]), 0x18);
  EXPECT_EQ(static_cast<unsigned char>(f[24]), 3);
  EXPECT_EQ(static_cast<unsigned char>(f[28]), 20);
  // 640x320 scaled to a 256 px longer side: 256x128.
  EXPECT_EQ(static_cast<unsigned char>(f[32]) | (static_cast<unsigned char>(f[33]) << 8), 256);
  EXPECT_EQ(static_cast<unsigned char>(f[34]) | (static_cast<unsigned char>(f[35]) << 8), 128);
  // The header the web client's test parses (proto/fixtures/preview-header-v1.hex), exactly.
  std::ifstream fixture(std::string(ATELIER_SOURCE_DIR) + "/proto/fixtures/preview-header-v1.hex");
  std::string hex;
  ASSERT_TRUE(fixture >> hex);
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  EXPECT_EQ(f.substr(0, kPreviewHeaderBytes), bytes);
  // The image starts at byte 40 and is a JPEG (SOI marker).
  EXPECT_EQ(static_cast<unsigned char>(f[40]), 0xFF);
  EXPECT_EQ(static_cast<unsigned char>(f[41]), 0xD8);

  auto h = parse_preview_header(f);
  ASSERT_TRUE(h.is_ok());
  EXPECT_EQ(h->project, 0x0102030405060708LL);
  EXPECT_EQ(h->job, 0x1112131415161718LL);
  EXPECT_EQ(h->step, 3u);
  EXPECT_EQ(h->steps, 20u);
  EXPECT_EQ(h->width, 256);
  EXPECT_EQ(h->height, 128);
  EXPECT_EQ(h->format, PreviewFormat::kJpeg);
}

TEST(PreviewFrameTest, SmallImagesAreNotScaledUpAndBadFramesAreRefused) {
  auto frame = encode_preview_frame(1, 2, 1, 1, gradient(64, 48));
  ASSERT_TRUE(frame.is_ok());
  auto h = parse_preview_header(**frame);
  ASSERT_TRUE(h.is_ok());
  EXPECT_EQ(h->width, 64);
  EXPECT_EQ(h->height, 48);
  EXPECT_FALSE(parse_preview_header("ATPV").is_ok());
  std::string wrong = **frame;
  wrong[0] = 'X';
  EXPECT_FALSE(parse_preview_header(wrong).is_ok());
  wrong = **frame;
  wrong[4] = 2;
  EXPECT_FALSE(parse_preview_header(wrong).is_ok());
}

// A fake steady clock the tests move by hand.
struct FakeClock {
  SteadyTime now = SteadyTime(std::chrono::seconds(1));
  void advance(int ms) { now += std::chrono::milliseconds(ms); }
  PreviewThrottle::Clock fn() {
    return [this] { return now; };
  }
};

TEST(PreviewThrottleTest, OnePerJobPerIntervalFromItsStart) {
  FakeClock clock;
  PreviewThrottle throttle(std::chrono::milliseconds(250), clock.fn());
  throttle.start(7);
  throttle.start(8);
  EXPECT_FALSE(throttle.admit(7)) << "the first preview waits one interval after the start";
  clock.advance(250);
  EXPECT_TRUE(throttle.admit(7));
  EXPECT_FALSE(throttle.admit(7));
  EXPECT_TRUE(throttle.admit(8)) << "jobs are throttled separately";
  clock.advance(249);
  EXPECT_FALSE(throttle.admit(7));
  clock.advance(1);
  EXPECT_TRUE(throttle.admit(7));
  EXPECT_FALSE(throttle.admit(7)) << "the last step is not special";
  EXPECT_EQ(throttle.tracked(), 2u);
}

TEST(PreviewThrottleTest, NothingBeforeTheStartOrAfterTheEnd) {
  FakeClock clock;
  PreviewThrottle throttle(std::chrono::milliseconds(250), clock.fn());
  EXPECT_FALSE(throttle.admit(7)) << "a job never started gets no preview";
  EXPECT_EQ(throttle.tracked(), 0u) << "and leaves no entry";
  throttle.start(7);
  clock.advance(250);
  ASSERT_TRUE(throttle.admit(7));
  throttle.forget(7);
  clock.advance(1000);
  EXPECT_FALSE(throttle.due(7));
  EXPECT_FALSE(throttle.admit(7)) << "a late step after the end";
  EXPECT_EQ(throttle.tracked(), 0u);
}

TEST(PreviewThrottleTest, DueTellsWithoutRecording) {
  FakeClock clock;
  PreviewThrottle throttle(std::chrono::milliseconds(250), clock.fn());
  throttle.start(7);
  clock.advance(250);
  EXPECT_TRUE(throttle.due(7));
  EXPECT_TRUE(throttle.due(7)) << "asking records nothing";
  ASSERT_TRUE(throttle.admit(7));
  EXPECT_FALSE(throttle.due(7));
  clock.advance(250);
  EXPECT_TRUE(throttle.due(7));
}

}  // namespace
}  // namespace atelier::rooms
