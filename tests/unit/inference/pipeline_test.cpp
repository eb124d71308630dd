// The whole pipeline against diffusers on the sd-tiny fixture: txt2img with DDIM and Euler at
// guidance 1 and 7.5 from the stored initial latents, and img2img (DDIM, strength 0.6) with the
// stored noises: prompt embeddings, timesteps, every step's latents, the decoded image and the
// final image within the fixture's tolerances (1e-3).
#include "server/inference/sd/pipeline.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/safetensors.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::kTiny;
using fixture::max_diff;

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kTiny)) return;
    auto p = StableDiffusion::load(kTiny.string());
    ASSERT_TRUE(p.is_ok()) << p.status().message();
    pipe_ = new StableDiffusion(std::move(*p));
  }
  static void TearDownTestSuite() {
    delete pipe_;
    pipe_ = nullptr;
  }
  void SetUp() override {
    if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  }

  // Checks one run against expected/<name>.safetensors.
  void check(const std::string& name, const GenerationTrace& trace, const torch::Tensor& image,
             const safetensors::File& ref, size_t steps) {
    EXPECT_LT(max_diff(trace.prompt_embeds, fixture::fixture_tensor(ref, "prompt_embeds")), 1e-4)
        << name;
    const torch::Tensor want_t = fixture::fixture_tensor(ref, "timesteps");
    ASSERT_EQ(trace.timesteps.size(), steps) << name;
    for (size_t i = 0; i < steps; ++i) {
      EXPECT_NEAR(trace.timesteps[i], want_t[static_cast<int64_t>(i)].item<double>(), 1e-4) << name;
      EXPECT_LT(max_diff(trace.unet_inputs[i],
                         fixture::fixture_tensor(ref, "unet_input_" + std::to_string(i))),
                1e-3)
          << name << " step " << i;
      EXPECT_LT(max_diff(trace.latents[i],
                         fixture::fixture_tensor(ref, "latents_" + std::to_string(i + 1))),
                1e-3)
          << name << " step " << i;
    }
    EXPECT_LT(max_diff(trace.decoded, fixture::fixture_tensor(ref, "decoded")), 1e-3) << name;
    EXPECT_LT(max_diff(image.permute({0, 2, 3, 1}), fixture::fixture_tensor(ref, "image")), 1e-3)
        << name;
  }

  // A 3-step run at guidance 1 from the fixture's initial latents, with its trace and plan.
  struct TracedRun {
    GenerationRequest request;
    GenerationTrace trace;
    StepPlan plan;
  };
  static TracedRun traced_run(SamplerKind sampler, uint64_t seed) {
    TracedRun run;
    auto ref = safetensors::File::open((kTiny / "expected/txt2img_ddim_cfg1.safetensors").string());
    EXPECT_TRUE(ref.is_ok());
    GenerationRequest& r = run.request;
    r.prompt = "a red fox in the snow";
    r.width = r.height = 64;
    r.steps = 3;
    r.guidance = 1;
    r.sampler = sampler;
    r.seed = seed;
    if (ref.is_ok()) r.init_latents = fixture::fixture_tensor(*ref, "init_latents");
    EXPECT_TRUE(pipe_->generate(r, {}, &run.trace).is_ok());
    run.plan = *plan_steps(pipe_->schedule(), sampler, 3);
    EXPECT_EQ(run.trace.timesteps, run.plan.timesteps);
    return run;
  }

  static StableDiffusion* pipe_;
};
StableDiffusion* PipelineTest::pipe_ = nullptr;

TEST_F(PipelineTest, Txt2ImgMatchesDiffusersForEachSamplerAndGuidance) {
  const std::pair<const char*, SamplerKind> runs[] = {
      {"txt2img_ddim_cfg1", SamplerKind::kDdim},
      {"txt2img_ddim_cfg7p5", SamplerKind::kDdim},
      {"txt2img_euler_cfg1", SamplerKind::kEuler},
      {"txt2img_euler_cfg7p5", SamplerKind::kEuler}};
  for (const auto& [name, sampler] : runs) {
    auto ref = safetensors::File::open(
        (kTiny / "expected" / (std::string(name) + ".safetensors")).string());
    ASSERT_TRUE(ref.is_ok());
    GenerationRequest r;
    r.prompt = "a red fox in the snow";
    r.width = r.height = 64;
    r.steps = 4;
    r.guidance = std::string(name).find("7p5") != std::string::npos ? 7.5 : 1.0;
    r.sampler = sampler;
    r.init_latents = fixture::fixture_tensor(*ref, "init_latents");
    GenerationTrace trace;
    int calls = 0;
    auto image = pipe_->generate(
        r,
        [&](int step, int steps, const torch::Tensor&) {
          EXPECT_EQ(step, ++calls);
          EXPECT_EQ(steps, 4);
          return true;
        },
        &trace);
    ASSERT_TRUE(image.is_ok()) << image.status().message();
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(trace.prompt_embeds.size(0), r.guidance > 1 ? 2 : 1)
        << "guidance 1 skips the unconditional pass";
    check(name, trace, *image, *ref, 4);
  }
}

