// Noise schedules against diffusers 0.25's schedulers (../shared/fixtures/sd-tiny/expected/
// schedulers.json): timesteps, sigmas and the initial noise scale for every spacing and step count
// the fixture lists, for DDIM, Euler, Euler ancestral and LCM.
#include "server/inference/sd/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "server/inference/sd/model_files.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
const fs::path kTiny = "../shared/fixtures/sd-tiny";

// A fixture file's text; empty when absent (the tests skip before reading then).
std::string slurp(const fs::path& p) {
  auto text = read_model_file(p.string());
  return text.is_ok() ? *text : std::string();
}

void expect_near_rel(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-5 * std::max(1.0, std::abs(want))) << what;
}

TEST(ScheduleTest, MatchesDiffusersTimestepsAndSigmas) {
  if (!fs::exists(kTiny)) GTEST_SKIP() << "../shared/fixtures/sd-tiny is absent";
  const json ref = json::parse(slurp(kTiny / "expected/schedulers.json"));
  auto base = parse_schedule_config(slurp(kTiny / "scheduler/scheduler_config.json"));
  ASSERT_TRUE(base.is_ok()) << base.status().message();
  const auto ac = alphas_cumprod(*base);
  expect_near_rel(ac.front(), ref["alphas_cumprod_first"], "alphas_cumprod[0]");
  expect_near_rel(ac.back(), ref["alphas_cumprod_last"], "alphas_cumprod[999]");

  const std::pair<const char*, SamplerKind> kinds[] = {
      {"DDIMScheduler", SamplerKind::kDdim},
      {"EulerDiscreteScheduler", SamplerKind::kEuler},
      {"EulerAncestralDiscreteScheduler", SamplerKind::kEulerAncestral},
      {"LCMScheduler", SamplerKind::kLcm}};
  int checked = 0;
  for (const auto& [name, kind] : kinds) {
    for (const auto& [variant, data] : ref["schedulers"][name].items()) {
      auto config = parse_schedule_config(data["resolved_config"].dump());
      ASSERT_TRUE(config.is_ok()) << name << " " << variant << ": " << config.status().message();
      for (const auto& [steps, want] : data["steps"].items()) {
        const std::string what = std::string(name) + " " + variant + " " + steps + " steps";
        auto plan = plan_steps(*config, kind, std::stoi(steps));
        ASSERT_TRUE(plan.is_ok()) << what << ": " << plan.status().message();
        const auto want_t = want["timesteps"].get<std::vector<double>>();
        EXPECT_EQ(plan->timesteps, want_t) << what;
        expect_near_rel(plan->init_noise_sigma, want["init_noise_sigma"], what + " init sigma");
        if (want.contains("sigmas")) {
          const auto want_s = want["sigmas"].get<std::vector<double>>();
          ASSERT_EQ(plan->sigmas.size(), want_s.size()) << what;
          for (size_t i = 0; i < want_s.size(); ++i) {
            expect_near_rel(plan->sigmas[i], want_s[i], what + " sigma " + std::to_string(i));
          }
        } else {
          EXPECT_TRUE(plan->sigmas.empty()) << what;
        }
        if (kind == SamplerKind::kDdim) {
          expect_near_rel(plan->final_alpha_cumprod, ref["ddim_final_alpha_cumprod"], what);
        }
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 3 * 4 * 3 + 3) << "every class, spacing and step count of the fixture";
}

TEST(ScheduleTest, VPredictionAndZeroSnrConfigsLoad) {
  auto c = parse_schedule_config(
      R"({"prediction_type":"v_prediction","rescale_betas_zero_snr":true,"timestep_spacing":"trailing"})");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->prediction, Prediction::kVPrediction);
  const auto ac = alphas_cumprod(*c);
  EXPECT_LT(ac.back(), 1e-6f) << "zero terminal SNR";
  EXPECT_GT(ac.front(), 0.99f);
  auto plan = plan_steps(*c, SamplerKind::kEuler, 4);
  ASSERT_TRUE(plan.is_ok());
  EXPECT_EQ(plan->timesteps.front(), 999);
  EXPECT_TRUE(std::isfinite(plan->sigmas.front()));
}

TEST(ScheduleTest, RefusesWhatItDoesNotSupportByName) {
  const std::pair<const char*, const char*> bad[] = {
      {R"({"beta_schedule":"squaredcos_cap_v2"})", "beta_schedule"},
      {R"({"trained_betas":[0.1,0.2]})", "trained_betas"},
      {R"({"timestep_spacing":"karras"})", "timestep_spacing"},
      {R"({"prediction_type":"sample"})", "prediction_type"},
      {R"({"num_train_timesteps":"many"})", "num_train_timesteps"},
      {R"({"use_karras_sigmas":true})", "use_karras_sigmas"},
      {"[]", "JSON object"},
  };
  for (const auto& [text, names] : bad) {
    auto c = parse_schedule_config(text);
    ASSERT_FALSE(c.is_ok()) << text;
    EXPECT_NE(c.status().message().find(names), std::string::npos) << c.status().message();
  }
  auto c = parse_schedule_config("{}");
  ASSERT_TRUE(c.is_ok());
  EXPECT_FALSE(plan_steps(*c, SamplerKind::kDdim, 0).is_ok());
  EXPECT_FALSE(plan_steps(*c, SamplerKind::kLcm, 51).is_ok());
}

}  // namespace
}  // namespace atelier::sd
