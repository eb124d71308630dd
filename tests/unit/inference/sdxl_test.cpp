// SDXL against diffusers on the sdxl-tiny fixture (float32, CPU): both tokenizers (ids exact,
// the second padding with `!` and splitting it out of the text), both text encoders (every
// hidden state, the projected pooled output), encode_prompt (negative given, none given with
// force_zeros_for_empty_prompt, empty), the UNet with its added size/text conditioning and
// intermediates, the VAE, and every pipeline run (txt2img with Euler and DDIM at guidance 5 and
// 1, with explicit, default and non-square size conditioning; img2img) within 1e-3.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/safetensors.h"
#include "server/inference/sd/clip_text_encoder.h"
#include "server/inference/sd/clip_tokenizer.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::fixture_tensor;
using fixture::max_diff;

const fs::path kXl = "../shared/fixtures/sdxl-tiny";

#define SKIP_WITHOUT_FIXTURE() \
  if (!fs::exists(kXl)) GTEST_SKIP() << "../shared/fixtures/sdxl-tiny is absent"

safetensors::File expected(const std::string& name) {
  auto f = safetensors::File::open((kXl / "expected" / name).string());
  EXPECT_TRUE(f.is_ok()) << name;
  return std::move(*f);
}

TEST(SdxlTest, BothTokenizersGiveDiffusersIds) {
  SKIP_WITHOUT_FIXTURE();
  auto t1 = ClipTokenizer::load((kXl / "tokenizer").string());
  auto t2 = ClipTokenizer::load((kXl / "tokenizer_2").string());
  ASSERT_TRUE(t1.is_ok() && t2.is_ok());
  EXPECT_EQ(t2->pad_id(), 0);
  std::ifstream in(kXl / "expected/tokenizer_cases.json");
  const auto cases = nlohmann::json::parse(in)["cases"];
  ASSERT_EQ(cases.size(), 6u);
  int disagreeing = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    EXPECT_EQ(t1->encode_padded(text), c["tokenizer_input_ids"].get<std::vector<int64_t>>())
        << text;
    EXPECT_EQ(t2->encode_padded(text), c["tokenizer_2_input_ids"].get<std::vector<int64_t>>())
        << text;
    disagreeing += c["tokenizer_input_ids"] != c["tokenizer_2_input_ids"];
  }
  EXPECT_GE(disagreeing, 1) << "a case with '!' tells the two tokenizers apart";
}

TEST(SdxlTest, TextEncodersMatchEveryHiddenStateAndThePooledProjection) {
  SKIP_WITHOUT_FIXTURE();
  torch::NoGradGuard no_grad;
  auto te1 = ClipTextEncoder::load((kXl / "text_encoder").string());
  auto te2 = ClipTextEncoder::load((kXl / "text_encoder_2").string());
  ASSERT_TRUE(te1.is_ok()) << te1.status().message();
  ASSERT_TRUE(te2.is_ok()) << te2.status().message();
  EXPECT_FALSE(te1->config().with_projection);
  EXPECT_TRUE(te2->config().with_projection);
  EXPECT_EQ(te2->config().projection_dim, 40);
  auto ref = expected("text_encoders.safetensors");
  for (int row = 0; row < 3; ++row) {  // one prompt at a time, as the pipeline calls them
    for (const auto& [prefix, enc, layers] : {std::tuple{"te1", &*te1, 6}, {"te2", &*te2, 5}}) {
      const std::string p = prefix;
      ClipTextOutput out = enc->forward(fixture_tensor(ref, p + "_input_ids")[row].unsqueeze(0));
      ASSERT_EQ(static_cast<int>(out.hidden_states.size()), layers);
      for (int i = 0; i < layers; ++i) {
        EXPECT_LT(max_diff(out.hidden_states[static_cast<size_t>(i)][0],
                           fixture_tensor(ref, p + "_hidden_states_" + std::to_string(i))[row]),
                  1e-4)
            << p << " layer " << i << " row " << row;
      }
      EXPECT_LT(
          max_diff(out.last_hidden_state[0], fixture_tensor(ref, p + "_last_hidden_state")[row]),
          1e-4);
      if (p == "te2") {
        EXPECT_LT(max_diff(out.text_embeds[0], fixture_tensor(ref, "te2_text_embeds")[row]), 1e-4);
      } else {
        EXPECT_FALSE(out.text_embeds.defined());
      }
    }
  }
}

class SdxlPipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kXl)) return;
    auto p = StableDiffusion::load(kXl.string());
    ASSERT_TRUE(p.is_ok()) << p.status().message();
    pipe_ = new StableDiffusion(std::move(*p));
  }
  static void TearDownTestSuite() {
    delete pipe_;
    pipe_ = nullptr;
  }
  void SetUp() override { SKIP_WITHOUT_FIXTURE(); }

  static void check_run(const std::string& name, const GenerationTrace& trace,
                        const torch::Tensor& image, const safetensors::File& ref, size_t steps) {
    EXPECT_LT(max_diff(trace.prompt_embeds, fixture_tensor(ref, "prompt_embeds")), 1e-4) << name;
    EXPECT_LT(max_diff(trace.add_text_embeds, fixture_tensor(ref, "add_text_embeds")), 1e-4)
        << name;
    EXPECT_EQ(max_diff(trace.add_time_ids, fixture_tensor(ref, "add_time_ids")), 0) << name;
    const torch::Tensor want_t = fixture_tensor(ref, "timesteps");
    ASSERT_EQ(trace.timesteps.size(), steps) << name;
    for (size_t i = 0; i < steps; ++i) {
      const auto at = static_cast<int64_t>(i);
      EXPECT_NEAR(trace.timesteps[i], want_t[at].item<double>(), 1e-4) << name;
      EXPECT_LT(
          max_diff(trace.unet_inputs[i], fixture_tensor(ref, "unet_input_" + std::to_string(i))),
          1e-3)
          << name << " step " << i;
      EXPECT_LT(
          max_diff(trace.unet_outputs[i], fixture_tensor(ref, "unet_output_" + std::to_string(i))),
          1e-3)
          << name << " step " << i;
      EXPECT_LT(max_diff(trace.latents[i], fixture_tensor(ref, "latents_" + std::to_string(i + 1))),
                1e-3)
          << name << " step " << i;
    }
    EXPECT_LT(max_diff(trace.decoded, fixture_tensor(ref, "decoded")), 1e-3) << name;
    EXPECT_LT(max_diff(image, fixture_tensor(ref, "image")), 1e-3) << name;
  }

  static StableDiffusion* pipe_;
};
StableDiffusion* SdxlPipelineTest::pipe_ = nullptr;

TEST_F(SdxlPipelineTest, EncodePromptMatchesForNegativeNoneAndEmpty) {
  auto ref = expected("encode_prompt.safetensors");
  const std::string prompt = "a red fox in the snow";
  const std::pair<const char*, std::optional<std::string>> cases[] = {
      {"neg", "blurry, low quality"}, {"noneg", std::nullopt}, {"emptyneg", ""}};
  EXPECT_TRUE(pipe_->is_sdxl());
  for (const auto& [name, negative] : cases) {
    const std::string c = name;
    PromptEmbeddings e = pipe_->encode_prompt(prompt, negative, true);
    ASSERT_EQ(e.embeds.size(0), 2);
    EXPECT_LT(max_diff(e.embeds[0], fixture_tensor(ref, c + ".negative_prompt_embeds")[0]), 1e-4)
        << c;
    EXPECT_LT(max_diff(e.embeds[1], fixture_tensor(ref, c + ".prompt_embeds")[0]), 1e-4) << c;
    EXPECT_LT(max_diff(e.pooled[0], fixture_tensor(ref, c + ".negative_pooled_prompt_embeds")[0]),
              1e-4)
        << c;
    EXPECT_LT(max_diff(e.pooled[1], fixture_tensor(ref, c + ".pooled_prompt_embeds")[0]), 1e-4)
        << c;
  }
  // Without guidance only the prompt is encoded.
  EXPECT_EQ(pipe_->encode_prompt(prompt, "x", false).embeds.size(0), 1);
}

TEST_F(SdxlPipelineTest, UNetWithAddedConditioningMatchesEveryCaseAndIntermediate) {
  torch::NoGradGuard no_grad;
  auto unet = UNet::load((kXl / "unet").string());
  ASSERT_TRUE(unet.is_ok()) << unet.status().message();
  EXPECT_TRUE(unet->config().text_time);
  EXPECT_EQ(unet->config().transformer_layers, (std::vector<int64_t>{1, 1, 2}));
  auto ref = expected("unet.safetensors");
  for (const std::string c : {"b2_t801", "b1_t500", "b1_t757p5"}) {
    std::map<std::string, torch::Tensor> trace;
    AddedConditioning added{fixture_tensor(ref, c + ".text_embeds"),
                            fixture_tensor(ref, c + ".time_ids")};
    torch::Tensor out =
        unet->forward(fixture_tensor(ref, c + ".sample"), fixture_tensor(ref, c + ".timestep"),
                      fixture_tensor(ref, c + ".encoder_hidden_states"), &trace, {}, &added);
    EXPECT_LT(max_diff(out, fixture_tensor(ref, c + ".out")), 1e-4) << c;
    for (const char* step : {"time_proj", "time_embedding", "add_time_proj", "add_embedding_input",
                             "add_embedding", "conv_in", "mid_block", "conv_norm_out"}) {
      EXPECT_LT(max_diff(trace.at(step), fixture_tensor(ref, c + "." + step)), 1e-4)
          << c << " " << step;
    }
    for (int i = 0; i < 3; ++i) {
      const std::string n = std::to_string(i);
      EXPECT_LT(
          max_diff(trace.at("down_blocks_" + n), fixture_tensor(ref, c + ".down_blocks." + n)),
          1e-4)
          << c << " down " << i;
      EXPECT_LT(max_diff(trace.at("up_blocks_" + n), fixture_tensor(ref, c + ".up_blocks." + n)),
                1e-4)
          << c << " up " << i;
    }
  }
  // Leaving out the added conditioning is a programming error the UNet refuses.
  EXPECT_ANY_THROW(unet->forward(fixture_tensor(ref, "b1_t500.sample"),
                                 fixture_tensor(ref, "b1_t500.timestep"),
                                 fixture_tensor(ref, "b1_t500.encoder_hidden_states")));
}

