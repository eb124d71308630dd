// Family detection and layout checks on full-size shapes (the published SD 1.5, SD 2.1 and SDXL
// components built on the meta device and named as in their checkpoints): no files, no memory.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/inference/sd/checkpoint_keys.h"
#include "server/inference/sd/single_file.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"

namespace atelier::sd {
namespace {

using nlohmann::json;

// The full-size single-file layout of a family's published components, shapes only.
TensorShapes published_shapes(Family family) {
  const ModelConfigs configs = family_configs(family);
  auto weights = synthetic_components(configs, 0, torch::Device(torch::kMeta));
  EXPECT_TRUE(weights.is_ok()) << weights.status().to_string();
  auto tensors = to_single_file_layout(family, configs, *weights);
  EXPECT_TRUE(tensors.is_ok()) << tensors.status().to_string();
  TensorShapes out;
  for (const auto& [name, t] : *tensors) out[name] = t.sizes().vec();
  return out;
}

// Names of the published checkpoints (runwayml SD 1.5, Stability's SDXL base).
TEST(CheckpointKeysTest, FullSizeUnetNamesAreTheOriginalOnes) {
  const auto sd15 = unet_original_names(*parse_unet_config(sd15_configs().unet));
  EXPECT_EQ(sd15.size(), 686u);
  EXPECT_EQ(sd15.at("up_blocks.3.resnets.2.conv_shortcut.weight"),
            "output_blocks.11.0.skip_connection.weight");
  EXPECT_EQ(sd15.at("up_blocks.0.upsamplers.0.conv.weight"), "output_blocks.2.1.conv.weight");
  EXPECT_EQ(sd15.at("up_blocks.2.upsamplers.0.conv.bias"), "output_blocks.8.2.conv.bias");
  EXPECT_EQ(sd15.at("down_blocks.2.downsamplers.0.conv.weight"), "input_blocks.9.0.op.weight");
  EXPECT_EQ(sd15.at("down_blocks.3.resnets.1.time_emb_proj.weight"),
            "input_blocks.11.0.emb_layers.1.weight");
  EXPECT_EQ(sd15.at("mid_block.resnets.1.norm2.bias"), "middle_block.2.out_layers.0.bias");
  EXPECT_EQ(sd15.at("mid_block.attentions.0.proj_in.weight"), "middle_block.1.proj_in.weight");
  const auto xl = unet_original_names(*parse_unet_config(sdxl_configs().unet));
  EXPECT_EQ(xl.size(), 1680u);
  EXPECT_EQ(xl.at("add_embedding.linear_2.bias"), "label_emb.0.2.bias");
  EXPECT_EQ(xl.at("down_blocks.2.attentions.1.transformer_blocks.9.ff.net.2.weight"),
            "input_blocks.8.1.transformer_blocks.9.ff.net.2.weight");
  EXPECT_EQ(xl.at("up_blocks.0.attentions.2.transformer_blocks.9.attn2.to_k.weight"),
            "output_blocks.2.1.transformer_blocks.9.attn2.to_k.weight");
  EXPECT_EQ(xl.at("up_blocks.1.upsamplers.0.conv.weight"), "output_blocks.5.2.conv.weight");
  EXPECT_EQ(xl.at("up_blocks.2.resnets.2.conv_shortcut.weight"),
            "output_blocks.8.0.skip_connection.weight");
  EXPECT_EQ(xl.at("conv_norm_out.weight"), "out.0.weight");
}

TEST(SingleFileDetectionTest, PublishedShapesAreDetectedAndComplete) {
  for (Family family : {Family::kSd1, Family::kSd2, Family::kSdxl}) {
    TensorShapes shapes = published_shapes(family);
    auto detected = detect_family(shapes);
    ASSERT_TRUE(detected.is_ok()) << family_name(family) << ": " << detected.status().to_string();
    EXPECT_EQ(*detected, family);
    // Unused tensors real files carry.
    shapes["model_ema.decay"] = {};
    shapes["alphas_cumprod"] = {1000};
    if (family == Family::kSd2) {
      for (const auto& [name, shape] : TensorShapes(shapes)) {
        const std::string last = "cond_stage_model.model.transformer.resblocks.22.";
        if (name.rfind(last, 0) == 0) {
          shapes["cond_stage_model.model.transformer.resblocks.23." + name.substr(last.size())] =
              shape;
        }
      }
      shapes["cond_stage_model.model.text_projection"] = {1024, 1024};
    }
    Status st = check_layout(shapes, family, family_configs(family));
    EXPECT_TRUE(st.is_ok()) << family_name(family) << ": " << st.to_string();
  }
  const TensorShapes xl = published_shapes(Family::kSdxl);
  EXPECT_EQ(xl.at("model.diffusion_model.label_emb.0.0.weight"),
            (std::vector<int64_t>{1280, 2816}));
  EXPECT_EQ(xl.at("conditioner.embedders.1.model.text_projection"),
            (std::vector<int64_t>{1280, 1280}));
  EXPECT_EQ(xl.at("conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight"),
            (std::vector<int64_t>{3840, 1280}));
  EXPECT_EQ(xl.at("first_stage_model.decoder.mid.attn_1.q.weight"),
            (std::vector<int64_t>{512, 512, 1, 1}));
  const TensorShapes sd2 = published_shapes(Family::kSd2);
  EXPECT_EQ(sd2.at("model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"),
            (std::vector<int64_t>{320, 1024}));
}

// SD 1.x files saved with transformers 3.x name CLIP's modules without "text_model.".
TEST(SingleFileDetectionTest, OldTransformersClipNamesAreAccepted) {
  TensorShapes shapes;
  const std::string p = "cond_stage_model.transformer.";
  for (const auto& [name, shape] : published_shapes(Family::kSd1)) {
    const bool clip = name.rfind(p + "text_model.", 0) == 0;
    shapes[clip ? p + name.substr(p.size() + 11) : name] = shape;
  }
  ASSERT_TRUE(shapes.count(p + "encoder.layers.11.mlp.fc2.weight"));
  shapes[p + "embeddings.position_ids"] = {1, 77};
  EXPECT_EQ(*detect_family(shapes), Family::kSd1);
  Status st = check_layout(shapes, Family::kSd1, family_configs(Family::kSd1));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

TEST(SingleFileDetectionTest, LayoutProblemsAreNamed) {
  TensorShapes shapes = published_shapes(Family::kSd1);
  shapes.erase("model.diffusion_model.out.2.bias");
  shapes["model.diffusion_model.input_blocks.1.1.proj_in.weight"] = {320, 321, 1, 1};
  shapes["first_stage_model.encoder.extra.weight"] = {3};
  Status st = check_layout(shapes, Family::kSd1, family_configs(Family::kSd1));
  ASSERT_FALSE(st.is_ok());
  for (const char* part : {"missing tensor 'model.diffusion_model.out.2.bias'",
                           "'model.diffusion_model.input_blocks.1.1.proj_in.weight' has shape "
                           "[320,321,1,1], expected [320,320,1,1]",
                           "unexpected tensor 'first_stage_model.encoder.extra.weight'"}) {
    EXPECT_NE(st.message().find(part), std::string::npos) << part << " in " << st.message();
  }
}

TEST(SingleFileDetectionTest, DefaultsFollowInChannelsAndProjectionKind) {
  TensorShapes shapes = published_shapes(Family::kSd1);
  shapes["model.diffusion_model.input_blocks.0.0.weight"] = {320, 9, 3, 3};  // inpainting
  EXPECT_FALSE(check_layout(shapes, Family::kSd1, family_configs(Family::kSd1)).is_ok());
  const ModelConfigs adapted = default_configs(Family::kSd1, shapes);
  EXPECT_EQ(json::parse(adapted.unet)["in_channels"], 9);
  EXPECT_TRUE(check_layout(shapes, Family::kSd1, adapted).is_ok());
  EXPECT_EQ(default_configs(Family::kSd1, published_shapes(Family::kSd1)).unet,
            sd15_configs().unet);
  // SD 2.0-style 1x1-convolution projections under the SD 2.1 defaults.
  TensorShapes sd2 = published_shapes(Family::kSd2);
  for (auto& [name, shape] : sd2) {
    if (name.ends_with(".proj_in.weight") || name.ends_with(".proj_out.weight"))
      shape.push_back(1), shape.push_back(1);
  }
  EXPECT_EQ(json::parse(default_configs(Family::kSd2, sd2).unet)["use_linear_projection"], false);
}

TEST(SingleFileDetectionTest, OtherArchitecturesAreNamed) {
  auto message = [](const TensorShapes& t) {
    auto r = detect_family(t);
    return r.is_ok() ? std::string("detected ") + std::string(family_name(*r))
                     : r.status().message();
  };
  EXPECT_NE(message({{"model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias",
                      {9216}},
                     {"first_stage_model.decoder.conv_in.weight", {512, 16, 3, 3}}})
                .find("SD3"),
            std::string::npos);
  EXPECT_NE(message({{"double_blocks.0.img_attn.norm.key_norm.scale", {128}},
                     {"single_blocks.0.linear1.weight", {21504, 3072}}})
                .find("Flux"),
            std::string::npos);
  EXPECT_NE(message({{"model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale", {128}}})
                .find("Flux"),
            std::string::npos);
  EXPECT_NE(message({{"conditioner.embedders.0.model.ln_final.weight", {1280}},
                     {"model.diffusion_model.label_emb.0.0.weight", {1536, 2560}}})
                .find("SDXL refiner"),
            std::string::npos);
  EXPECT_NE(message({{"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", {4, 320}}})
                .find("LoRA"),
            std::string::npos);
  EXPECT_EQ(message({{"foo.weight", {1}}, {"bar", {2}}}),
            "unrecognised checkpoint: bar, foo.weight");
  EXPECT_EQ(message({}), "unrecognised checkpoint: no tensors");
  // An SD 1.x layout whose text encoder is not as wide as the UNet's cross-attention.
  TensorShapes sd1 = published_shapes(Family::kSd1);
  sd1["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = {1024};
  const std::string mismatch = message(sd1);
  EXPECT_NE(mismatch.find("768"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("1024"), std::string::npos) << mismatch;
  // Without its VAE.
  TensorShapes no_vae = published_shapes(Family::kSdxl);
  std::erase_if(no_vae,
                [](const auto& kv) { return kv.first.rfind("first_stage_model.", 0) == 0; });
  EXPECT_NE(message(no_vae).find("without a VAE"), std::string::npos) << message(no_vae);
}

// The published counts (diffusers' and transformers' num_parameters) of SDXL base 1.0.
TEST(SdxlConfigsTest, PublishedParameterCounts) {
  auto xl = count_parameters(sdxl_configs());
  ASSERT_TRUE(xl.is_ok()) << xl.status().to_string();
  EXPECT_EQ(xl->text_encoder, 123'060'480);
  EXPECT_EQ(xl->text_encoder_2, 694'659'840);
  EXPECT_EQ(xl->vae, 83'653'863);
  EXPECT_EQ(xl->unet, 2'567'463'684);
  const json index = json::parse(sdxl_configs().model_index);
  EXPECT_EQ(index["force_zeros_for_empty_prompt"], true);
  EXPECT_EQ(json::parse(sdxl_configs().tokenizer_2)["pad_token"], "!");
  auto vae = parse_vae_config(sdxl_configs().vae);
  ASSERT_TRUE(vae.is_ok());
  EXPECT_DOUBLE_EQ(vae->scaling_factor, 0.13025);
  EXPECT_TRUE(vae->force_upcast);
  EXPECT_EQ(count_parameters(sd15_configs())->text_encoder_2, 0);
}

}  // namespace
}  // namespace atelier::sd
