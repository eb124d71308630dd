#include "server/inference/sd/synthetic_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server/inference/sd/model_files.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/sd_generator.h"
#include "server/inference/sd/unet.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::kTiny;

// The counts printed for the published checkpoints (diffusers' and transformers' num_parameters):
// any layer built with a wrong shape, a missing bias or an extra block changes them.
TEST(SyntheticModelTest, PublishedConfigsHaveThePublishedParameterCounts) {
  auto sd15 = count_parameters(sd15_configs());
  ASSERT_TRUE(sd15.is_ok()) << sd15.status().to_string();
  EXPECT_EQ(sd15->text_encoder, 123'060'480);  // CLIP ViT-L/14 text model
  EXPECT_EQ(sd15->unet, 859'520'964);
  EXPECT_EQ(sd15->vae, 83'653'863);
  auto sd21 = count_parameters(sd21_configs());
  ASSERT_TRUE(sd21.is_ok()) << sd21.status().to_string();
  EXPECT_EQ(sd21->text_encoder, 340'387'840);  // OpenCLIP ViT-H text tower, 23 layers
  EXPECT_EQ(sd21->unet, 865'910'724);
  EXPECT_EQ(sd21->vae, 83'653'863);
}

class SyntheticFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTiny)) GTEST_SKIP() << "skipped: " << kTiny << " is absent";
    dir_ = fs::temp_directory_path() / ("atelier_synth_" + std::to_string(::getpid()));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The tiny fixture's configs turned into an SD 2.x-style model: per-block head counts, linear
  // projections in the transformers, a gelu text encoder, "!" padding, v-prediction with
  // trailing timesteps.
  static ModelConfigs sd2_style(const std::string& prediction, int64_t time_cond_proj_dim = 0) {
    auto read = [](const std::string& f) { return *read_model_file((kTiny / f).string()); };
    nlohmann::json unet = nlohmann::json::parse(read("unet/config.json"));
    unet["attention_head_dim"] = {2, 4};
    unet["use_linear_projection"] = true;
    if (time_cond_proj_dim > 0) unet["time_cond_proj_dim"] = time_cond_proj_dim;
    nlohmann::json text = nlohmann::json::parse(read("text_encoder/config.json"));
    text["hidden_act"] = "gelu";
    nlohmann::json sched = nlohmann::json::parse(read("scheduler/scheduler_config.json"));
    sched["prediction_type"] = prediction;
    sched["timestep_spacing"] = "trailing";
    nlohmann::json tok = nlohmann::json::parse(read("tokenizer/tokenizer_config.json"));
    tok["pad_token"] = "!";
    return {unet.dump(), read("vae/config.json"), text.dump(), sched.dump(), tok.dump()};
  }

  // Writes `configs` with float32 weights drawn from `seed` under `where`, and loads it back.
  static Result<StableDiffusion> write_and_load(const fs::path& where, const ModelConfigs& configs,
                                                uint64_t seed) {
    Status st = write_synthetic_model(where.string(), configs, (kTiny / "tokenizer").string(), seed,
                                      safetensors::DType::kF32);
    if (!st.is_ok()) return st;
    return StableDiffusion::load(where.string());
  }
  // A 64x64 request for `sampler`.
  static GenerationRequest request(SamplerKind sampler, int steps, uint64_t seed) {
    GenerationRequest r;
    r.prompt = "a red fox in the snow";
    r.width = r.height = 64;
    r.steps = steps;
    r.sampler = sampler;
    r.seed = seed;
    return r;
  }

  fs::path dir_;
};

TEST_F(SyntheticFolderTest, AnSd2StyleFolderLoadsThroughTheStandardPathAndGenerates) {
  auto pipe = write_and_load(dir_, sd2_style("v_prediction"), 7);
  ASSERT_TRUE(pipe.is_ok()) << pipe.status().to_string();
  EXPECT_EQ(pipe->schedule().prediction, Prediction::kVPrediction);
  EXPECT_EQ(pipe->schedule().spacing, Spacing::kTrailing);

  GenerationRequest r = request(SamplerKind::kDdim, 3, 0);
  for (SamplerKind s :
       {SamplerKind::kDdim, SamplerKind::kEuler, SamplerKind::kEulerAncestral, SamplerKind::kLcm}) {
    r.sampler = s;
    GenerationTrace trace;
    auto image = pipe->generate(r, {}, &trace);
    ASSERT_TRUE(image.is_ok()) << image.status().to_string();
    EXPECT_EQ(image->sizes(), (std::vector<int64_t>{1, 3, 64, 64}));
    EXPECT_TRUE(torch::isfinite(*image).all().item<bool>());
    EXPECT_GE(image->min().item<float>(), 0.0f);
    EXPECT_LE(image->max().item<float>(), 1.0f);
    // Trailing spacing starts at the last training step whatever the sampler.
    EXPECT_NEAR(trace.timesteps.front(), 999, 1e-6) << static_cast<int>(s);
  }
}

TEST_F(SyntheticFolderTest, ThePredictionTypeOfTheFolderChangesTheResult) {
  auto a = write_and_load(dir_ / "eps", sd2_style("epsilon"), 7);
  auto b = write_and_load(dir_ / "v", sd2_style("v_prediction"), 7);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  const GenerationRequest r = request(SamplerKind::kDdim, 2, 3);
  auto ia = a->generate(r), ib = b->generate(r);
  ASSERT_TRUE(ia.is_ok() && ib.is_ok());
  EXPECT_GT(fixture::max_diff(*ia, *ib), 1e-3);
}