TEST_F(PipelineTest, Img2ImgMatchesDiffusers) {
  auto ref = safetensors::File::open((kTiny / "expected/img2img_ddim.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  GenerationRequest r;
  r.prompt = "a red fox in the snow";
  r.width = r.height = 64;
  r.steps = 10;
  r.guidance = 7.5;
  r.sampler = SamplerKind::kDdim;
  r.init_image = fixture::fixture_tensor(*ref, "image_preprocessed");
  r.strength = 0.6;
  r.encoder_noise = fixture::fixture_tensor(*ref, "encoder_sample_noise");
  r.add_noise = fixture::fixture_tensor(*ref, "add_noise_noise");
  GenerationTrace trace;
  auto image = pipe_->generate(r, {}, &trace);
  ASSERT_TRUE(image.is_ok()) << image.status().message();
  EXPECT_LT(max_diff(trace.init_latents, fixture::fixture_tensor(*ref, "init_latents_noisy")),
            1e-4);
  check("img2img_ddim", trace, *image, *ref, 6);
}

TEST_F(PipelineTest, CancelsBetweenStepsAndRefusesBadSizes) {
  GenerationRequest r;
  r.prompt = "fox";
  r.width = r.height = 64;
  r.steps = 4;
  r.guidance = 1;
  r.sampler = SamplerKind::kEulerAncestral;
  int calls = 0;
  auto cancelled = pipe_->generate(r, [&](int, int, const torch::Tensor&) { return ++calls < 2; });
  ASSERT_FALSE(cancelled.is_ok());
  EXPECT_EQ(cancelled.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
  r.width = 63;
  EXPECT_EQ(pipe_->generate(r).status().code(), StatusCode::kInvalidArgument);
  // The same seed gives the same image; another seed another one (ancestral and LCM draw noise).
  r.width = 64;
  for (SamplerKind k : {SamplerKind::kEulerAncestral, SamplerKind::kLcm}) {
    r.sampler = k;
    r.seed = 7;
    auto a = pipe_->generate(r), b = pipe_->generate(r);
    r.seed = 8;
    auto c = pipe_->generate(r);
    ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
    EXPECT_TRUE(torch::equal(*a, *b));
    EXPECT_FALSE(torch::equal(*a, *c));
    EXPECT_GE(a->min().item<float>(), 0.0f);
    EXPECT_LE(a->max().item<float>(), 1.0f);
  }
}

// The two samplers that draw noise have no stored reference run, so each step is checked against
// diffusers' step formulas (EulerAncestralDiscreteScheduler.step, LCMScheduler.step) using the
// model outputs the trace recorded and the noise the seed gives (drawn on the CPU, after the
// given initial latents, one draw per step that adds noise).
TEST_F(PipelineTest, EulerAncestralStepsFollowDiffusersFormula) {
  const auto [r, trace, plan] = traced_run(SamplerKind::kEulerAncestral, 21);
  ASSERT_EQ(trace.latents.size(), 3u);
  torch::Generator gen = at::detail::createCPUGenerator(21);
  torch::Tensor x = r.init_latents * plan.init_noise_sigma;
  for (size_t i = 0; i < 3; ++i) {
    const double sigma = plan.sigmas[i], to = plan.sigmas[i + 1];
    EXPECT_LT(max_diff(trace.unet_inputs[i], x / std::sqrt(sigma * sigma + 1)), 1e-5);
    const torch::Tensor eps = trace.unet_outputs[i];
    const double up = std::sqrt(to * to * (sigma * sigma - to * to) / (sigma * sigma));
    const double down = std::sqrt(to * to - up * up);
    const torch::Tensor derivative = (x - (x - sigma * eps)) / sigma;
    const torch::Tensor noise = torch::randn(x.sizes(), gen);
    x = x + derivative * (down - sigma) + noise * up;
    EXPECT_LT(max_diff(trace.latents[i], x), 1e-5) << "step " << i;
    x = trace.latents[i];
  }
  EXPECT_EQ(plan.sigmas.back(), 0.0f) << "the last step adds no noise";
}

TEST_F(PipelineTest, LcmStepsFollowDiffusersFormula) {
  const auto [r, trace, plan] = traced_run(SamplerKind::kLcm, 22);
  ASSERT_EQ(trace.latents.size(), 3u);
  const std::vector<float> ac = alphas_cumprod(pipe_->schedule());
  torch::Generator gen = at::detail::createCPUGenerator(22);
  torch::Tensor x = r.init_latents;
  for (size_t i = 0; i < 3; ++i) {
    const double t = plan.timesteps[i];
    const double prev = i + 1 < 3 ? plan.timesteps[i + 1] : t;
    const double a = ac[static_cast<size_t>(t)], a_prev = ac[static_cast<size_t>(prev)];
    const torch::Tensor x0 = (x - std::sqrt(1 - a) * trace.unet_outputs[i]) / std::sqrt(a);
    // Boundary-condition scalings with sigma_data 0.5 and timestep_scaling 10.
    const double st = t * 10, c_skip = 0.25 / (st * st + 0.25);
    const double c_out = st / std::sqrt(st * st + 0.25);
    const torch::Tensor denoised = c_out * x0 + c_skip * x;
    if (i + 1 < 3) {
      x = std::sqrt(a_prev) * denoised + std::sqrt(1 - a_prev) * torch::randn(x.sizes(), gen);
    } else {
      x = denoised;
    }
    EXPECT_LT(max_diff(trace.latents[i], x), 1e-5) << "step " << i;
    x = trace.latents[i];
  }
}

}  // namespace
}  // namespace atelier::sd
