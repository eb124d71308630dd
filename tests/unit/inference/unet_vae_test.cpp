// The UNet and the VAE against diffusers on the sd-tiny fixture (float32, CPU, 1e-4): every UNet
// case of expected/unet.safetensors (batch 1 and 2, integer, fractional and per-sample
// timesteps) with its listed intermediates, and the VAE's encoder and decoder.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "common/safetensors.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::kTiny;
using fixture::max_diff;

TEST(UNetTest, MatchesDiffusersForEveryCaseAndIntermediate) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  torch::NoGradGuard no_grad;
  auto unet = UNet::load((kTiny / "unet").string());
  ASSERT_TRUE(unet.is_ok()) << unet.status().message();
  auto ref = safetensors::File::open((kTiny / "expected/unet.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  const std::pair<const char*, const char*> cases[] = {{"b1_t999", "b1"},
                                                       {"b1_t500", "b1"},
                                                       {"b1_t757p5", "b1"},
                                                       {"b2_t500", "b2"},
                                                       {"b2_tvec_999_1", "b2"}};
  for (const auto& [name, batch] : cases) {
    std::map<std::string, torch::Tensor> trace;
    const std::string c = name;
    torch::Tensor out = unet->forward(
        fixture::fixture_tensor(*ref, std::string("sample_") + batch),
        fixture::fixture_tensor(*ref, "timestep_" + c),
        fixture::fixture_tensor(*ref, std::string("encoder_hidden_states_") + batch), &trace);
    const torch::Tensor want = fixture::fixture_tensor(*ref, "out_" + c);
    EXPECT_LT(max_diff(out, want), 1e-4) << c;
    EXPECT_GT(want.abs().max().item<double>(), 0.1) << c;
    if (c == "b1_t999") {
      for (const char* step :
           {"time_proj", "time_embedding", "conv_in", "down_blocks_0", "down_blocks_1", "mid_block",
            "up_blocks_0", "up_blocks_1", "conv_norm_out"}) {
        EXPECT_LT(max_diff(trace.at(step), fixture::fixture_tensor(
                                               *ref, "intermediate_b1_t999_" + std::string(step))),
                  1e-4)
            << step;
      }
    }
  }
}

TEST(VaeTest, EncoderAndDecoderMatchDiffusers) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  torch::NoGradGuard no_grad;
  auto vae = Vae::load((kTiny / "vae").string());
  ASSERT_TRUE(vae.is_ok()) << vae.status().message();
  EXPECT_EQ(vae->config().downscale_factor(), 2);
  EXPECT_FLOAT_EQ(vae->config().scaling_factor, 0.18215);
  auto ref = safetensors::File::open((kTiny / "expected/vae.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  std::map<std::string, torch::Tensor> trace;
  torch::Tensor image = vae->decode(fixture::fixture_tensor(*ref, "decoder_input"), &trace);
  EXPECT_LT(max_diff(trace.at("post_quant_conv"),
                     fixture::fixture_tensor(*ref, "decoder_intermediate_post_quant_conv")),
            1e-4);
  EXPECT_LT(max_diff(trace.at("mid_block"),
                     fixture::fixture_tensor(*ref, "decoder_intermediate_mid_block")),
            1e-4);
  EXPECT_LT(max_diff(image, fixture::fixture_tensor(*ref, "decoder_output")), 1e-4);
  LatentDistribution d = vae->encode(fixture::fixture_tensor(*ref, "encoder_input"), &trace);
  EXPECT_LT(max_diff(trace.at("moments"), fixture::fixture_tensor(*ref, "encoder_moments")), 1e-4);
  EXPECT_LT(max_diff(d.mean, fixture::fixture_tensor(*ref, "encoder_mean")), 1e-4);
  EXPECT_LT(max_diff(d.logvar, fixture::fixture_tensor(*ref, "encoder_logvar")), 1e-4);
  EXPECT_LT(max_diff(d.std, fixture::fixture_tensor(*ref, "encoder_std")), 1e-4);
}

TEST(UNetTest, ConfigsItCannotBuildAreRefusedByName) {
  EXPECT_NE(
      parse_unet_config(R"({"block_out_channels":[32,64],"down_block_types":["DownBlock2D"]})")
          .status()
          .message()
          .find("down_block_types"),
      std::string::npos);
  EXPECT_NE(parse_unet_config(R"({"block_out_channels":[32],"down_block_types":["DownBlock2D"],)"
                              R"("up_block_types":["UpBlock2D"],"attention_head_dim":5})")
                .status()
                .message()
                .find("multiple of its heads"),
            std::string::npos);
  // SDXL's text_time conditioning is built; other added conditionings (Kandinsky's "image",
  // "text_image", ...) are refused by name, and text_time needs its widths.
  EXPECT_NE(parse_unet_config(R"({"addition_embed_type":"image"})")
                .status()
                .message()
                .find("addition_embed_type"),
            std::string::npos);
  EXPECT_NE(parse_unet_config(R"({"addition_embed_type":"text_time"})")
                .status()
                .message()
                .find("addition_time_embed_dim"),
            std::string::npos);
  auto xl = parse_unet_config(
      R"({"block_out_channels":[320,640,1280],"down_block_types":["DownBlock2D",)"
      R"("CrossAttnDownBlock2D","CrossAttnDownBlock2D"],"up_block_types":["CrossAttnUpBlock2D",)"
      R"("CrossAttnUpBlock2D","UpBlock2D"],"attention_head_dim":[5,10,20],)"
      R"("transformer_layers_per_block":[1,2,10],"addition_embed_type":"text_time",)"
      R"("addition_time_embed_dim":256,"projection_class_embeddings_input_dim":2816})");
  ASSERT_TRUE(xl.is_ok()) << xl.status().message();
  EXPECT_TRUE(xl->text_time);
  EXPECT_EQ(xl->transformer_layers, (std::vector<int64_t>{1, 2, 10}));
  EXPECT_EQ(xl->projection_class_embeddings_input_dim, 2816);
  EXPECT_NE(parse_unet_config(R"({"block_out_channels":[32],"down_block_types":["DownBlock2D"],)"
                              R"("up_block_types":["UpBlock2D"],"attention_head_dim":1,)"
                              R"("transformer_layers_per_block":[1,2]})")
                .status()
                .message()
                .find("transformer_layers_per_block"),
            std::string::npos);
  auto sd2 = parse_unet_config(R"({"attention_head_dim":[5,10,20,20],"use_linear_projection":true,)"
                               R"("cross_attention_dim":1024})");
  ASSERT_TRUE(sd2.is_ok()) << sd2.status().message();
  EXPECT_EQ(sd2->heads, (std::vector<int64_t>{5, 10, 20, 20}));
  EXPECT_FALSE(parse_vae_config(R"({"block_out_channels":[30]})").is_ok());
}

}  // namespace
}  // namespace atelier::sd
