#include "server/inference/sd/schedule.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace atelier::sd {

namespace {

using nlohmann::json;

Status refuse(const std::string& key, const std::string& why) {
  return Status::invalid_argument("scheduler_config.json: " + key + " " + why, key);
}

// numpy's round: halves to even.
double round_half_even(double x) {
  return std::nearbyint(x);
}

std::vector<float> betas(const ScheduleConfig& c) {
  const int n = c.num_train_timesteps;
  std::vector<float> b(static_cast<size_t>(n));
  const bool scaled = c.beta_schedule == "scaled_linear";
  const double lo = scaled ? std::sqrt(c.beta_start) : c.beta_start;
  const double hi = scaled ? std::sqrt(c.beta_end) : c.beta_end;
  for (int i = 0; i < n; ++i) {
    const double v = n == 1 ? lo : lo + (hi - lo) * i / (n - 1);
    const auto f = static_cast<float>(v);
    b[static_cast<size_t>(i)] = scaled ? f * f : f;
  }
  return b;
}

// Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed": shift and
// scale sqrt(alpha_cumprod) so that the last step has zero signal.
void rescale_zero_snr(std::vector<float>& b) {
  std::vector<double> s(b.size());
  double prod = 1;
  for (size_t i = 0; i < b.size(); ++i) {
    prod *= 1.0 - b[i];
    s[i] = std::sqrt(prod);
  }
  const double first = s.front(), last = s.back();
  for (auto& v : s) v = (v - last) * first / (first - last);
  for (size_t i = 0; i < b.size(); ++i) {
    const double a = s[i] * s[i];
    const double prev = i == 0 ? 1.0 : s[i - 1] * s[i - 1];
    b[i] = static_cast<float>(1.0 - a / prev);
  }
}

}  // namespace

std::optional<SamplerKind> parse_sampler(std::string_view name) {
  if (name == "euler") return SamplerKind::kEuler;
  if (name == "euler_a") return SamplerKind::kEulerAncestral;
  if (name == "ddim") return SamplerKind::kDdim;
  if (name == "lcm") return SamplerKind::kLcm;
  return std::nullopt;
}

Result<ScheduleConfig> parse_schedule_config(const std::string& json_text) {
  auto j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument("scheduler_config.json is not a JSON object");
  }
  ScheduleConfig c;
  auto num = [&](const char* key, auto& out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_number()) return refuse(key, "is not a number");
    out = it->get<std::remove_reference_t<decltype(out)>>();
    return Status::ok();
  };
  auto flag = [&](const char* key, bool& out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_boolean()) return refuse(key, "is not true or false");
    out = it->get<bool>();
    return Status::ok();
  };
  auto text = [&](const char* key, std::string& out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_string()) return refuse(key, "is not a string");
    out = it->get<std::string>();
    return Status::ok();
  };
  std::string spacing = "leading", prediction = "epsilon";
  for (Status st :
       {num("num_train_timesteps", c.num_train_timesteps), num("beta_start", c.beta_start),
        num("beta_end", c.beta_end), text("beta_schedule", c.beta_schedule),
        flag("rescale_betas_zero_snr", c.rescale_betas_zero_snr), text("timestep_spacing", spacing),
        num("steps_offset", c.steps_offset), flag("set_alpha_to_one", c.set_alpha_to_one),
        text("prediction_type", prediction),
        num("original_inference_steps", c.original_inference_steps)}) {
    if (!st.is_ok()) return st;
  }
  if (c.num_train_timesteps < 2 || c.num_train_timesteps > 100'000) {
    return refuse("num_train_timesteps", "must be 2 to 100000");
  }
  if (c.beta_schedule != "linear" && c.beta_schedule != "scaled_linear") {
    return refuse("beta_schedule", "'" + c.beta_schedule + "' is not supported");
  }
  if (auto it = j.find("trained_betas"); it != j.end() && !it->is_null()) {
    return refuse("trained_betas", "are not supported");
  }
  if (auto it = j.find("use_karras_sigmas"); it != j.end() && it->is_boolean() && it->get<bool>()) {
    return refuse("use_karras_sigmas", "is not supported");
  }
  if (spacing == "leading") {
    c.spacing = Spacing::kLeading;
  } else if (spacing == "linspace") {
    c.spacing = Spacing::kLinspace;
  } else if (spacing == "trailing") {
    c.spacing = Spacing::kTrailing;
  } else {
    return refuse("timestep_spacing", "'" + spacing + "' is not supported");
  }
  if (prediction == "epsilon") {
    c.prediction = Prediction::kEpsilon;
  } else if (prediction == "v_prediction") {
    c.prediction = Prediction::kVPrediction;
  } else {
    return refuse("prediction_type", "'" + prediction + "' is not supported");
  }
  if (c.original_inference_steps < 1 || c.original_inference_steps > c.num_train_timesteps) {
    return refuse("original_inference_steps", "is out of range");
  }
  return c;
}

