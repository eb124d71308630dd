// Stable Diffusion inpainting against diffusers' StableDiffusionInpaintPipeline on the
// sd-tiny-inpaint (4-channel UNet, blended back outside the mask) and sd-tiny-inpaint9
// (9-channel inpainting UNet) fixtures: for DDIM, Euler and Euler at strength 1, the masks and the
// masked image exactly, the image and masked-image latents (1e-4), every step's UNet input,
// sampler output, blended-in original and latents, the decoded image and the output (1e-3), with
// the fixture's stored random draws. Also the 9-channel UNet alone, the generator's inpaint and
// its remix from an upload, what discovery lists, and a 9-channel single-file checkpoint.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/image.h"
#include "common/safetensors.h"
#include "server/inference/sd/inpaint.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/sd_generator.h"
#include "server/inference/sd/single_file.h"
#include "server/inference/sd/single_file_pipeline.h"
#include "server/inference/sd/unet.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::fixture_tensor;
using fixture::kTiny;
using fixture::max_diff;

const fs::path kInpaint4 = "../shared/fixtures/sd-tiny-inpaint";
const fs::path kInpaint9 = "../shared/fixtures/sd-tiny-inpaint9";
const fs::path kSd15 = "../shared/fixtures/sd15-tiny-ldm";

#define REQUIRE_FIXTURE(dir) \
  if (!fs::exists(dir)) GTEST_SKIP() << "skipped: " << (dir).string() << " is absent"

