// `atelier generate`: one Stable Diffusion generation offline, from a model folder or a
// single-file checkpoint (with --config, a folder of diffusers configs to build it from), with
// LoRA files applied, and SDXL's size conditioning, with a progress bar on the terminal. How
// results are compared across implementations: --init-latents takes the initial noise (a tensor
// named `latents`, 1 x latent channels x H/f x W/f, scaled by the sampler's initial sigma as
// diffusers' `latents=` is) and --out-tensor writes the decoded image before 8-bit conversion
// (`image`, 1 x 3 x H x W in [0, 1]).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace atelier::sd {

struct GenerateArgs {
  std::string model, prompt, negative;
  int width = 0, height = 0;  // 0: the model's native size (or the init image's)
  int steps = 0;              // 0: the model's default
  double guidance = -1;       // < 0: the model's default
  std::string sampler;        // empty: the model's default
  int64_t seed = -1;          // -1: random
  std::string init_image;     // PNG
  double strength = 0.6;
  std::string init_latents;  // safetensors with `latents`
  std::string out = "out.png";
  std::string out_tensor;                  // safetensors with `image`
  std::string config_dir;                  // single files: configs instead of the family's
  std::string original_size, target_size;  // "WxH"; empty: the output size
  std::string crop_top_left;               // "TOP,LEFT"; empty: 0,0
  std::vector<std::string> loras;          // "FILE[:WEIGHT]"
};

// Returns the process exit code; errors are printed to stderr.
int run_generate(const GenerateArgs& args);

}  // namespace atelier::sd
