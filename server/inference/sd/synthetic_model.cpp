#include "server/inference/sd/synthetic_model.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

#include "server/inference/sd/clip_text_encoder.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModelIndex = R"({
  "_class_name": "StableDiffusionPipeline",
  "feature_extractor": [null, null],
  "safety_checker": [null, null],
  "requires_safety_checker": false,
  "scheduler": ["diffusers", "DDIMScheduler"],
  "text_encoder": ["transformers", "CLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"],
  "unet": ["diffusers", "UNet2DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]
})";

// The VAE of SD 1.x and 2.x (the same architecture; sample_size differs).
constexpr const char* kVae = R"({
  "_class_name": "AutoencoderKL",
  "act_fn": "silu",
  "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                       "DownEncoderBlock2D"],
  "in_channels": 3,
  "latent_channels": 4,
  "layers_per_block": 2,
  "norm_num_groups": 32,
  "out_channels": 3,
  "sample_size": 512,
  "scaling_factor": 0.18215,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D",
                     "UpDecoderBlock2D"]
})";

std::string unet_config(const char* heads, int cross_dim, bool linear_projection) {
  return std::string(R"({
  "_class_name": "UNet2DConditionModel",
  "act_fn": "silu",
  "attention_head_dim": )") +
         heads + R"(,
  "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false,
  "cross_attention_dim": )" +
         std::to_string(cross_dim) + R"(,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                       "DownBlock2D"],
  "downsample_padding": 1,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "out_channels": 4,
  "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                     "CrossAttnUpBlock2D"],
  "use_linear_projection": )" +
         (linear_projection ? "true" : "false") + "\n}";
}

std::string text_config(int hidden, int intermediate, int heads, int layers, const char* act) {
  return R"({
  "architectures": ["CLIPTextModel"],
  "bos_token_id": 0,
  "eos_token_id": 2,
  "hidden_act": ")" +
         std::string(act) + R"(",
  "hidden_size": )" +
         std::to_string(hidden) + R"(,
  "intermediate_size": )" +
         std::to_string(intermediate) + R"(,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 77,
  "model_type": "clip_text_model",
  "num_attention_heads": )" +
         std::to_string(heads) + R"(,
  "num_hidden_layers": )" +
         std::to_string(layers) + R"(,
  "pad_token_id": 1,
  "vocab_size": 49408
})";
}

std::string scheduler_config(const char* prediction) {
  return R"({
  "_class_name": "DDIMScheduler",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "clip_sample": false,
  "num_train_timesteps": 1000,
  "prediction_type": ")" +
         std::string(prediction) + R"(",
  "set_alpha_to_one": false,
  "steps_offset": 1
})";
}

std::string tokenizer_config(const char* pad) {
  return std::string(R"({
  "bos_token": "<|startoftext|>",
  "eos_token": "<|endoftext|>",
  "model_max_length": 77,
  "pad_token": ")") +
         pad + R"(",
  "tokenizer_class": "CLIPTokenizer",
  "unk_token": "<|endoftext|>"
})";
}

// stabilityai/stable-diffusion-xl-base-1.0's configs (the keys that shape the model).
constexpr const char* kSdxlModelIndex = R"({
  "_class_name": "StableDiffusionXLPipeline",
  "force_zeros_for_empty_prompt": true,
  "scheduler": ["diffusers", "EulerDiscreteScheduler"],
  "text_encoder": ["transformers", "CLIPTextModel"],
  "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
  "tokenizer": ["transformers", "CLIPTokenizer"],
  "tokenizer_2": ["transformers", "CLIPTokenizer"],
  "unet": ["diffusers", "UNet2DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]
})";

constexpr const char* kSdxlUnet = R"({
  "_class_name": "UNet2DConditionModel",
  "act_fn": "silu",
  "addition_embed_type": "text_time",
  "addition_embed_type_num_heads": 64,
  "addition_time_embed_dim": 256,
  "attention_head_dim": [5, 10, 20],
  "block_out_channels": [320, 640, 1280],
  "center_input_sample": false,
  "cross_attention_dim": 2048,
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "downsample_padding": 1,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "mid_block_type": "UNetMidBlock2DCrossAttn",
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "out_channels": 4,
  "projection_class_embeddings_input_dim": 2816,
  "resnet_time_scale_shift": "default",
  "sample_size": 128,
  "transformer_layers_per_block": [1, 2, 10],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  "use_linear_projection": true
})";