image::Image read_png(const fs::path& p) {
  auto bytes = read_model_file(p.string());
  EXPECT_TRUE(bytes.is_ok()) << p;
  if (!bytes.is_ok()) return {};
  auto img = image::decode_png(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
  EXPECT_TRUE(img.is_ok()) << p;
  return img.is_ok() ? *img : image::Image{};
}

// The fixture's grey mask.png (decoded as RGB): its first channel.
image::Mask read_mask(const fs::path& p) {
  const image::Image img = read_png(p);
  image::Mask m{img.width, img.height, {}};
  for (size_t i = 0; i < img.pixels.size(); i += static_cast<size_t>(img.channels)) {
    m.values.push_back(img.pixels[i]);
  }
  return m;
}

// Pipelines are loaded once per process (the tiny models load in milliseconds, but the suite
// runs many cases).
const StableDiffusion& pipeline(const fs::path& dir) {
  static std::map<std::string, StableDiffusion> loaded;
  auto it = loaded.find(dir.string());
  if (it == loaded.end()) {
    auto p = StableDiffusion::load(dir.string());
    EXPECT_TRUE(p.is_ok()) << p.status().message();
    it = loaded.emplace(dir.string(), std::move(*p)).first;
  }
  return it->second;
}

struct Case {
  const char* run;
  SamplerKind sampler;
  double strength;
  int steps;
  uint64_t seed;
};

const Case kCases[] = {{"inpaint_ddim", SamplerKind::kDdim, 0.75, 8, 90},
                       {"inpaint_euler", SamplerKind::kEuler, 0.75, 8, 91},
                       {"inpaint_euler_strength1", SamplerKind::kEuler, 1.0, 6, 92}};

// The fixture's request for `c`; with `stored_draws`, the random tensors the reference drew.
GenerationRequest request_for(const fs::path& fixture, const Case& c, const safetensors::File& ref,
                              bool stored_draws) {
  GenerationRequest r;
  r.prompt = "a cat sitting on a wooden bench";
  r.negative_prompt = "blurry, low quality";
  r.width = r.height = 64;
  r.steps = c.steps;
  r.guidance = 7.5;
  r.sampler = c.sampler;
  r.seed = c.seed;
  r.strength = c.strength;
  r.init_image = image_to_tensor(read_png(fixture / "expected/init_image.png"), 64, 64);
  r.mask = mask_to_tensor(read_mask(fixture / "expected/mask.png"), 64, 64);
  if (stored_draws) {
    if (ref.find("image_encoder_sample_noise")) {
      r.encoder_noise = fixture_tensor(ref, "image_encoder_sample_noise");
    }
    r.add_noise = fixture_tensor(ref, "noise");
    r.masked_encoder_noise = fixture_tensor(ref, "masked_image_encoder_sample_noise");
  }
  return r;
}

// One case of one fixture: every traced tensor against the stored ones.
void check_case(const fs::path& fixture, const fs::path& model, const Case& c) {
  SCOPED_TRACE(fixture.filename().string() + " " + c.run);
  auto ref = safetensors::File::open(
      (fixture / "expected" / (std::string(c.run) + ".safetensors")).string());
  ASSERT_TRUE(ref.is_ok());
  const StableDiffusion& pipe = pipeline(model);
  const bool nine = pipe.is_inpainting_model();
  const GenerationRequest r = request_for(fixture, c, *ref, true);
  EXPECT_TRUE(torch::equal(r.init_image, fixture_tensor(*ref, "image_preprocessed")));
  GenerationTrace trace;
  auto image = pipe.generate(r, {}, &trace);
  ASSERT_TRUE(image.is_ok()) << image.status().message();

  EXPECT_TRUE(torch::equal(trace.mask_condition, fixture_tensor(*ref, "mask_condition")));
  EXPECT_TRUE(torch::equal(trace.masked_image, fixture_tensor(*ref, "masked_image")));
  EXPECT_TRUE(torch::equal(trace.latent_mask, fixture_tensor(*ref, "mask")));
  if (ref->find("image_latents")) {
    EXPECT_LT(max_diff(trace.image_latents, fixture_tensor(*ref, "image_latents")), 1e-4);
  } else {
    EXPECT_FALSE(trace.image_latents.defined()) << "a 9-channel UNet at strength 1 skips it";
  }
  EXPECT_LT(max_diff(trace.masked_image_latents, fixture_tensor(*ref, "masked_image_latents")),
            1e-4);
  EXPECT_LT(max_diff(trace.init_latents, fixture_tensor(*ref, "latents_0")), 1e-3);
  EXPECT_LT(max_diff(trace.prompt_embeds, fixture_tensor(*ref, "prompt_embeds")), 1e-4);

  const torch::Tensor want_t = fixture_tensor(*ref, "timesteps");
  const size_t n = static_cast<size_t>(want_t.size(0));
  ASSERT_EQ(trace.timesteps.size(), n);
  ASSERT_EQ(trace.latents_stepped.size(), nine ? 0u : n);
  const torch::Tensor keep = 1 - trace.latent_mask;
  for (size_t i = 0; i < n; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const std::string s = std::to_string(i);
    EXPECT_NEAR(trace.timesteps[i], want_t[static_cast<int64_t>(i)].item<double>(), 1e-4);
    EXPECT_LT(max_diff(trace.unet_inputs[i], fixture_tensor(*ref, "unet_input_" + s)), 1e-3);
    EXPECT_LT(max_diff(trace.unet_outputs[i], fixture_tensor(*ref, "unet_output_" + s)), 1e-3);
    EXPECT_LT(max_diff(trace.latents[i], fixture_tensor(*ref, "latents_" + std::to_string(i + 1))),
              1e-3);
    if (nine) continue;
    EXPECT_LT(max_diff(trace.latents_stepped[i], fixture_tensor(*ref, "latents_stepped_" + s)),
              1e-3);
    if (i + 1 < n) {
      EXPECT_LT(
          max_diff(trace.init_latents_proper[i], fixture_tensor(*ref, "init_latents_proper_" + s)),
          1e-3);
    }
    // Outside the latent mask the step's result is exactly the re-noised original.
    EXPECT_LT(max_diff(trace.latents[i] * keep, trace.init_latents_proper[i] * keep), 1e-5);
  }
  if (!nine) {
    // ... and after the last step the original's clean latents.
    EXPECT_LT(max_diff(trace.latents.back() * keep, trace.image_latents * keep), 1e-6);
    EXPECT_LT(max_diff(trace.latents.back() * keep, fixture_tensor(*ref, "image_latents") * keep),
              1e-4);
  }
  EXPECT_LT(max_diff(trace.decoded, fixture_tensor(*ref, "decoded")), 1e-3);
  EXPECT_LT(max_diff(image->permute({0, 2, 3, 1}), fixture_tensor(*ref, "image")), 1e-3);
  // The 8-bit image: at most one level off on a handful of pixels.
  const image::Image got = tensor_to_image(*image);
  const image::Image want = read_png(fixture / "expected" / (std::string(c.run) + ".png"));
  ASSERT_EQ(got.pixels.size(), want.pixels.size());
  int off = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i) {
    const int d = std::abs(int{got.pixels[i]} - int{want.pixels[i]});
    EXPECT_LE(d, 1);
    off += d > 0;
  }
  EXPECT_LT(off, 20);
}

