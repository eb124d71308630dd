// Noise schedules of the Stable Diffusion samplers: the training betas and cumulative alphas
// from a model folder's scheduler_config.json, and for a number of steps the timesteps (and, for
// the Euler samplers, the sigmas) that diffusers' schedulers choose, so that a run here walks
// the same points as the reference. No torch: plain numbers, used by the samplers.
//
// Supported: beta_schedule `linear` and `scaled_linear`, rescale_betas_zero_snr,
// timestep_spacing `leading`, `linspace` and `trailing`, steps_offset, set_alpha_to_one,
// prediction_type `epsilon` and `v_prediction`, LCM's original_inference_steps. Other settings
// (trained_betas, Karras sigmas, `sample` prediction) are refused by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace atelier::sd {

enum class Spacing { kLeading, kLinspace, kTrailing };
enum class Prediction { kEpsilon, kVPrediction };
enum class SamplerKind { kEuler, kEulerAncestral, kDdim, kLcm };
// "euler", "euler_a", "ddim", "lcm" (the names the API and the CLI use); nullopt otherwise.
std::optional<SamplerKind> parse_sampler(std::string_view name);

struct ScheduleConfig {
  int num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";
  bool rescale_betas_zero_snr = false;
  Spacing spacing = Spacing::kLeading;
  int steps_offset = 1;
  bool set_alpha_to_one = false;
  Prediction prediction = Prediction::kEpsilon;
  int original_inference_steps = 50;  // LCM
};

// Reads a scheduler_config.json's text (diffusers' keys; absent ones keep the defaults above).
Result<ScheduleConfig> parse_schedule_config(const std::string& json_text);

// The betas' cumulative product of (1 - beta), in float32 as diffusers computes it.
std::vector<float> alphas_cumprod(const ScheduleConfig& config);

struct StepPlan {
  std::vector<double> timesteps;  // descending; integers except where Euler interpolates
  std::vector<float> sigmas;      // Euler samplers: one per timestep, then 0; empty otherwise
  float init_noise_sigma = 1;     // what the initial noise (or given latents) is scaled by
  float final_alpha_cumprod = 1;  // DDIM: the alpha of the step after the last
};

// The timesteps diffusers' scheduler of `kind` sets for `steps` inference steps.
Result<StepPlan> plan_steps(const ScheduleConfig& config, SamplerKind kind, int steps);

}  // namespace atelier::sd
