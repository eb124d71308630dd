// The mask side of Stable Diffusion inpainting, as diffusers' StableDiffusionInpaintPipeline
// prepares it (0.25): the mask binarised at 0.5 (1 = repaint), the masked image (the repainted
// pixels set to 0, i.e. mid grey in [-1, 1]) that 9-channel UNets see through the VAE, and the
// latent mask taken by nearest sampling (latent [i, j] = pixel [f*i, f*j]: no averaging, no
// "any pixel" rule, so a mask edge on an odd pixel lands where diffusers puts it).
// Costs: a few element-wise passes over the image. Threads: pure functions.
#pragma once

#include <torch/torch.h>

#include "common/image.h"

namespace atelier::sd {

// An 8-bit mask as the pipeline's mask input: 1 x 1 x h x w in [0, 1] (255 -> 1), resized by
// nearest neighbour when its size differs (a mask must stay a selection, not blend).
torch::Tensor mask_to_tensor(const image::Mask& mask, int w, int h);

struct InpaintMasks {
  torch::Tensor condition;     // 1 x 1 x H x W, 0 or 1 (diffusers' mask_condition)
  torch::Tensor masked_image;  // 1 x 3 x H x W: image * (condition < 0.5)
  torch::Tensor latent;        // 1 x 1 x H/f x W/f, 0 or 1
};

// `image` 1 x 3 x H x W in [-1, 1], `mask` 1 x 1 x H x W in [0, 1]; H and W multiples of `f`.
InpaintMasks prepare_inpaint_masks(const torch::Tensor& image, const torch::Tensor& mask,
                                   int64_t f);

}  // namespace atelier::sd
