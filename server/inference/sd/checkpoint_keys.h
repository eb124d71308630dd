// Name maps between the diffusers parameter layout the loaders use and the original single-file
// layouts (LDM for SD 1.x/2.x, SGM for SDXL). Every map is computed from the component's config,
// so any model of a supported family maps, whatever its sizes.
//
// Rules: keys are diffusers names, exactly the names the component's build takes (enumerated by
// building it on the meta device); values are original names WITHOUT the component prefix
// ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.", ...). A
// config the build refuses gives an empty map. Shapes agree between the layouts except where
// OriginalTensor says otherwise and for 1x1 convolutions standing for linear maps (the VAE's
// mid-block attention: [C, C, 1, 1] weights, [C] / [C, 1, 1] biases): a reader accepts a shape
// that equals the diffusers shape up to trailing 1s.
// Costs: one build on the meta device (no memory) plus string work; about 2 ms for SDXL's UNet.
// Threads: no shared state; call from any thread.
#pragma once

#include <map>
#include <string>

#include "server/inference/sd/clip_text_encoder.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"

namespace atelier::sd {

// diffusers parameter name -> original name (without the "model.diffusion_model." prefix), for
// every parameter a UNet with this config has. SD 1.x/2.x and SDXL layouts (input_blocks,
// middle_block, output_blocks, time_embed, label_emb for text_time, in_layers/out_layers/
// emb_layers/skip_connection, op, out.0/out.2). time_embedding.cond_proj (LCM) has no original
// name and is left out.
std::map<std::string, std::string> unet_original_names(const UNetConfig& c);

// The same for the VAE (without "first_stage_model."): encoder.down.{i}.block.{j}, decoder levels
// numbered in reverse (decoder.up.{n-1-i}), mid.block_1/2, mid.attn_1.norm/q/k/v/proj_out,
// nin_shortcut, norm_out.
std::map<std::string, std::string> vae_original_names(const VaeConfig& c);

// CLIP-L as transformers names it (SD 1.x "cond_stage_model.transformer.", SDXL
// "conditioner.embedders.0.transformer."): the names are the same in both layouts.
std::map<std::string, std::string> clip_original_names(const ClipTextConfig& c);

// Where one diffusers tensor comes from in the OpenCLIP layout.
struct OriginalTensor {
  std::string name;
  // >= 0: rows [part * n, (part + 1) * n) of a fused q/k/v tensor (attn.in_proj_weight/bias,
  // n = its first dimension / 3).
  int part = -1;
  // The original is the transpose (text_projection [width, proj], used as x @ P).
  bool transposed = false;
};

// OpenCLIP's text tower (SD 2.x "cond_stage_model.model.", SDXL "conditioner.embedders.1.model."):
// token_embedding.weight, positional_embedding, transformer.resblocks.{l}.attn.in_proj_* (q, k, v
// fused), attn.out_proj, ln_1, ln_2, mlp.c_fc, mlp.c_proj, ln_final, text_projection (transposed;
// files written by diffusers' conversion script hold text_projection.weight as is instead).
std::map<std::string, OriginalTensor> open_clip_original_tensors(const ClipTextConfig& c);

}  // namespace atelier::sd
