// `atelier generate`: one Stable Diffusion generation offline, from a model folder or a
// single-file checkpoint (with --config, a folder of diffusers configs to build it from), with
// LoRA files applied, and SDXL's size conditioning, with a progress bar on the terminal;
// img2img with --init-image, inpainting with --init-image and --mask (white = repaint, or
// transparent where the mask has alpha, as the server reads masks; binarised at 128).
// How results are compared across implementations: --init-latents takes a safetensors file whose
// tensors replace the random draws, by the names diffusers' fixtures use (others are ignored):
// `latents` (txt2img: the initial noise, 1 x latent channels x H/f x W/f, scaled by the sampler's
// initial sigma as diffusers' `latents=` is; `noise` stands in when there is no `latents`),
// `noise` (img2img and inpaint: added to the image's latents, or the start at strength 1),
// `image_encoder_sample_noise` (the VAE posterior sample of the init image) and
// `masked_image_encoder_sample_noise` (the same for the masked image). --out-tensor writes the
// image before 8-bit conversion (`image`, 1 x 3 x H x W in [0, 1], NCHW). An inpaint's output is
// diffusers' own (no compositing) unless --mask-blur N > 0, which composites it over the init
// image through the mask blurred as the server does (N = sigma in pixels).
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
  std::string mask;          // PNG; with init_image: an inpaint
  int mask_blur = 0;         // > 0: composite over the init image through the blurred mask
  std::string init_latents;  // safetensors with the named draws (see above)
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
