#include "server/inference/sd/inpaint.h"

namespace atelier::sd {

torch::Tensor mask_to_tensor(const image::Mask& mask, int w, int h) {
  torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(mask.values.data()),
                                     {1, 1, mask.height, mask.width}, torch::kUInt8)
                        .to(torch::kFloat32) /
                    255.0;
  if (mask.width != w || mask.height != h) t = torch::upsample_nearest2d(t, {h, w});
  return t;
}

InpaintMasks prepare_inpaint_masks(const torch::Tensor& image, const torch::Tensor& mask,
                                   int64_t f) {
  InpaintMasks m;
  // diffusers' VaeImageProcessor.binarize: < 0.5 -> 0, otherwise 1.
  m.condition = (mask >= 0.5).to(torch::kFloat32);
  m.masked_image = image * (m.condition < 0.5).to(image.scalar_type());
  // F.interpolate(mask, size=(H/f, W/f)) in its default 'nearest' mode picks pixel [f*i, f*j].
  using torch::indexing::Slice;
  m.latent = m.condition
                 .index({Slice(), Slice(), Slice(0, torch::indexing::None, f),
                         Slice(0, torch::indexing::None, f)})
                 .contiguous();
  return m;
}

}  // namespace atelier::sd