TEST(SdInpaintTest, StandardUNetBlendsLikeDiffusers) {
  REQUIRE_FIXTURE(kInpaint4);
  REQUIRE_FIXTURE(kTiny);
  EXPECT_FALSE(pipeline(kTiny).is_inpainting_model());
  for (const Case& c : kCases) check_case(kInpaint4, kTiny, c);
}

TEST(SdInpaintTest, InpaintingUNetTakesMaskAndMaskedImageLikeDiffusers) {
  REQUIRE_FIXTURE(kInpaint9);
  EXPECT_TRUE(pipeline(kInpaint9).is_inpainting_model());
  for (const Case& c : kCases) check_case(kInpaint9, kInpaint9, c);
}

// Without stored draws the pipeline draws from the seed on the CPU generator, in diffusers'
// order (4-channel and 9-channel below strength 1: image sample, noise, masked-image sample;
// 9-channel at strength 1: noise, masked-image sample), which reproduces the reference run.
TEST(SdInpaintTest, ReproducesDiffusersFromTheSeedAlone) {
  REQUIRE_FIXTURE(kTiny);
  for (const auto& [fixture, model] :
       {std::pair{kInpaint4, kTiny}, std::pair{kInpaint9, kInpaint9}}) {
    if (!fs::exists(fixture)) GTEST_SKIP() << "skipped: " << fixture.string() << " is absent";
    for (const Case& c : kCases) {
      SCOPED_TRACE(fixture.filename().string() + " " + c.run);
      auto ref = safetensors::File::open(
          (fixture / "expected" / (std::string(c.run) + ".safetensors")).string());
      ASSERT_TRUE(ref.is_ok());
      GenerationRequest r = request_for(fixture, c, *ref, false);
      GenerationTrace trace;
      auto a = pipeline(model).generate(r, {}, &trace);
      ASSERT_TRUE(a.is_ok()) << a.status().message();
      EXPECT_LT(max_diff(trace.init_latents, fixture_tensor(*ref, "latents_0")), 1e-3);
      EXPECT_LT(max_diff(trace.masked_image_latents, fixture_tensor(*ref, "masked_image_latents")),
                1e-4);
      EXPECT_LT(max_diff(a->permute({0, 2, 3, 1}), fixture_tensor(*ref, "image")), 1e-3);
    }
  }
  // Another seed, another image.
  auto ref = safetensors::File::open((kInpaint4 / "expected/inpaint_euler.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  GenerationRequest r = request_for(kInpaint4, kCases[1], *ref, false);
  r.seed += 1;
  auto other = pipeline(kTiny).generate(r);
  ASSERT_TRUE(other.is_ok());
  EXPECT_GT(max_diff(other->permute({0, 2, 3, 1}), fixture_tensor(*ref, "image")), 1e-2);
}

TEST(SdInpaintTest, RefusesMasksThatDoNotFit) {
  REQUIRE_FIXTURE(kInpaint9);
  GenerationRequest r;
  r.prompt = "x";
  r.width = r.height = 64;
  r.steps = 2;
  r.guidance = 1;
  r.mask = torch::ones({1, 1, 64, 64});
  auto no_image = pipeline(kInpaint9).generate(r);
  ASSERT_FALSE(no_image.is_ok());
  EXPECT_EQ(no_image.status().field(), "mask");
  r.init_image = torch::zeros({1, 3, 64, 64});
  r.mask = torch::ones({1, 1, 32, 64});
  EXPECT_EQ(pipeline(kInpaint9).generate(r).status().field(), "mask");
  // An inpainting model's img2img has no mask to give its UNet.
  r.mask = torch::Tensor();
  EXPECT_EQ(pipeline(kInpaint9).generate(r).status().field(), "mask");
}

TEST(SdInpaintTest, InpaintingUNetMatchesDiffusersAlone) {
  REQUIRE_FIXTURE(kInpaint9);
  torch::NoGradGuard no_grad;
  auto unet = UNet::load((kInpaint9 / "unet").string());
  ASSERT_TRUE(unet.is_ok()) << unet.status().message();
  EXPECT_EQ(unet->config().in_channels, 9);
  auto ref = safetensors::File::open((kInpaint9 / "expected/unet.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  const torch::Tensor sample = fixture_tensor(*ref, "sample");
  const torch::Tensor ehs = fixture_tensor(*ref, "encoder_hidden_states");
  std::map<std::string, torch::Tensor> trace;
  torch::Tensor out = unet->forward(sample, fixture_tensor(*ref, "timestep_t500"), ehs, &trace);
  EXPECT_LT(max_diff(out, fixture_tensor(*ref, "out_t500")), 1e-4);
  EXPECT_LT(max_diff(trace.at("conv_in"), fixture_tensor(*ref, "intermediate_t500_conv_in")), 1e-4);
  EXPECT_LT(max_diff(trace.at("mid_block"), fixture_tensor(*ref, "intermediate_t500_mid_block")),
            1e-4);
  out = unet->forward(sample, fixture_tensor(*ref, "timestep_tvec_999_1"), ehs);
  EXPECT_LT(max_diff(out, fixture_tensor(*ref, "out_tvec_999_1")), 1e-4);
}

// RGBA parents (uploads kept with alpha) are flattened over white, opaque pixels unchanged.
TEST(SdInpaintTest, ImageToTensorFlattensAlphaOverWhite) {
  image::Image rgba{2, 1, 4, {10, 20, 30, 255, 0, 0, 0, 0}};
  const torch::Tensor t = image_to_tensor(rgba, 2, 1);
  EXPECT_FLOAT_EQ(t[0][0][0][0].item<float>(), 10 / 127.5f - 1);
  EXPECT_FLOAT_EQ(t[0][2][0][0].item<float>(), 30 / 127.5f - 1);
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(t[0][c][0][1].item<float>(), 1.0f);
}

class NoProgress : public inference::ProgressSink {
 public:
  void on_step(int step, int steps, const inference::Image*) override {
    EXPECT_LE(step, steps);
    ++calls;
  }
  int calls = 0;
};

std::unique_ptr<inference::Generator> generator_for(const fs::path& model) {
  auto info = inference::sd_model_info(model.string());
  EXPECT_TRUE(info.is_ok()) << info.status().message();
  auto g = inference::sd_generator_factory(*info, model.string(), {})("cpu");
  EXPECT_TRUE(g.is_ok()) << g.status().message();
  return std::move(*g);
}

// kInpaint takes edit.h's prepared image and mask, draws from seed + i per image, and gives what
// the pipeline gives for that inpaint.
TEST(SdInpaintTest, GeneratorInpaintsThePreparedInput) {
  REQUIRE_FIXTURE(kInpaint4);
  REQUIRE_FIXTURE(kTiny);
  auto gen = generator_for(kTiny);
  inference::GenerateRequest req;
  req.prompt = "a cat";
  req.width = req.height = 64;
  req.steps = 4;
  req.guidance = 7.5;
  req.sampler = "ddim";
  req.seed = 5;
  req.count = 2;
  req.mode = inference::Mode::kInpaint;
  req.strength = 0.75;
  req.parent = inference::ParentImage{64, 64, 0, "", "", "", "/nonexistent.png", true};
  req.inpaint = inference::InpaintInput{read_png(kInpaint4 / "expected/init_image.png"),
                                        read_mask(kInpaint4 / "expected/mask.png")};
  NoProgress progress;
  inference::CancelToken cancel;
  auto out = gen->generate(req, progress, cancel);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ(progress.calls, 6) << "int(4 x 0.75) steps per image";
  GenerationRequest r;
  r.prompt = "a cat";
  r.width = r.height = 64;
  r.steps = 4;
  r.guidance = 7.5;
  r.sampler = SamplerKind::kDdim;
  r.strength = 0.75;
  r.init_image = image_to_tensor(req.inpaint->image, 64, 64);
  r.mask = mask_to_tensor(req.inpaint->mask, 64, 64);
  for (int i = 0; i < 2; ++i) {
    r.seed = 5 + static_cast<uint64_t>(i);
    auto want = pipeline(kTiny).generate(r);
    ASSERT_TRUE(want.is_ok());
    EXPECT_EQ((*out)[static_cast<size_t>(i)].image.pixels, tensor_to_image(*want).pixels) << i;
    EXPECT_EQ((*out)[static_cast<size_t>(i)].seed, 5 + i);
  }
  // No prepared input: refused, naming the mask.
  req.inpaint.reset();
  EXPECT_EQ(gen->generate(req, progress, cancel).status().field(), "mask_image_id");
}

// An upload has no lineage: variation and remix start from its pixels (RGBA flattened) through
// the img2img path, as from any parent.
TEST(SdInpaintTest, GeneratorRemixesAnUploadedParent) {
  REQUIRE_FIXTURE(kTiny);
  testing::TempDir dir;
  image::Image upload{48, 40, 4, std::vector<uint8_t>(48 * 40 * 4)};
  for (size_t i = 0; i < upload.pixels.size(); ++i) {
    upload.pixels[i] = static_cast<uint8_t>(i % 4 == 3 ? (i / 4 % 7 ? 255 : 0) : i * 37 % 251);
  }
  auto png = image::encode_png(upload);
  ASSERT_TRUE(png.is_ok());
  testing::write_file(dir / "upload.png", std::string(png->begin(), png->end()));
  auto gen = generator_for(kTiny);
  inference::GenerateRequest req;
  req.prompt = "a cat";
  req.width = req.height = 64;
  req.steps = 4;
  req.guidance = 7.5;
  req.sampler = "euler";
  req.seed = 11;
  req.mode = inference::Mode::kRemix;
  req.strength = 0.5;
  req.parent = inference::ParentImage{48, 40, 0, "", "", "", (dir / "upload.png").string(), true};
  NoProgress progress;
  inference::CancelToken cancel;
  auto out = gen->generate(req, progress, cancel);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].image.width, 64);
  GenerationRequest r;
  r.prompt = "a cat";
  r.width = r.height = 64;
  r.steps = 4;
  r.guidance = 7.5;
  r.sampler = SamplerKind::kEuler;
  r.seed = 11;
  r.strength = 0.5;
  r.init_image = image_to_tensor(upload, 64, 64);
  auto want = pipeline(kTiny).generate(r);
  ASSERT_TRUE(want.is_ok());
  EXPECT_EQ((*out)[0].image.pixels, tensor_to_image(*want).pixels);
  r.strength = 0.9;  // strength is honoured
  EXPECT_NE((*out)[0].image.pixels, tensor_to_image(*pipeline(kTiny).generate(r)).pixels);
}

TEST(SdInpaintTest, DiscoveryListsEditModesAndInpaintingModels) {
  REQUIRE_FIXTURE(kInpaint9);
  REQUIRE_FIXTURE(kTiny);
  using inference::Mode;
  auto tiny = inference::sd_model_info(kTiny.string());
  ASSERT_TRUE(tiny.is_ok());
  EXPECT_FALSE(tiny->inpainting_model);
  EXPECT_EQ(tiny->modes, (std::vector<Mode>{Mode::kTxt2Img, Mode::kVariation, Mode::kRemix,
                                            Mode::kUpscale, Mode::kInpaint, Mode::kOutpaint}));
  auto nine = inference::sd_model_info(kInpaint9.string());
  ASSERT_TRUE(nine.is_ok()) << nine.status().message();
  EXPECT_TRUE(nine->inpainting_model);
  EXPECT_EQ(nine->modes, (std::vector<Mode>{Mode::kTxt2Img, Mode::kInpaint, Mode::kOutpaint}));
  EXPECT_TRUE(nine->upscale_factors.empty());

  // Its txt2img is an inpaint of a blank canvas; img2img modes are refused by name.
  auto gen = generator_for(kInpaint9);
  inference::GenerateRequest req;
  req.prompt = "a cat";
  req.width = req.height = 64;
  req.steps = 2;
  req.guidance = 7.5;
  req.sampler = "euler";
  NoProgress progress;
  inference::CancelToken cancel;
  auto out = gen->generate(req, progress, cancel);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ((*out)[0].image.width, 64);
  req.mode = Mode::kVariation;
  req.strength = 0.5;
  req.parent = inference::ParentImage{64, 64, 0, "", "", "", "/nonexistent.png", true};
  EXPECT_EQ(gen->generate(req, progress, cancel).status().field(), "mode");

  // A UNet taking other extra inputs (a depth model's 5 channels) is listed with the reason.
  testing::TempDir dir;
  const fs::path depth = dir / "depth";
  fs::create_directories(depth / "unet");
  for (const char* part : {"model_index.json", "tokenizer", "text_encoder", "vae", "scheduler"}) {
    fs::create_symlink(fs::absolute(kTiny / part), depth / part);
  }
  fs::create_symlink(fs::absolute(kTiny / "unet/diffusion_pytorch_model.safetensors"),
                     depth / "unet/diffusion_pytorch_model.safetensors");
  auto unet = nlohmann::json::parse(*read_model_file((kTiny / "unet/config.json").string()));
  unet["in_channels"] = 5;
  testing::write_file(depth / "unet/config.json", unet.dump());
  auto refused = inference::sd_model_info(depth.string());
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("5 input channels"), std::string::npos)
      << refused.status().message();
}

// A 9-channel SD 1.5-layout single file (conv_in [32, 9, 3, 3]) loads as an inpainting pipeline
// and inpaints.
TEST(SdInpaintTest, NineChannelSingleFileLoadsAndInpaints) {
  REQUIRE_FIXTURE(kSd15);
  testing::TempDir dir;
  const auto read = [](const char* f) { return *read_model_file((kSd15 / f).string()); };
  auto unet = nlohmann::json::parse(read("unet/config.json"));
  unet["in_channels"] = 9;
  ModelConfigs configs{unet.dump(), read("vae/config.json"), read("text_encoder/config.json"),
                       read("scheduler/scheduler_config.json"),
                       read("tokenizer/tokenizer_config.json")};
  const fs::path cfg = dir / "configs";
  testing::write_file(cfg / "unet/config.json", configs.unet);
  testing::write_file(cfg / "vae/config.json", configs.vae);
  testing::write_file(cfg / "text_encoder/config.json", configs.text_encoder);
  testing::write_file(cfg / "scheduler/scheduler_config.json", configs.scheduler);
  for (const char* f :
       {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    testing::write_file(cfg / "tokenizer" / f, read((std::string("tokenizer/") + f).c_str()));
  }
  const fs::path file = dir / "inpaint.safetensors";
  Status st = write_synthetic_single_file(file.string(), Family::kSd1, configs, 3,
                                          safetensors::DType::kF32);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  testing::write_file(dir / "inpaint.json", nlohmann::json{{"config_dir", cfg.string()}}.dump());
  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  auto model = inference::sd_model_info(file.string());
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  EXPECT_TRUE(model->inpainting_model);
  auto pipe = load_single_file_pipeline(file.string());
  ASSERT_TRUE(pipe.is_ok()) << pipe.status().to_string();
  EXPECT_TRUE(pipe->is_inpainting_model());
  EXPECT_EQ(pipe->parameters().at("unet").at("conv_in.weight").size(1), 9);
  GenerationRequest r;
  r.prompt = "a cat";
  r.width = r.height = 128;
  r.steps = 2;
  r.guidance = 7.5;
  r.sampler = SamplerKind::kDdim;
  r.strength = 1.0;
  r.init_image = torch::zeros({1, 3, 128, 128});
  r.mask = torch::zeros({1, 1, 128, 128});
  r.mask.index_put_({0, 0, torch::indexing::Slice(32, 96), torch::indexing::Slice(32, 96)}, 1.0);
  GenerationTrace trace;
  auto image = pipe->generate(r, {}, &trace);
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  EXPECT_EQ(trace.unet_inputs[0].size(1), 9);
  EXPECT_EQ(image->sizes(), (std::vector<int64_t>{1, 3, 128, 128}));
}

}  // namespace
}  // namespace atelier::sd
