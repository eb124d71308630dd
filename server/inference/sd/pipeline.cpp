#include "server/inference/sd/pipeline.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/inference/sd/inpaint.h"
#include "server/inference/sd/model_files.h"

namespace atelier::sd {

namespace {

// What a sampler needs between steps: the scheduler's tables for this run.
struct Sampler {
  SamplerKind kind;
  Prediction prediction;
  std::vector<float> ac;
  StepPlan plan;
  int num_train = 1000;
  int steps = 1;

  double alpha(double t) const { return ac[static_cast<size_t>(t)]; }

  torch::Tensor scale_input(const torch::Tensor& x, size_t i) const {
    if (kind != SamplerKind::kEuler && kind != SamplerKind::kEulerAncestral) return x;
    const double s = plan.sigmas[i];
    return x / std::sqrt(s * s + 1);
  }

  // x0 and epsilon from the model's output at alpha_cumprod `a`.
  std::pair<torch::Tensor, torch::Tensor> split(const torch::Tensor& out, const torch::Tensor& x,
                                                double a) const {
    const double sa = std::sqrt(a), sb = std::sqrt(1 - a);
    if (prediction == Prediction::kEpsilon) return {(x - sb * out) / sa, out};
    return {sa * x - sb * out, sa * out + sb * x};
  }

  torch::Tensor step(const torch::Tensor& out, size_t i, const torch::Tensor& x,
                     torch::Generator& gen) const {
    const double t = plan.timesteps[i];
    switch (kind) {
      case SamplerKind::kDdim: {
        // eta = 0: deterministic.
        const double prev = t - num_train / steps;  // integer division, as diffusers
        const double a_prev = prev >= 0 ? alpha(prev) : plan.final_alpha_cumprod;
        auto [x0, eps] = split(out, x, alpha(t));
        return std::sqrt(a_prev) * x0 + std::sqrt(1 - a_prev) * eps;
      }
      case SamplerKind::kLcm: {
        const double prev = i + 1 < plan.timesteps.size() ? plan.timesteps[i + 1] : t;
        const double a_prev = prev >= 0 ? alpha(prev) : plan.final_alpha_cumprod;
        auto [x0, eps] = split(out, x, alpha(t));
        const double scaled = t * 10.0, sd = 0.5;
        const double c_skip = sd * sd / (scaled * scaled + sd * sd);
        const double c_out = scaled / std::sqrt(scaled * scaled + sd * sd);
        torch::Tensor denoised = c_out * x0 + c_skip * x;
        if (i + 1 == plan.timesteps.size()) return denoised;
        torch::Tensor noise = torch::randn(x.sizes(), gen).to(x.options());
        return std::sqrt(a_prev) * denoised + std::sqrt(1 - a_prev) * noise;
      }
      case SamplerKind::kEuler:
      case SamplerKind::kEulerAncestral: {
        const double sigma = plan.sigmas[i], next = plan.sigmas[i + 1];
        torch::Tensor x0 =
            prediction == Prediction::kEpsilon
                ? x - sigma * out
                : out * (-sigma / std::sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
        torch::Tensor derivative = (x - x0) / sigma;
        if (kind == SamplerKind::kEuler) return x + derivative * (next - sigma);
        const double up = std::sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
        const double down = std::sqrt(next * next - up * up);
        torch::Tensor noise = torch::randn(x.sizes(), gen).to(x.options());
        return x + derivative * (down - sigma) + noise * up;
      }
    }
    return x;
  }

  // img2img: the clean latents noised to timestep index i.
  torch::Tensor add_noise(const torch::Tensor& x0, const torch::Tensor& noise, size_t i) const {
    if (kind == SamplerKind::kEuler || kind == SamplerKind::kEulerAncestral) {
      return x0 + noise * plan.sigmas[i];
    }
    const double a = alpha(plan.timesteps[i]);
    return std::sqrt(a) * x0 + std::sqrt(1 - a) * noise;
  }
};

}  // namespace

torch::Tensor image_to_tensor(const image::Image& img, int w, int h) {
  torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()),
                                     {img.height, img.width, img.channels}, torch::kUInt8)
                        .to(torch::kFloat32);
  if (img.channels == 4) {
    // Transparent pixels have no meaningful colour (often black): flatten over white, as
    // uploads are. Opaque pixels come out exactly as without alpha.
    torch::Tensor a = t.narrow(2, 3, 1) / 255.0;
    t = t.narrow(2, 0, 3) * a + 255.0 * (1 - a);
  } else {
    t = t.narrow(2, 0, 3);
  }
  t = t.permute({2, 0, 1}).unsqueeze(0) / 127.5 - 1.0;
  if (img.width != w || img.height != h) t = torch::upsample_bilinear2d(t, {h, w}, false);
  return t.clamp(-1, 1);
}

