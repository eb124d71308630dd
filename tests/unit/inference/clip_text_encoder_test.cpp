// The CLIP text encoder against transformers' CLIPTextModel on the sd-tiny fixture: every hidden
// state, the last one and the pooled output within the fixture's 1e-4 (float32, CPU).
#include "server/inference/sd/clip_text_encoder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/safetensors.h"
#include "server/inference/sd/weights.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::kTiny;
using fixture::max_diff;

TEST(ClipTextEncoderTest, MatchesTransformersOnTheTinyFixture) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  torch::NoGradGuard no_grad;
  auto enc = ClipTextEncoder::load((kTiny / "text_encoder").string());
  ASSERT_TRUE(enc.is_ok()) << enc.status().message();
  EXPECT_EQ(enc->config().num_hidden_layers, 5);
  auto ref = safetensors::File::open((kTiny / "expected/text_encoder.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  const torch::Tensor ids = fixture::fixture_tensor(*ref, "input_ids");
  ASSERT_EQ(ids.sizes(), (std::vector<int64_t>{2, 77}));
  const ClipTextOutput out = enc->forward(ids);
  ASSERT_EQ(out.hidden_states.size(), 6u);
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    EXPECT_LT(max_diff(out.hidden_states[i],
                       fixture::fixture_tensor(*ref, "hidden_states_" + std::to_string(i))),
              1e-4)
        << "hidden state " << i;
  }
  const torch::Tensor last = fixture::fixture_tensor(*ref, "last_hidden_state");
  EXPECT_LT(max_diff(out.last_hidden_state, last), 1e-4);
  EXPECT_GT(last.abs().max().item<double>(), 0.1) << "the reference is not trivially small";
  EXPECT_LT(max_diff(out.pooler_output, fixture::fixture_tensor(*ref, "pooler_output")), 1e-4);
}

TEST(ClipTextEncoderTest, NamesMissingAndUnexpectedWeights) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  testing::TempDir dir;
  fs::copy_file(kTiny / "text_encoder/config.json", dir / "config.json");
  auto original = safetensors::File::open((kTiny / "text_encoder/model.safetensors").string());
  ASSERT_TRUE(original.is_ok());
  std::vector<safetensors::TensorData> tensors;
  for (const auto& t : original->tensors()) {
    if (t.name == "text_model.final_layer_norm.bias") continue;  // drop one
    auto bytes = original->bytes(t);
    tensors.push_back({t.name, t.dtype, t.shape, std::string(bytes.begin(), bytes.end())});
  }
  tensors.push_back(
      {"text_model.extra.weight", safetensors::DType::kF32, {1}, std::string(4, '\0')});
  std::ofstream(dir / "model.safetensors", std::ios::binary) << *safetensors::serialize(tensors);
  auto enc = ClipTextEncoder::load(dir.path().string());
  ASSERT_FALSE(enc.is_ok());
  const std::string msg = enc.status().message();
  EXPECT_NE(msg.find("missing tensor 'text_model.final_layer_norm.bias'"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("unexpected tensor 'text_model.extra.weight'"), std::string::npos) << msg;
  EXPECT_EQ(ClipTextEncoder::load((dir / "nowhere").string()).status().code(),
            StatusCode::kNotFound);
}

TEST(ClipTextEncoderTest, RefusesConfigsItCannotBuild) {
  EXPECT_FALSE(parse_clip_text_config(R"({"hidden_size":30,"num_attention_heads":4})").is_ok());
  EXPECT_FALSE(parse_clip_text_config(R"({"hidden_act":"relu"})").is_ok());
  EXPECT_FALSE(parse_clip_text_config(R"({"num_hidden_layers":-1})").is_ok());
  auto sd2 = parse_clip_text_config(
      R"({"hidden_act":"gelu","hidden_size":1024,"num_attention_heads":16})");
  ASSERT_TRUE(sd2.is_ok());
  EXPECT_FALSE(sd2->quick_gelu);
}

}  // namespace
}  // namespace atelier::sd
