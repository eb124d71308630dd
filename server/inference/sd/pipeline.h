// StableDiffusion: a diffusers model folder (model_index.json with tokenizer/, text_encoder/,
// unet/, vae/, scheduler/) loaded into the components of this directory, and one generation:
// text conditioning (with the negative prompt for classifier-free guidance; guidance <= 1 skips
// the unconditional pass, as Turbo-style models need), the sampler's loop over the scheduler's
// timesteps, and the VAE decode. txt2img from noise (or given initial latents, as diffusers'
// `latents=`), img2img from an image with a strength, and inpainting (an image, a mask and a
// strength) exactly as diffusers' StableDiffusionInpaintPipeline (0.25) does it: a standard UNet
// gets the original's latents, re-noised to the next timestep, put back outside the latent mask
// after every step; an inpainting UNet (in_channels = 2 x latent channels + 1) gets the mask and
// the masked image's latents as extra input channels instead. Random draws come from `seed` in
// diffusers' order (image encode sample, noise, masked-image encode sample), so a test or the CLI
// can hand in the draws a reference run made.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/image.h"
#include "common/status.h"
#include "server/inference/sd/clip_text_encoder.h"
#include "server/inference/sd/clip_tokenizer.h"
#include "server/inference/sd/schedule.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"

namespace atelier::sd {

struct GenerationRequest {
  std::string prompt, negative_prompt;
  int width = 512, height = 512, steps = 20;
  double guidance = 7.5;
  SamplerKind sampler = SamplerKind::kEuler;
  uint64_t seed = 0;
  // Optional: the initial noise (1 x latent channels x H/f x W/f), scaled by the sampler's
  // initial sigma as diffusers does; drawn from `seed` when undefined.
  torch::Tensor init_latents;
  // Optional img2img: the starting image (1 x 3 x H x W in [-1, 1]) and how much to change it.
  torch::Tensor init_image;
  double strength = 0.6;
  // Optional inpaint (with init_image): 1 x 1 x H x W in [0, 1], 1 = repaint, binarised at 0.5.
  // An inpainting model without a mask or init image runs txt2img as an inpaint of a blank
  // canvas with everything masked (as A1111 does); with an init image it needs a mask.
  torch::Tensor mask;
  // Tests and the CLI: draws a reference run made, instead of drawing from `seed`: the VAE
  // posterior sample of the init image (`image_encoder_sample_noise`), the noise added to its
  // latents (`noise`; with strength 1 the start), the masked image's sample (inpaint only).
  torch::Tensor encoder_noise, add_noise, masked_encoder_noise;
  // SDXL's size conditioning in pixels; 0 means the output size (crop: 0), as diffusers.
  int original_width = 0, original_height = 0, target_width = 0, target_height = 0;
  int crop_top = 0, crop_left = 0;
};

// The text conditioning of one prompt pair, in the UNet's batch order (negative first when
// classifier-free guidance is on). `pooled` only for models with a second, projected encoder.
struct PromptEmbeddings {
  torch::Tensor embeds, pooled;
};

struct GenerationTrace {
  torch::Tensor prompt_embeds;
  torch::Tensor add_text_embeds, add_time_ids;  // SDXL
  std::vector<double> timesteps;
  std::vector<torch::Tensor> unet_inputs, unet_outputs, latents;  // latents after each step
  torch::Tensor init_latents;  // img2img and inpaint: the start (diffusers' latents_0)
  torch::Tensor decoded;       // VAE output, in [-1, 1]
  // Inpaint: the binarised mask, the masked image, the latent mask, the scaled latents of the
  // image and of the masked image (computed for the trace only when a 4-channel UNet does not
  // need them); 4-channel UNets also each step's sampler output before the blend and what was
  // blended in outside the mask.
  torch::Tensor mask_condition, masked_image, latent_mask, image_latents, masked_image_latents;
  std::vector<torch::Tensor> latents_stepped, init_latents_proper;
};

// Called after every step with (step, steps, current latents); return false to stop (cancel).
using StepCallback = std::function<bool(int step, int steps, const torch::Tensor& latents)>;

// An 8-bit RGB(A) image as the pipeline's input: 1 x 3 x h x w in [-1, 1], resized (bilinear)
// when its size differs.
torch::Tensor image_to_tensor(const image::Image& img, int w, int h);
// The pipeline's output (1 x 3 x H x W in [0, 1]) as an 8-bit RGB image.
image::Image tensor_to_image(const torch::Tensor& image);

// Component weights by component ("unet", "text_encoder", "text_encoder_2") and diffusers
// parameter name, sharing storage with the built modules: what LoRA patches in place.
using ComponentParameters = std::map<std::string, std::map<std::string, torch::Tensor>>;

// What a pipeline is made of, however it was read (a diffusers folder, a single file).
struct PipelineParts {
  std::optional<ClipTokenizer> tokenizer, tokenizer_2;
  ClipTextEncoder text_encoder;
  std::optional<ClipTextEncoder> text_encoder_2;  // SDXL
  UNet unet;
  Vae vae;
  ScheduleConfig schedule;
  bool force_zeros_for_empty_prompt = false;  // model_index.json (SDXL)
  ComponentParameters parameters;
  torch::Dtype dtype = torch::kFloat32, vae_dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
};

class StableDiffusion {
 public:
  static Result<StableDiffusion> load(const std::string& dir, torch::Dtype dtype = torch::kFloat32,
                                      torch::Device device = torch::kCPU);
  // Checks that the parts fit together (text widths, added conditioning, latent channels).
  static Result<StableDiffusion> from_parts(PipelineParts parts);