image::Image tensor_to_image(const torch::Tensor& image) {
  torch::Tensor u8 =
      (image[0] * 255).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  image::Image out{static_cast<int>(u8.size(1)), static_cast<int>(u8.size(0)), 3,
                   std::vector<uint8_t>(static_cast<size_t>(u8.numel()))};
  std::memcpy(out.pixels.data(), u8.data_ptr<uint8_t>(), out.pixels.size());
  return out;
}

Result<StableDiffusion> StableDiffusion::load(const std::string& dir, torch::Dtype dtype,
                                              torch::Device device) {
  auto index_text = read_model_file(dir + "/model_index.json");
  if (!index_text.is_ok()) {
    return Status::not_found("model folder " + dir + " has no model_index.json");
  }
  auto index = nlohmann::json::parse(*index_text, nullptr, false);
  if (index.is_discarded() || !index.is_object()) {
    return Status::invalid_argument(dir + "/model_index.json is not a JSON object");
  }
  const bool xl = index.value("_class_name", "").rfind("StableDiffusionXL", 0) == 0;
  PipelineParts parts;
  parts.dtype = dtype;
  parts.device = device;
  ComponentParameters& params = parts.parameters;
  auto tokenizer = ClipTokenizer::load(dir + "/tokenizer");
  if (!tokenizer.is_ok()) return tokenizer.status();
  parts.tokenizer = std::move(*tokenizer);
  auto text_encoder = load_component<ClipTextEncoder>(dir + "/text_encoder", "model.safetensors",
                                                      parse_clip_text_config, dtype, device,
                                                      &params["text_encoder"]);
  if (!text_encoder.is_ok()) return text_encoder.status();
  parts.text_encoder = std::move(*text_encoder);
  auto unet = load_component<UNet>(dir + "/unet", "diffusion_pytorch_model.safetensors",
                                   parse_unet_config, dtype, device, &params["unet"]);
  if (!unet.is_ok()) return unet.status();
  parts.unet = std::move(*unet);
  // A VAE that overflows in half precision is kept in float32 (it is small next to the UNet).
  auto vae_config_text = read_model_file(dir + "/vae/config.json");
  if (!vae_config_text.is_ok()) return vae_config_text.status();
  auto vae_config = parse_vae_config(*vae_config_text);
  if (!vae_config.is_ok()) return vae_config.status();
  parts.vae_dtype = vae_config->force_upcast ? torch::kFloat32 : dtype;
  auto vae = load_component<Vae>(dir + "/vae", "diffusion_pytorch_model.safetensors",
                                 parse_vae_config, parts.vae_dtype, device);
  if (!vae.is_ok()) return vae.status();
  parts.vae = std::move(*vae);
  auto sched_text = read_model_file(dir + "/scheduler/scheduler_config.json");
  if (!sched_text.is_ok()) return sched_text.status();
  auto schedule = parse_schedule_config(*sched_text);
  if (!schedule.is_ok()) return schedule.status();
  parts.schedule = *schedule;
  if (xl) {
    auto tokenizer_2 = ClipTokenizer::load(dir + "/tokenizer_2");
    if (!tokenizer_2.is_ok()) return tokenizer_2.status();
    parts.tokenizer_2 = std::move(*tokenizer_2);
    auto text_encoder_2 = load_component<ClipTextEncoder>(
        dir + "/text_encoder_2", "model.safetensors", parse_clip_text_config, dtype, device,
        &params["text_encoder_2"]);
    if (!text_encoder_2.is_ok()) return text_encoder_2.status();
    parts.text_encoder_2 = std::move(*text_encoder_2);
    // diffusers' SDXL pipelines default it to true.
    auto zeros = index.find("force_zeros_for_empty_prompt");
    parts.force_zeros_for_empty_prompt = zeros == index.end() || !zeros->is_boolean() || *zeros;
  }
  return from_parts(std::move(parts));
}