TEST_F(SyntheticFolderTest, WrittenWeightsAreTheDrawnOnesUnderTheirNames) {
  const ModelConfigs configs = sd2_style("epsilon");
  ASSERT_TRUE(write_synthetic_model(dir_.string(), configs, (kTiny / "tokenizer").string(), 11,
                                    safetensors::DType::kF16)
                  .is_ok());
  // The UNet is the second part written, so its weights come from seed + 1.
  Weights drawn = Weights::synthetic(12);
  ASSERT_TRUE(UNet::build(*parse_unet_config(configs.unet), drawn).is_ok());
  auto stored = Weights::load((dir_ / "unet/diffusion_pytorch_model.safetensors").string());
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  ASSERT_EQ(stored->tensors().size(), drawn.tensors().size());
  for (const auto& [name, t] : drawn.tensors()) {
    auto it = stored->tensors().find(name);
    ASSERT_NE(it, stored->tensors().end()) << name;
    // Stored as F16: equal to the drawn values rounded to half precision.
    EXPECT_TRUE(torch::equal(it->second, t.to(torch::kHalf).to(torch::kFloat32))) << name;
  }
}

TEST(GuidanceEmbeddingTest, FollowsDiffusersGetGuidanceScaleEmbedding) {
  // w = 0: every sine 0, every cosine 1; an odd width gets one zero at the end.
  torch::Tensor zero = guidance_embedding(0.0, 5);
  EXPECT_TRUE(torch::equal(zero, torch::tensor({{0.0f, 0.0f, 1.0f, 1.0f, 0.0f}})));
  // Width 4: frequencies exp(-k ln(10000) / (2 - 1)) = 1 and 1e-4, of w * 1000.
  torch::Tensor e = guidance_embedding(0.5, 4);
  torch::Tensor want =
      torch::tensor({{std::sin(500.0f), std::sin(0.05f), std::cos(500.0f), std::cos(0.05f)}});
  EXPECT_TRUE(torch::allclose(e, want, 1e-5, 1e-5)) << e;
  EXPECT_EQ(guidance_embedding(7.0, 256).sizes(), (std::vector<int64_t>{1, 256}));
}

TEST(UNetConfigTest, TimeCondProjDimIsReadAndChecked) {
  auto c = parse_unet_config(R"({"time_cond_proj_dim": 256})");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->time_cond_proj_dim, 256);
  EXPECT_EQ(parse_unet_config("{}")->time_cond_proj_dim, 0);
  auto bad = parse_unet_config(R"({"time_cond_proj_dim": "wide"})");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("time_cond_proj_dim"), std::string::npos);
}

// An LCM-distilled model: guidance goes in through the UNet's cond_proj, one pass per step.
TEST_F(SyntheticFolderTest, AnLcmDistilledFolderEmbedsTheGuidanceInsteadOfAnUnconditionalPass) {
  ModelConfigs configs = sd2_style("epsilon", 16);
  nlohmann::json sched = nlohmann::json::parse(configs.scheduler);
  sched["_class_name"] = "LCMScheduler";
  configs.scheduler = sched.dump();
  auto pipe = write_and_load(dir_, configs, 5);
  ASSERT_TRUE(pipe.is_ok()) << pipe.status().to_string();
  auto stored = Weights::load((dir_ / "unet/diffusion_pytorch_model.safetensors").string());
  ASSERT_TRUE(stored.is_ok());
  ASSERT_TRUE(stored->tensors().count("time_embedding.cond_proj.weight"));
  EXPECT_EQ(stored->tensors().at("time_embedding.cond_proj.weight").sizes(),
            (std::vector<int64_t>{32, 16}));

  auto info = inference::sd_model_info(dir_.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->samplers.front(), "lcm");
  EXPECT_EQ(info->steps.default_value, 4);
  EXPECT_EQ(info->guidance.default_value, 8.0);

  GenerationRequest r = request(SamplerKind::kLcm, 2, 9);
  r.guidance = 8;
  GenerationTrace trace;
  auto image = pipe->generate(r, {}, &trace);
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  EXPECT_EQ(trace.prompt_embeds.size(0), 1) << "no unconditional pass";
  EXPECT_EQ(trace.unet_inputs[0].size(0), 1);

  // The guidance reaches the timestep embedding, and only through cond_proj.
  auto unet = UNet::load((dir_ / "unet").string());
  ASSERT_TRUE(unet.is_ok());
  torch::Tensor sample = torch::randn({1, 4, 8, 8}), ctx = torch::randn({1, 77, 32});
  torch::Tensor t = torch::tensor({500.0f});
  std::map<std::string, torch::Tensor> none, g2, g8, g8_again;
  unet->forward(sample, t, ctx, &none);
  unet->forward(sample, t, ctx, &g2, guidance_embedding(1.0, 16));
  unet->forward(sample, t, ctx, &g8, guidance_embedding(7.0, 16));
  unet->forward(sample, t, ctx, &g8_again, guidance_embedding(7.0, 16));
  EXPECT_GT(fixture::max_diff(g2["time_embedding"], g8["time_embedding"]), 1e-5);
  EXPECT_GT(fixture::max_diff(none["time_embedding"], g8["time_embedding"]), 1e-5);
  EXPECT_TRUE(torch::equal(g8["time_embedding"], g8_again["time_embedding"]));
  EXPECT_TRUE(torch::equal(none["time_proj"], g8["time_proj"]));
}

TEST_F(SyntheticFolderTest, AnUnwritableFolderIsAnError) {
  ASSERT_TRUE(fs::create_directories(dir_));
  {
    std::ofstream f(dir_ / "unet");  // a file where the folder should go
  }
  Status st =
      write_synthetic_model(dir_.string(), sd2_style("epsilon"), (kTiny / "tokenizer").string(), 1);
  EXPECT_FALSE(st.is_ok());
  st = write_synthetic_model((dir_ / "x").string(), sd2_style("epsilon"), "/nonexistent", 1);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("vocab.json"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace atelier::sd