  // The decoded image, 1 x 3 x H x W in [0, 1]. kCancelled when the callback said stop;
  // invalid_argument for sizes that are not multiples of the VAE's factor, and for an image or
  // mask whose size is not the request's (field "mask" for a mask without an image, or an
  // inpainting model's init image without a mask).
  Result<torch::Tensor> generate(const GenerationRequest& request, const StepCallback& on_step = {},
                                 GenerationTrace* trace = nullptr) const;

  // What the UNet is conditioned on for `prompt` and, with `cfg`, the negative prompt
  // (std::nullopt: none given, which SDXL models with force_zeros_for_empty_prompt turn into
  // zeros; "" is encoded like any text). SD 1.x/2.x: the text encoder's last hidden state;
  // SDXL: both encoders' penultimate hidden states side by side, pooled from the second.
  PromptEmbeddings encode_prompt(const std::string& prompt,
                                 const std::optional<std::string>& negative, bool cfg) const;

  const ScheduleConfig& schedule() const { return schedule_; }
  bool is_sdxl() const { return text_encoder_2_.has_value(); }
  const UNet& unet() const { return unet_; }
  // The live weights (see ComponentParameters); writing them changes what the pipeline does.
  const ComponentParameters& parameters() const { return parameters_; }
  const Vae& vae() const { return vae_; }
  int64_t latent_channels() const { return vae_.config().latent_channels; }
  // A UNet that takes the mask and the masked image's latents (2 x latent channels + 1 inputs).
  bool is_inpainting_model() const {
    return unet_.config().in_channels == 2 * latent_channels() + 1;
  }

 private:
  StableDiffusion(ClipTokenizer tokenizer, ClipTextEncoder text_encoder, UNet unet, Vae vae,
                  ScheduleConfig schedule, torch::Dtype dtype, torch::Device device)
      : options_(torch::TensorOptions().dtype(dtype).device(device)),
        tokenizer_(std::move(tokenizer)),
        text_encoder_(std::move(text_encoder)),
        unet_(std::move(unet)),
        vae_(std::move(vae)),
        schedule_(schedule),
        vae_dtype_(dtype) {}
  PromptEmbeddings encode_one(const std::string& text) const;
  // The scaled latents of `image` ([-1, 1]): a VAE posterior sample with `given` noise, else
  // noise drawn from `gen`. invalid_argument when `given` is not the latents' shape.
  Result<torch::Tensor> encode_sample(const torch::Tensor& image, const torch::Tensor& given,
                                      torch::Generator& gen) const;

  torch::TensorOptions options_;  // the components' dtype and device
  ClipTokenizer tokenizer_;
  ClipTextEncoder text_encoder_;
  UNet unet_;
  Vae vae_;
  ScheduleConfig schedule_;
  // SDXL: the second tokenizer and projected text encoder; model_index.json's
  // force_zeros_for_empty_prompt.
  std::optional<ClipTokenizer> tokenizer_2_;
  std::optional<ClipTextEncoder> text_encoder_2_;
  bool force_zeros_for_empty_prompt_ = false;
  torch::Dtype vae_dtype_ = torch::kFloat32;  // float32 where the VAE says force_upcast
  ComponentParameters parameters_;
};

}  // namespace atelier::sd