constexpr const char* kSdxlVae = R"({
  "_class_name": "AutoencoderKL",
  "act_fn": "silu",
  "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                       "DownEncoderBlock2D"],
  "force_upcast": true,
  "in_channels": 3,
  "latent_channels": 4,
  "layers_per_block": 2,
  "norm_num_groups": 32,
  "out_channels": 3,
  "sample_size": 1024,
  "scaling_factor": 0.13025,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D",
                     "UpDecoderBlock2D"]
})";

// OpenCLIP ViT-bigG/14's text tower, all 32 layers, with its projection.
constexpr const char* kSdxlTextEncoder2 = R"({
  "architectures": ["CLIPTextModelWithProjection"],
  "bos_token_id": 0,
  "eos_token_id": 2,
  "hidden_act": "gelu",
  "hidden_size": 1280,
  "intermediate_size": 5120,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 77,
  "model_type": "clip_text_model",
  "num_attention_heads": 20,
  "num_hidden_layers": 32,
  "pad_token_id": 1,
  "projection_dim": 1280,
  "vocab_size": 49408
})";

constexpr const char* kSdxlScheduler = R"({
  "_class_name": "EulerDiscreteScheduler",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "clip_sample": false,
  "interpolation_type": "linear",
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "sample_max_value": 1.0,
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "steps_offset": 1,
  "timestep_spacing": "leading",
  "trained_betas": null,
  "use_karras_sigmas": false
})";

Status write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::io_error("could not write " + path.string());
  return Status::ok();
}

// Builds a component from its config text (parsed by the same code StableDiffusion::load
// uses) with `weights`.
template <class Model, auto Parse>
Status build_from(const std::string& config, Weights& weights) {
  auto c = Parse(config);
  if (!c.is_ok()) return c.status();
  return Model::build(*c, weights).status();
}

// The three weighted components: config text, weights file, builder.
struct Component {
  std::string ModelConfigs::*config;
  const char* weights_file;
  Status (*build)(const std::string& config, Weights& weights);
};
// text_encoder_2 is skipped when its config is empty.
constexpr Component kComponents[] = {
    {&ModelConfigs::text_encoder, "text_encoder/model.safetensors",
     &build_from<ClipTextEncoder, parse_clip_text_config>},
    {&ModelConfigs::unet, "unet/diffusion_pytorch_model.safetensors",
     &build_from<UNet, parse_unet_config>},
    {&ModelConfigs::vae, "vae/diffusion_pytorch_model.safetensors",
     &build_from<Vae, parse_vae_config>},
    {&ModelConfigs::text_encoder_2, "text_encoder_2/model.safetensors",
     &build_from<ClipTextEncoder, parse_clip_text_config>}};

Result<std::string> serialize_weights(const Weights& weights, safetensors::DType dtype) {
  const torch::Dtype as = dtype == safetensors::DType::kF16 ? torch::kHalf : torch::kFloat32;
  std::vector<safetensors::TensorData> out;
  for (const auto& [name, t] : weights.tensors()) {
    torch::Tensor c = t.to(torch::kCPU, as).contiguous();
    safetensors::TensorData d{name, dtype, c.sizes().vec(), {}};
    d.bytes.resize(static_cast<size_t>(c.numel() * c.element_size()));
    std::memcpy(d.bytes.data(), c.data_ptr(), d.bytes.size());
    out.push_back(std::move(d));
  }
  return safetensors::serialize(out, {{"format", "pt"}});
}

}  // namespace

ModelConfigs sd15_configs() {
  ModelConfigs c{unet_config("8", 768, false), kVae, text_config(768, 3072, 12, 12, "quick_gelu"),
                 scheduler_config("epsilon"), tokenizer_config("<|endoftext|>")};
  c.model_index = kModelIndex;
  return c;
}