TEST_F(SdxlPipelineTest, VaeDecodesAndEncodesWithItsConfig) {
  torch::NoGradGuard no_grad;
  const Vae& vae = pipe_->vae();
  EXPECT_FLOAT_EQ(vae.config().scaling_factor, 0.13025);
  EXPECT_TRUE(vae.config().force_upcast);
  EXPECT_EQ(vae.config().downscale_factor(), 8);
  auto ref = expected("vae.safetensors");
  EXPECT_LT(max_diff(vae.decode(fixture_tensor(ref, "decoder_input")),
                     fixture_tensor(ref, "decoder_output")),
            1e-4);
  LatentDistribution d = vae.encode(fixture_tensor(ref, "encoder_input"));
  EXPECT_LT(max_diff(d.mean, fixture_tensor(ref, "encoder_mean")), 1e-4);
  EXPECT_LT(max_diff(d.std, fixture_tensor(ref, "encoder_std")), 1e-4);
}

TEST_F(SdxlPipelineTest, Txt2ImgRunsMatchDiffusers) {
  struct Run {
    const char* name;
    SamplerKind sampler;
    double guidance;
    const char* negative;
    int orig_w, orig_h, crop_top, crop_left, target_w, target_h;
  };
  const Run runs[] = {
      {"txt2img_euler_g5_neg", SamplerKind::kEuler, 5, "blurry, low quality", 1024, 1024, 0, 0,
       1024, 1024},
      {"txt2img_euler_g5_noneg", SamplerKind::kEuler, 5, "", 384, 256, 16, 32, 192, 128},
      {"txt2img_ddim_g1", SamplerKind::kDdim, 1, "blurry, low quality", 1024, 1024, 0, 0, 1024,
       1024},
      {"txt2img_euler_g5_defaultsize", SamplerKind::kEuler, 5, "blurry, low quality", 0, 0, 0, 0, 0,
       0},
  };
  for (const Run& run : runs) {
    auto ref = expected(std::string(run.name) + ".safetensors");
    GenerationRequest r;
    r.prompt = "a red fox in the snow";
    r.negative_prompt = run.negative;
    r.width = 192;
    r.height = 128;
    r.steps = 5;
    r.guidance = run.guidance;
    r.sampler = run.sampler;
    r.original_width = run.orig_w;
    r.original_height = run.orig_h;
    r.crop_top = run.crop_top;
    r.crop_left = run.crop_left;
    r.target_width = run.target_w;
    r.target_height = run.target_h;
    r.init_latents = fixture_tensor(ref, "init_latents");
    GenerationTrace trace;
    auto image = pipe_->generate(r, {}, &trace);
    ASSERT_TRUE(image.is_ok()) << image.status().message();
    check_run(run.name, trace, *image, ref, 5);
  }
}

TEST_F(SdxlPipelineTest, Img2ImgMatchesDiffusers) {
  auto ref = expected("img2img_euler_g5.safetensors");
  GenerationRequest r;
  r.prompt = "a red fox in the snow";
  r.negative_prompt = "blurry, low quality";
  r.width = 192;
  r.height = 128;
  r.steps = 5;
  r.guidance = 5;
  r.sampler = SamplerKind::kEuler;
  r.init_image = fixture_tensor(ref, "image_preprocessed");
  r.strength = 0.6;
  r.encoder_noise = fixture_tensor(ref, "encoder_sample_noise");
  r.add_noise = fixture_tensor(ref, "add_noise_noise");
  GenerationTrace trace;
  auto image = pipe_->generate(r, {}, &trace);
  ASSERT_TRUE(image.is_ok()) << image.status().message();
  EXPECT_LT(max_diff(trace.init_latents, fixture_tensor(ref, "init_latents_noisy")), 1e-4);
  check_run("img2img_euler_g5", trace, *image, ref, 3);
}

}  // namespace
}  // namespace atelier::sd