std::vector<float> alphas_cumprod(const ScheduleConfig& c) {
  std::vector<float> b = betas(c);
  if (c.rescale_betas_zero_snr) rescale_zero_snr(b);
  std::vector<float> out(b.size());
  float prod = 1;
  for (size_t i = 0; i < b.size(); ++i) {
    prod *= 1.0f - b[i];
    out[i] = prod;
  }
  // A zero-SNR schedule ends at exactly 0, which would make the last sigma infinite.
  if (c.rescale_betas_zero_snr) out.back() = std::ldexp(1.0f, -24);
  return out;
}

Result<StepPlan> plan_steps(const ScheduleConfig& c, SamplerKind kind, int steps) {
  const int n = c.num_train_timesteps;
  if (steps < 1 || steps > n) {
    return Status::invalid_argument("steps must be 1 to " + std::to_string(n), "steps");
  }
  const std::vector<float> ac = alphas_cumprod(c);
  StepPlan plan;
  plan.final_alpha_cumprod = c.set_alpha_to_one ? 1.0f : ac.front();
  std::vector<double>& t = plan.timesteps;

  if (kind == SamplerKind::kLcm) {
    // The distilled model's own grid of original_inference_steps points, then steps of them
    // spread evenly from the noisiest.
    const int k = n / c.original_inference_steps;
    std::vector<int> origin;
    for (int i = c.original_inference_steps; i >= 1; --i) origin.push_back(i * k - 1);
    if (steps > static_cast<int>(origin.size())) {
      return Status::invalid_argument(
          "an LCM model takes at most " + std::to_string(origin.size()) + " steps", "steps");
    }
    for (int i = 0; i < steps; ++i) {
      const auto at = static_cast<size_t>(
          std::floor(static_cast<double>(i) * static_cast<double>(origin.size()) / steps));
      t.push_back(origin[at]);
    }
    return plan;
  }

  switch (c.spacing) {
    case Spacing::kLinspace:
      for (int i = steps - 1; i >= 0; --i) {
        const double v = steps == 1 ? 0.0 : static_cast<double>(n - 1) * i / (steps - 1);
        // DDIM rounds to integers; Euler keeps the fractions (and interpolates its sigmas).
        t.push_back(kind == SamplerKind::kDdim ? round_half_even(v) : v);
      }
      break;
    case Spacing::kLeading: {
      const int ratio = n / steps;
      for (int i = steps - 1; i >= 0; --i) t.push_back(i * ratio + c.steps_offset);
      break;
    }
    case Spacing::kTrailing: {
      const double ratio = static_cast<double>(n) / steps;
      for (double v = n; v > 0 && static_cast<int>(t.size()) < steps; v -= ratio) {
        t.push_back(round_half_even(v) - 1);
      }
      break;
    }
  }

  if (kind == SamplerKind::kEuler || kind == SamplerKind::kEulerAncestral) {
    // sigma(t) = sqrt((1 - alpha_cumprod) / alpha_cumprod), interpolated at fractional t.
    std::vector<double> table(ac.size());
    for (size_t i = 0; i < ac.size(); ++i) table[i] = std::sqrt((1.0 - ac[i]) / ac[i]);
    float max_sigma = 0;
    for (double ts : t) {
      const double clamped = std::clamp(ts, 0.0, static_cast<double>(n - 1));
      const auto lo = static_cast<size_t>(std::floor(clamped));
      const size_t hi = std::min(lo + 1, table.size() - 1);
      const double w = clamped - static_cast<double>(lo);
      const auto s = static_cast<float>(table[lo] * (1 - w) + table[hi] * w);
      plan.sigmas.push_back(s);
      max_sigma = std::max(max_sigma, s);
    }
    plan.sigmas.push_back(0);
    plan.init_noise_sigma = c.spacing == Spacing::kLeading
                                ? static_cast<float>(std::sqrt(double{max_sigma} * max_sigma + 1))
                                : max_sigma;
    for (double& ts : t) ts = static_cast<float>(ts);  // diffusers keeps them as float32
  }
  return plan;
}

}  // namespace atelier::sd