ModelConfigs sd21_configs() {
  // SD 2.x: OpenCLIP ViT-H's text tower without its last layer (23 of 24), heads per block,
  // linear projections, v-prediction, "!" as padding.
  ModelConfigs c{unet_config("[5, 10, 20, 20]", 1024, true), kVae,
                 text_config(1024, 4096, 16, 23, "gelu"), scheduler_config("v_prediction"),
                 tokenizer_config("!")};
  c.model_index = kModelIndex;
  return c;
}

ModelConfigs sdxl_configs() {
  ModelConfigs c{kSdxlUnet, kSdxlVae, text_config(768, 3072, 12, 12, "quick_gelu"), kSdxlScheduler,
                 tokenizer_config("<|endoftext|>")};
  c.text_encoder_2 = kSdxlTextEncoder2;
  c.tokenizer_2 = tokenizer_config("!");
  c.model_index = kSdxlModelIndex;
  return c;
}

Result<ParameterCounts> count_parameters(const ModelConfigs& configs) {
  ParameterCounts counts;
  int64_t* count_of[] = {&counts.text_encoder, &counts.unet, &counts.vae,
                         &counts.text_encoder_2};  // kComponents' order
  for (size_t i = 0; i < std::size(kComponents); ++i) {
    Weights w = Weights::synthetic(0, torch::kFloat32, torch::Device(torch::kMeta));
    const Component& part = kComponents[i];
    if ((configs.*part.config).empty()) continue;
    if (Status st = part.build(configs.*part.config, w); !st.is_ok()) return st;
    *count_of[i] = w.parameter_count();
  }
  return counts;
}

Status write_synthetic_model(const std::string& dir, const ModelConfigs& configs,
                             const std::string& vocab_dir, uint64_t seed,
                             safetensors::DType dtype) {
  if (dtype != safetensors::DType::kF16 && dtype != safetensors::DType::kF32) {
    return Status::invalid_argument("synthetic weights are stored as F16 or F32");
  }
  const fs::path root(dir);
  const bool second = !configs.text_encoder_2.empty();
  std::error_code ec;
  for (const char* sub :
       {"unet", "vae", "text_encoder", "tokenizer", "scheduler", "text_encoder_2", "tokenizer_2"}) {
    if (!second && std::string_view(sub).ends_with("_2")) continue;
    fs::create_directories(root / sub, ec);
    if (ec) return Status::io_error("could not create " + (root / sub).string());
  }
  auto vocab = read_model_file(vocab_dir + "/vocab.json");
  if (!vocab.is_ok()) return vocab.status();
  auto merges = read_model_file(vocab_dir + "/merges.txt");
  if (!merges.is_ok()) return merges.status();
  const std::string default_index = kModelIndex;
  std::vector<std::pair<fs::path, const std::string*>> files{
      {root / "model_index.json",
       configs.model_index.empty() ? &default_index : &configs.model_index},
      {root / "unet/config.json", &configs.unet},
      {root / "vae/config.json", &configs.vae},
      {root / "text_encoder/config.json", &configs.text_encoder},
      {root / "scheduler/scheduler_config.json", &configs.scheduler},
      {root / "tokenizer/tokenizer_config.json", &configs.tokenizer},
      {root / "tokenizer/vocab.json", &*vocab},
      {root / "tokenizer/merges.txt", &*merges}};
  if (second) {
    files.insert(files.end(), {{root / "text_encoder_2/config.json", &configs.text_encoder_2},
                               {root / "tokenizer_2/tokenizer_config.json", &configs.tokenizer_2},
                               {root / "tokenizer_2/vocab.json", &*vocab},
                               {root / "tokenizer_2/merges.txt", &*merges}});
  }
  for (const auto& [path, text] : files) {
    if (Status st = write_file(path, *text); !st.is_ok()) return st;
  }
  uint64_t part_seed = seed;
  for (const Component& part : kComponents) {
    if ((configs.*part.config).empty()) continue;
    Weights w = Weights::synthetic(part_seed++);
    if (Status st = part.build(configs.*part.config, w); !st.is_ok()) return st;
    auto bytes = serialize_weights(w, dtype);
    if (!bytes.is_ok()) return bytes.status();
    if (Status st = write_file(root / part.weights_file, *bytes); !st.is_ok()) return st;
  }
  return Status::ok();
}

}  // namespace atelier::sd