Result<StableDiffusion> StableDiffusion::from_parts(PipelineParts parts) {
  if (!parts.tokenizer) return Status::invalid_argument("the pipeline has no tokenizer");
  if (parts.text_encoder_2.has_value() != parts.tokenizer_2.has_value()) {
    return Status::invalid_argument("text_encoder_2 and tokenizer_2 come together");
  }
  const UNetConfig& u = parts.unet.config();
  int64_t context = parts.text_encoder.config().hidden_size;
  if (parts.text_encoder_2) {
    const ClipTextConfig& c2 = parts.text_encoder_2->config();
    context += c2.hidden_size;
    if (!c2.with_projection) {
      return Status::invalid_argument("text_encoder_2 has no text_projection (pooled embedding)");
    }
    if (!u.text_time) {
      return Status::invalid_argument("an SDXL model's UNet needs addition_embed_type text_time");
    }
    if (u.projection_class_embeddings_input_dim !=
        6 * u.addition_time_embed_dim + c2.projection_dim) {
      return Status::invalid_argument(
          "the UNet's projection_class_embeddings_input_dim is not 6 x addition_time_embed_dim + "
          "text_encoder_2's projection_dim");
    }
  } else if (u.text_time) {
    return Status::invalid_argument(
        "the UNet wants SDXL conditioning but there is no text_encoder_2");
  }
  if (u.cross_attention_dim != context) {
    return Status::invalid_argument(
        "the UNet's cross_attention_dim does not match the text encoders' hidden_size");
  }
  const int64_t latent = parts.vae.config().latent_channels;
  if (u.in_channels != latent && u.in_channels != 2 * latent + 1) {
    return Status::invalid_argument(
        "the UNet's in_channels must be the VAE's latent_channels, or 2 x latent_channels + 1 "
        "for an inpainting UNet");
  }
  StableDiffusion sd(std::move(*parts.tokenizer), std::move(parts.text_encoder),
                     std::move(parts.unet), std::move(parts.vae), parts.schedule, parts.dtype,
                     parts.device);
  sd.tokenizer_2_ = std::move(parts.tokenizer_2);
  sd.text_encoder_2_ = std::move(parts.text_encoder_2);
  sd.force_zeros_for_empty_prompt_ = parts.force_zeros_for_empty_prompt;
  sd.vae_dtype_ = parts.vae_dtype;
  sd.parameters_ = std::move(parts.parameters);
  return sd;
}

PromptEmbeddings StableDiffusion::encode_one(const std::string& text) const {
  auto ids = [&](const ClipTokenizer& t) {
    return torch::tensor(t.encode_padded(text), torch::kLong).unsqueeze(0).to(options_.device());
  };
  if (!text_encoder_2_) return {text_encoder_.forward(ids(tokenizer_)).last_hidden_state, {}};
  // SDXL: the penultimate layers (before any final norm) of both encoders, side by side.
  ClipTextOutput a = text_encoder_.forward(ids(tokenizer_));
  ClipTextOutput b = text_encoder_2_->forward(ids(*tokenizer_2_));
  return {torch::cat({a.hidden_states.end()[-2], b.hidden_states.end()[-2]}, -1), b.text_embeds};
}

Result<torch::Tensor> StableDiffusion::encode_sample(const torch::Tensor& image,
                                                     const torch::Tensor& given,
                                                     torch::Generator& gen) const {
  LatentDistribution d = vae_.encode(image.to(options_.device(), vae_dtype_));
  if (given.defined() && given.sizes() != d.mean.sizes()) {
    return Status::invalid_argument("an encoder noise must have the latents' shape",
                                    "encoder_noise");
  }
  torch::Tensor noise =
      (given.defined() ? given : torch::randn(d.mean.sizes(), gen)).to(d.mean.options());
  return ((d.mean + d.std * noise) * vae_.config().scaling_factor).to(options_);
}

PromptEmbeddings StableDiffusion::encode_prompt(const std::string& prompt,
                                                const std::optional<std::string>& negative,
                                                bool cfg) const {
  torch::NoGradGuard no_grad;
  PromptEmbeddings pos = encode_one(prompt);
  if (!cfg) return pos;
  PromptEmbeddings neg;
  if (!negative && force_zeros_for_empty_prompt_) {
    neg.embeds = torch::zeros_like(pos.embeds);
    if (pos.pooled.defined()) neg.pooled = torch::zeros_like(pos.pooled);
  } else {
    neg = encode_one(negative.value_or(""));
  }
  PromptEmbeddings out{torch::cat({neg.embeds, pos.embeds}, 0), {}};
  if (pos.pooled.defined()) out.pooled = torch::cat({neg.pooled, pos.pooled}, 0);
  return out;
}

