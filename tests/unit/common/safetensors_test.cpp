// The safetensors reader: real files of the sd-tiny fixture, files it writes itself, and every
// way a hostile or damaged file is refused (with the tensor named).
#include "common/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "tests/support/temp_dir.h"

namespace atelier::safetensors {
namespace {

namespace fs = std::filesystem;
const fs::path kTiny = "../shared/fixtures/sd-tiny";

std::string floats(std::initializer_list<float> v) {
  std::string out(v.size() * 4, '\0');
  std::memcpy(out.data(), std::data(v), out.size());
  return out;
}

// A file whose header is `header` (padded) followed by `data`.
std::string raw_file(std::string header, const std::string& data, uint64_t claimed_len = 0) {
  const uint64_t len = claimed_len ? claimed_len : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string error_of(const std::string& bytes) {
  auto f = File::from_bytes(bytes);
  EXPECT_FALSE(f.is_ok());
  return f.is_ok() ? "" : f.status().message();
}

TEST(SafetensorsTest, WritesAndReadsBackValuesShapesAndMetadata) {
  std::string halves(4, '\0');
  const uint16_t h[2] = {0x3C00, 0xC000};  // F16 1.0, -2.0
  std::memcpy(halves.data(), h, 4);
  auto bytes = serialize({{"b.weight", DType::kF32, {2, 2}, floats({1, 2, 3, 4})},
                          {"a.bias", DType::kF16, {2}, halves},
                          {"empty", DType::kF32, {0, 3}, ""}},
                         {{"format", "pt"}});
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  EXPECT_EQ((bytes->size() - 8 - 4 * 4 - 4) % 8, 0u) << "header padded to a multiple of 8";
  auto f = File::from_bytes(*bytes);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_EQ(f->tensors().size(), 3u);
  const TensorInfo* w = f->find("b.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(*f->to_float(*w), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(*f->to_float(*f->find("a.bias")), (std::vector<float>{1, -2}));
  EXPECT_EQ(f->find("empty")->numel(), 0);
  EXPECT_EQ(f->find("missing"), nullptr);
}

TEST(SafetensorsTest, HalfPrecisionConvertsExactly) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);               // largest normal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
  EXPECT_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC0A0), -5.0f);
  EXPECT_EQ(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
}

TEST(SafetensorsTest, ReadsTheTinyPipelinesWeights) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  struct Case {
    const char* path;
    size_t tensors;
    int64_t params;
  };
  for (const Case c : {Case{"unet/diffusion_pytorch_model.safetensors", 304, 1'427'012},
                       Case{"vae/diffusion_pytorch_model.safetensors", 124, 658'375},
                       Case{"text_encoder/model.safetensors", 84, 68'473}}) {
    auto f = File::open((kTiny / c.path).string());
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    EXPECT_EQ(f->tensors().size(), c.tensors) << c.path;
    int64_t params = 0;
    for (const auto& t : f->tensors()) {
      EXPECT_EQ(t.dtype, DType::kF32) << t.name;
      params += t.numel();
    }
    EXPECT_EQ(params, c.params) << c.path;
  }
  auto unet = File::open((kTiny / "unet/diffusion_pytorch_model.safetensors").string());
  const TensorInfo* conv_in = unet->find("conv_in.weight");
  ASSERT_NE(conv_in, nullptr);
  EXPECT_EQ(conv_in->shape, (std::vector<int64_t>{32, 4, 3, 3}));
  auto values = unet->to_float(*conv_in);
  ASSERT_TRUE(values.is_ok());
  EXPECT_EQ(values->size(), 32u * 4 * 3 * 3);
  for (float v : *values) ASSERT_TRUE(std::isfinite(v));
}

TEST(SafetensorsTest, ATruncatedFileIsRefusedNamingWhatIsMissing) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  testing::TempDir dir;
  std::ifstream in(kTiny / "vae/diffusion_pytorch_model.safetensors", std::ios::binary);
  std::string whole((std::istreambuf_iterator<char>(in)), {});
  const fs::path cut = dir / "cut.safetensors";
  std::ofstream(cut, std::ios::binary) << whole.substr(0, whole.size() - 1000);
  auto f = File::open(cut.string());
  ASSERT_FALSE(f.is_ok());
  EXPECT_NE(f.status().message().find("truncated"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("cut.safetensors"), std::string::npos);
  EXPECT_EQ(File::open((dir / "nope.safetensors").string()).status().code(), StatusCode::kNotFound);
}

TEST(SafetensorsTest, RefusesMalformedHeadersWithAClearReason) {
  const std::string four = floats({1});
  const auto entry = [](const std::string& body) { return R"({"t":)" + body + "}"; };
  struct Case {
    std::string bytes;
    std::string says;
  };
  const Case cases[] = {
      {"short", "too short"},
      {raw_file("{}", "", 1000), "past the end"},
      {raw_file("{}", "", 1ull << 63), "over the limit"},
      {raw_file("[1,2]", ""), "not a JSON object"},
      {raw_file("{\"t\": ", ""), "not valid JSON"},
      {raw_file(entry(R"({"dtype":"F8","shape":[1],"data_offsets":[0,4]})"), four),
       "tensor 't': unsupported dtype 'F8'"},
      {raw_file(entry(R"({"shape":[1],"data_offsets":[0,4]})"), four), "tensor 't': no dtype"},
      {raw_file(entry(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"), four),
       "non-negative"},
      {raw_file(entry(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})"), four),
       "non-negative"},
      {raw_file(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"), four), "need 8"},
      {raw_file(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,8]})"), four),
       "past the data"},
      {raw_file(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})"), four),
       "begin <= end"},
      {raw_file(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"), four), "data_offsets"},
      {raw_file(
           entry(
               R"({"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]})"),
           four),
       "too large"},
      {raw_file(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1})"), four),
       "unexpected field 'x'"},
      {raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                four),
       "overlaps"},
      {raw_file(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), four + four),
       "gap of 4 bytes"},
      {raw_file(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), four + "xy"),
       "belong to no tensor"},
      {raw_file(R"({"__metadata__":{"k":1}})", ""), "__metadata__ 'k' is not a string"},
  };
  for (const auto& c : cases) {
    const std::string msg = error_of(c.bytes);
    EXPECT_NE(msg.find(c.says), std::string::npos) << "expected '" << c.says << "' in: " << msg;
  }
}

TEST(SafetensorsTest, DeeplyNestedHeadersAreRefusedWithoutExhaustingTheStack) {
  const std::string deep = "{\"t\":" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
  EXPECT_FALSE(error_of(raw_file(deep, "")).empty());
}

TEST(SafetensorsTest, IntegersAreNotFloats) {
  auto bytes = serialize({{"ids", DType::kI64, {1}, std::string(8, '\0')}});
  ASSERT_TRUE(bytes.is_ok());
  auto f = File::from_bytes(*bytes);
  ASSERT_TRUE(f.is_ok());
  auto v = f->to_float(*f->find("ids"));
  ASSERT_FALSE(v.is_ok());
  EXPECT_NE(v.status().message().find("'ids' is I64"), std::string::npos);
}

}  // namespace
}  // namespace atelier::safetensors