Result<torch::Tensor> StableDiffusion::generate(const GenerationRequest& r,
                                                const StepCallback& on_step,
                                                GenerationTrace* trace) const {
  torch::NoGradGuard no_grad;
  const int64_t f = vae_.config().downscale_factor();
  if (r.width < f || r.height < f || r.width % f != 0 || r.height % f != 0) {
    return Status::invalid_argument("width and height must be multiples of " + std::to_string(f),
                                    "width");
  }
  auto plan = plan_steps(schedule_, r.sampler, r.steps);
  if (!plan.is_ok()) return plan.status();
  Sampler s{r.sampler, schedule_.prediction,          alphas_cumprod(schedule_),
            *plan,     schedule_.num_train_timesteps, r.steps};
  torch::Generator gen = at::detail::createCPUGenerator(r.seed);

  // LCM-distilled models take the guidance as an embedding; others classifier-free guidance,
  // which guidance <= 1 turns off (one UNet pass a step instead of two).
  const int64_t cond_dim = unet_.config().time_cond_proj_dim;
  const bool cfg = cond_dim == 0 && r.guidance > 1.0;
  const torch::Tensor w_cond =
      cond_dim > 0 ? guidance_embedding(r.guidance - 1.0, cond_dim).to(options_) : torch::Tensor();
  // An empty negative prompt counts as none given (SDXL then uses zeros, as diffusers does).
  const PromptEmbeddings text = encode_prompt(
      r.prompt,
      r.negative_prompt.empty() ? std::nullopt : std::optional<std::string>(r.negative_prompt),
      cfg);
  const torch::Tensor& embeds = text.embeds;
  if (trace) trace->prompt_embeds = embeds;
  AddedConditioning added;
  if (unet_.config().text_time) {
    // SDXL's size and crop ids (h, w order), the same for both halves of the batch.
    const auto or_size = [](int v, int fallback) {
      return static_cast<float>(v > 0 ? v : fallback);
    };
    torch::Tensor row =
        torch::tensor({or_size(r.original_height, r.height), or_size(r.original_width, r.width),
                       static_cast<float>(r.crop_top), static_cast<float>(r.crop_left),
                       or_size(r.target_height, r.height), or_size(r.target_width, r.width)},
                      torch::kFloat32);
    added.time_ids = row.unsqueeze(0).expand({cfg ? 2 : 1, 6}).contiguous().to(options_);
    added.text_embeds = text.pooled;
    if (trace) {
      trace->add_text_embeds = added.text_embeds;
      trace->add_time_ids = added.time_ids;
    }
  }

  const std::vector<int64_t> shape{1, latent_channels(), r.height / f, r.width / f};
  const std::vector<int64_t> image_shape{1, 3, r.height, r.width};
  const bool inpaint9 = is_inpainting_model();
  torch::Tensor init_image = r.init_image, mask = r.mask;
  double strength = r.strength;
  if (inpaint9 && !mask.defined()) {
    if (init_image.defined()) {
      return Status::invalid_argument("an inpainting model needs a mask with its init image",
                                      "mask");
    }
    // txt2img: everything repainted from a blank (mid-grey) canvas, as A1111 does.
    init_image = torch::zeros(image_shape);
    mask = torch::ones({1, 1, r.height, r.width});
    strength = 1.0;
  }
  if (init_image.defined() && init_image.sizes().vec() != image_shape) {
    return Status::invalid_argument("the init image must be 1 x 3 x height x width", "init_image");
  }
  if (mask.defined() && (!init_image.defined() ||
                         mask.sizes().vec() != std::vector<int64_t>{1, 1, r.height, r.width})) {
    return Status::invalid_argument(
        "a mask needs an init image, and must be 1 x 1 x height x width", "mask");
  }
  size_t first = 0;
  if (init_image.defined()) {
    // img2img and inpaint: start part-way, the last int(steps x strength) timesteps.
    const int init = std::min(static_cast<int>(r.steps * strength), r.steps);
    first = static_cast<size_t>(std::max(r.steps - init, 0));
    if (first >= s.plan.timesteps.size()) {
      return Status::invalid_argument("strength is too low for this many steps", "strength");
    }
  }
  // The noise added to the image's latents (or the start at strength 1): given, or drawn.
  const auto noise_for = [&](const torch::Tensor& given) -> Result<torch::Tensor> {
    torch::Tensor n = (given.defined() ? given : torch::randn(shape, gen)).to(options_);
    if (n.sizes().vec() != shape) {
      return Status::invalid_argument("the noise must be 1 x " + std::to_string(latent_channels()) +
                                          " x H/" + std::to_string(f) + " x W/" + std::to_string(f),
                                      "init_latents");
    }
    return n;
  };

  torch::Tensor x, noise, image_latents, latent_mask, mask_in, masked_in;
  if (mask.defined()) {
    const InpaintMasks m = prepare_inpaint_masks(init_image, mask, f);
    const bool strength_max = strength >= 1.0;
    // diffusers encodes the image whenever a standard UNet blends it back or the start is the
    // image noised; an inpainting UNet at strength 1 starts from pure noise without it.
    if (!inpaint9 || !strength_max) {
      ATELIER_ASSIGN_OR_RETURN(image_latents, encode_sample(init_image, r.encoder_noise, gen));
    }
    // An inpainting model's txt2img takes given initial latents as its noise.
    ATELIER_ASSIGN_OR_RETURN(noise, noise_for(r.add_noise.defined()    ? r.add_noise
                                              : r.init_image.defined() ? torch::Tensor()
                                                                       : r.init_latents));
    x = strength_max ? noise * s.plan.init_noise_sigma : s.add_noise(image_latents, noise, first);
    latent_mask = m.latent.to(options_);
    torch::Tensor masked_latents;
    if (inpaint9 || trace) {
      ATELIER_ASSIGN_OR_RETURN(masked_latents,
                               encode_sample(m.masked_image, r.masked_encoder_noise, gen));
    } else if (!r.masked_encoder_noise.defined()) {
      // A standard UNet never uses it, but diffusers draws it: later draws stay in step.
      (void)torch::randn(shape, gen);
    }
    if (inpaint9) {
      mask_in = cfg ? torch::cat({latent_mask, latent_mask}, 0) : latent_mask;
      masked_in = cfg ? torch::cat({masked_latents, masked_latents}, 0) : masked_latents;
    }
    if (trace) {
      trace->mask_condition = m.condition;
      trace->masked_image = m.masked_image;
      trace->latent_mask = m.latent;
      trace->image_latents = image_latents;
      trace->masked_image_latents = masked_latents;
    }
  } else if (init_image.defined()) {
    ATELIER_ASSIGN_OR_RETURN(torch::Tensor x0, encode_sample(init_image, r.encoder_noise, gen));
    ATELIER_ASSIGN_OR_RETURN(noise, noise_for(r.add_noise));
    x = s.add_noise(x0, noise, first);
  } else {
    ATELIER_ASSIGN_OR_RETURN(noise, noise_for(r.init_latents));
    x = noise * s.plan.init_noise_sigma;
  }
  if (trace && init_image.defined()) trace->init_latents = x;
  // A standard UNet inpaints by putting the original back outside the mask after every step.
  const bool blend = mask.defined() && !inpaint9;

  const size_t total = s.plan.timesteps.size() - first;
  for (size_t i = first; i < s.plan.timesteps.size(); ++i) {
    const double t = s.plan.timesteps[i];
    torch::Tensor in = s.scale_input(cfg ? torch::cat({x, x}, 0) : x, i);
    if (inpaint9) in = torch::cat({in, mask_in, masked_in}, 1);  // mask and latents unscaled
    torch::Tensor out = unet_.forward(in, torch::tensor({t}, torch::kFloat32).to(options_.device()),
                                      embeds, nullptr, w_cond, &added);
    if (trace) {
      trace->timesteps.push_back(t);
      trace->unet_inputs.push_back(in);
      trace->unet_outputs.push_back(out);
    }
    if (cfg) {
      auto parts = out.chunk(2, 0);
      out = parts[0] + r.guidance * (parts[1] - parts[0]);
    }
    x = s.step(out, i, x, gen);
    if (blend) {
      // The original re-noised to the next timestep (clean after the last one).
      torch::Tensor proper = i + 1 < s.plan.timesteps.size()
                                 ? s.add_noise(image_latents, noise, i + 1)
                                 : image_latents;
      if (trace) {
        trace->latents_stepped.push_back(x);
        trace->init_latents_proper.push_back(proper);
      }
      x = (1 - latent_mask) * proper + latent_mask * x;
    }
    if (trace) trace->latents.push_back(x);
    if (on_step && !on_step(static_cast<int>(i - first + 1), static_cast<int>(total), x)) {
      return Status::cancelled("cancelled");
    }
  }
  torch::Tensor decoded = vae_.decode((x / vae_.config().scaling_factor).to(vae_dtype_));
  if (trace) trace->decoded = decoded;
  return (decoded / 2 + 0.5).clamp(0, 1).to(torch::kCPU, torch::kFloat32);
}

}  // namespace atelier::sd
