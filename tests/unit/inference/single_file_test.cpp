#include "server/inference/sd/single_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/safetensors.h"
#include "server/inference/sd/checkpoint_keys.h"
#include "server/inference/sd/clip_text_encoder.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/vae.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kSd15 = "../shared/fixtures/sd15-tiny-ldm";
const fs::path kSdxl = "../shared/fixtures/sdxl-tiny";

std::string read_text(const fs::path& p) {
  return *read_model_file(p.string());
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Every floating-point tensor of a safetensors file as float32 (exact for F32 files).
std::map<std::string, torch::Tensor> read_tensors(const fs::path& p) {
  auto f = safetensors::File::open(p.string());
  EXPECT_TRUE(f.is_ok()) << p;
  std::map<std::string, torch::Tensor> out;
  if (!f.is_ok()) return out;
  for (const auto& t : f->tensors()) {
    if (t.dtype == safetensors::DType::kI64) continue;
    auto v = *f->to_float(t);
    out[t.name] = torch::from_blob(v.data(), t.shape, torch::kFloat32).clone();
  }
  return out;
}

// A file's tensors as writer input, raw bytes unchanged.
std::map<std::string, safetensors::TensorData> raw_tensors(const fs::path& p) {
  auto f = safetensors::File::open(p.string());
  EXPECT_TRUE(f.is_ok()) << p;
  std::map<std::string, safetensors::TensorData> out;
  for (const auto& t : f->tensors()) {
    auto b = f->bytes(t);
    out[t.name] = {t.name, t.dtype, t.shape, std::string(b.begin(), b.end())};
  }
  return out;
}

safetensors::TensorData tensor_data(const std::string& name, torch::Tensor t,
                                    safetensors::DType dtype = safetensors::DType::kF32) {
  const torch::Dtype as = dtype == safetensors::DType::kF16    ? torch::kFloat16
                          : dtype == safetensors::DType::kBF16 ? torch::kBFloat16
                          : dtype == safetensors::DType::kI64  ? torch::kInt64
                                                               : torch::kFloat32;
  t = t.to(as).contiguous();
  safetensors::TensorData d{name, dtype, t.sizes().vec(), {}};
  d.bytes.resize(static_cast<size_t>(t.numel() * t.element_size()));
  if (!d.bytes.empty()) std::memcpy(d.bytes.data(), t.data_ptr(), d.bytes.size());
  return d;
}

void write_tensors(const fs::path& p, const std::map<std::string, safetensors::TensorData>& m) {
  std::vector<safetensors::TensorData> v;
  for (const auto& [name, d] : m) v.push_back(d);
  write_bytes(p, *safetensors::serialize(v));
}

// The mapped weights equal the folder's file: same names, bit-equal values.
void expect_same(const Weights& got, const fs::path& folder_file) {
  const auto want = read_tensors(folder_file);
  EXPECT_EQ(got.tensors().size(), want.size()) << folder_file;
  for (const auto& [name, t] : want) {
    auto it = got.tensors().find(name);
    if (it == got.tensors().end()) {
      ADD_FAILURE() << folder_file << ": '" << name << "' was not mapped";
      continue;
    }
    EXPECT_TRUE(torch::equal(it->second, t)) << folder_file << ": '" << name << "' differs";
  }
  for (const auto& [name, t] : got.tensors()) {
    EXPECT_TRUE(want.count(name)) << "extra tensor '" << name << "'";
  }
}

ModelConfigs folder_configs(const fs::path& dir) {
  ModelConfigs c{read_text(dir / "unet/config.json"), read_text(dir / "vae/config.json"),
                 read_text(dir / "text_encoder/config.json"),
                 read_text(dir / "scheduler/scheduler_config.json"),
                 read_text(dir / "tokenizer/tokenizer_config.json")};
  if (fs::exists(dir / "text_encoder_2")) {
    c.text_encoder_2 = read_text(dir / "text_encoder_2/config.json");
    c.tokenizer_2 = read_text(dir / "tokenizer_2/tokenizer_config.json");
  }
  c.model_index = read_text(dir / "model_index.json");
  return c;
}

class SingleFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("atelier_single_file_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `name`.safetensors in the temp folder (a link to `file`, or written by the caller) with a
  // sidecar pointing config_dir at `configs` (absolute).
  fs::path place(const fs::path& file, const std::string& name, const fs::path& configs,
                 json extra = json::object()) {
    const fs::path link = dir_ / (name + ".safetensors");
    if (!file.empty()) fs::create_symlink(fs::absolute(file), link);
    extra["config_dir"] = fs::absolute(configs).string();
    write_bytes(dir_ / (name + ".json"), extra.dump());
    return link;
  }

  fs::path dir_;
};

#define REQUIRE_FIXTURE(dir) \
  if (!fs::exists(dir)) GTEST_SKIP() << "skipped: " << (dir) << " is absent"

TEST_F(SingleFileTest, Sd15TinyMapsBitExactlyToTheFolder) {
  REQUIRE_FIXTURE(kSd15);
  const fs::path file = place(kSd15 / "single_file/sd15-tiny-ldm.safetensors", "sd15", kSd15);
  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->family, Family::kSd1);
  EXPECT_EQ(info->configs.unet, read_text(kSd15 / "unet/config.json"));
  auto w = load_single_file(file.string(), *info);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  expect_same(w->unet, kSd15 / "unet/diffusion_pytorch_model.safetensors");
  expect_same(w->vae, kSd15 / "vae/diffusion_pytorch_model.safetensors");
  expect_same(w->text_encoder, kSd15 / "text_encoder/model.safetensors");
  EXPECT_FALSE(w->text_encoder_2.has_value());
  // The components build from them (every name taken, every shape right).
  EXPECT_TRUE(UNet::build(*parse_unet_config(info->configs.unet), w->unet).is_ok());
  EXPECT_TRUE(Vae::build(*parse_vae_config(info->configs.vae), w->vae).is_ok());
  EXPECT_TRUE(
      ClipTextEncoder::build(*parse_clip_text_config(info->configs.text_encoder), w->text_encoder)
          .is_ok());
}

TEST_F(SingleFileTest, SdxlTinyMapsBitExactlyToTheFolder) {
  REQUIRE_FIXTURE(kSdxl);
  const fs::path file = place(kSdxl / "single_file/sdxl-tiny.safetensors", "sdxl", kSdxl);
  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->family, Family::kSdxl);
  EXPECT_EQ(family_name(info->family), "sdxl");
  EXPECT_EQ(info->configs.text_encoder_2, read_text(kSdxl / "text_encoder_2/config.json"));
  auto w = load_single_file(file.string(), *info);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  expect_same(w->unet, kSdxl / "unet/diffusion_pytorch_model.safetensors");
  expect_same(w->vae, kSdxl / "vae/diffusion_pytorch_model.safetensors");
  expect_same(w->text_encoder, kSdxl / "text_encoder/model.safetensors");
  ASSERT_TRUE(w->text_encoder_2.has_value());
  expect_same(*w->text_encoder_2, kSdxl / "text_encoder_2/model.safetensors");
  EXPECT_TRUE(UNet::build(*parse_unet_config(info->configs.unet), w->unet).is_ok());
  EXPECT_TRUE(ClipTextEncoder::build(*parse_clip_text_config(info->configs.text_encoder_2),
                                     *w->text_encoder_2)
                  .is_ok());
}

// The exact SGM layout: text_projection [width, proj] instead of the script's Linear weight.
TEST_F(SingleFileTest, SdxlRealLayoutTextProjectionIsTransposed) {
  REQUIRE_FIXTURE(kSdxl);
  auto tensors = raw_tensors(kSdxl / "single_file/sdxl-tiny.safetensors");
  ASSERT_EQ(tensors.erase("conditioner.embedders.1.model.text_projection.weight"), 1u);
  for (auto& [name, d] :
       raw_tensors(kSdxl / "single_file/sdxl-tiny.text_projection_sgm.safetensors")) {
    ASSERT_EQ(name, "conditioner.embedders.1.model.text_projection");
    EXPECT_EQ(d.shape, (std::vector<int64_t>{48, 40}));
    tensors[name] = d;
  }
  // Tensors real checkpoints carry that inference does not use.
  tensors["conditioner.embedders.1.model.logit_scale"] = tensor_data("", torch::ones({}));
  tensors["conditioner.embedders.0.transformer.text_model.embeddings.position_ids"] =
      tensor_data("", torch::arange(77).unsqueeze(0), safetensors::DType::kI64);
  tensors["denoiser.sigmas"] = tensor_data("", torch::ones({1000}));
  for (auto& [name, d] : tensors) d.name = name;
  write_tensors(dir_ / "sdxl.safetensors", tensors);
  const fs::path file = place({}, "sdxl", kSdxl);
  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  auto w = load_single_file(file.string(), *info);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  expect_same(*w->text_encoder_2, kSdxl / "text_encoder_2/model.safetensors");
  expect_same(w->text_encoder, kSdxl / "text_encoder/model.safetensors");
}

// The exact LDM layout: VAE attention biases [C] rather than the script's [C, 1, 1]; EMA and
// schedule buffers present; stored as fp16 and bf16 too.
TEST_F(SingleFileTest, Sd15RealLayoutBiasesEmaAndHalfPrecision) {
  REQUIRE_FIXTURE(kSd15);
  auto tensors = raw_tensors(kSd15 / "single_file/sd15-tiny-ldm.safetensors");
  int swapped = 0;
  for (auto& [name, d] :
       raw_tensors(kSd15 / "single_file/sd15-tiny-ldm.vae_attn_bias_ldm.safetensors")) {
    ASSERT_TRUE(tensors.count(name)) << name;
    EXPECT_EQ(tensors[name].shape, (std::vector<int64_t>{64, 1, 1}));
    EXPECT_EQ(d.shape, (std::vector<int64_t>{64}));
    tensors[name] = d;
    ++swapped;
  }
  EXPECT_EQ(swapped, 8);
  tensors["model_ema.diffusion_modelinput_blocks00weight"] =
      tensor_data("", torch::ones({32, 4, 3, 3}));
  tensors["model_ema.num_updates"] = tensor_data("", torch::zeros({}), safetensors::DType::kI64);
  tensors["alphas_cumprod"] = tensor_data("", torch::ones({1000}));
  tensors["cond_stage_model.transformer.text_model.embeddings.position_ids"] =
      tensor_data("", torch::arange(77).unsqueeze(0), safetensors::DType::kI64);
  for (auto& [name, d] : tensors) d.name = name;
  write_tensors(dir_ / "sd15.safetensors", tensors);
  const fs::path file = place({}, "sd15", kSd15);
  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  auto w = load_single_file(file.string(), *info);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  expect_same(w->vae, kSd15 / "vae/diffusion_pytorch_model.safetensors");
  expect_same(w->unet, kSd15 / "unet/diffusion_pytorch_model.safetensors");

  const auto folder_vae = read_tensors(kSd15 / "vae/diffusion_pytorch_model.safetensors");
  for (auto dtype : {safetensors::DType::kF16, safetensors::DType::kBF16}) {
    const torch::Dtype as = dtype == safetensors::DType::kF16 ? torch::kFloat16 : torch::kBFloat16;
    std::map<std::string, safetensors::TensorData> half;
    for (const auto& [name, t] : read_tensors(file)) half[name] = tensor_data(name, t, dtype);
    const fs::path half_file = dir_ / "half.safetensors";
    write_tensors(half_file, half);
    write_bytes(dir_ / "half.json", json{{"config_dir", fs::absolute(kSd15).string()}}.dump());
    auto half_info = inspect_single_file(half_file.string());
    ASSERT_TRUE(half_info.is_ok()) << half_info.status().to_string();
    auto hw = load_single_file(half_file.string(), *half_info, as);
    ASSERT_TRUE(hw.is_ok()) << hw.status().to_string();
    for (const auto& [name, t] : folder_vae) {
      const torch::Tensor& got = hw->vae.tensors().at(name);
      EXPECT_EQ(got.scalar_type(), as) << name;
      EXPECT_TRUE(torch::equal(got, t.to(as))) << name;
    }
  }
}

// SD 2.x (no fixture): a small OpenCLIP model written in the real layout by to_single_file_layout
// with the tower's extra last layer, its projection and logit_scale, as Stability's files have.
TEST_F(SingleFileTest, Sd2OpenClipSplitsQkvAndDropsTheLastLayer) {
  REQUIRE_FIXTURE(kSd15);
  ModelConfigs configs = folder_configs(kSd15);
  json unet = json::parse(configs.unet);
  unet["use_linear_projection"] = true;
  unet["attention_head_dim"] = {2, 4, 4, 4};
  configs.unet = unet.dump();
  json text = json::parse(configs.text_encoder);
  text["hidden_act"] = "gelu";
  configs.text_encoder = text.dump();
  const fs::path cfg = dir_ / "configs";
  for (auto [sub, content] : {std::pair{"unet", &configs.unet}, std::pair{"vae", &configs.vae},
                              std::pair{"text_encoder", &configs.text_encoder}}) {
    fs::create_directories(cfg / sub);
    write_bytes(cfg / sub / "config.json", *content);
  }
  fs::create_directories(cfg / "scheduler");
  write_bytes(cfg / "scheduler/scheduler_config.json", configs.scheduler);

  auto weights = synthetic_components(configs, 7);
  ASSERT_TRUE(weights.is_ok()) << weights.status().to_string();
  auto layout = to_single_file_layout(Family::kSd2, configs, *weights);
  ASSERT_TRUE(layout.is_ok()) << layout.status().to_string();
  std::map<std::string, safetensors::TensorData> tensors;
  for (const auto& [name, t] : *layout) tensors[name] = tensor_data(name, t);
  const std::string p = "cond_stage_model.model.";
  EXPECT_EQ(tensors.at(p + "transformer.resblocks.0.attn.in_proj_weight").shape,
            (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(tensors.at(p + "positional_embedding").shape, (std::vector<int64_t>{77, 32}));
  EXPECT_FALSE(tensors.count(p + "text_projection"));  // CLIPTextModel has none
  for (const auto& [name, d] : std::map(tensors)) {    // resblock 5 of a 6-layer tower
    const std::string last = p + "transformer.resblocks.4.";
    if (name.rfind(last, 0) == 0) {
      tensors[p + "transformer.resblocks.5." + name.substr(last.size())] = d;
    }
  }
  tensors[p + "text_projection"] = tensor_data("", torch::ones({32, 32}));
  tensors[p + "logit_scale"] = tensor_data("", torch::ones({}));
  for (auto& [name, d] : tensors) d.name = name;
  write_tensors(dir_ / "sd2.safetensors", tensors);
  const fs::path file = place({}, "sd2", cfg, json{{"prediction_type", "epsilon"}});

  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->family, Family::kSd2);
  EXPECT_EQ(json::parse(info->configs.scheduler)["prediction_type"], "epsilon");
  auto w = load_single_file(file.string(), *info);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  for (auto [got, want] : {std::pair{&w->unet, &weights->unet}, std::pair{&w->vae, &weights->vae},
                           std::pair{&w->text_encoder, &weights->text_encoder}}) {
    EXPECT_EQ(got->tensors().size(), want->tensors().size());
    for (const auto& [name, t] : want->tensors()) {
      ASSERT_TRUE(got->tensors().count(name)) << name;
      EXPECT_TRUE(torch::equal(got->tensors().at(name), t)) << name;
    }
  }

  // A tower one layer short of the config is refused, naming the missing tensors.
  for (auto it = tensors.begin(); it != tensors.end();) {
    it = it->first.rfind(p + "transformer.resblocks.4.", 0) == 0 ||
                 it->first.rfind(p + "transformer.resblocks.5.", 0) == 0
             ? tensors.erase(it)
             : std::next(it);
  }
  write_tensors(dir_ / "sd2.safetensors", tensors);
  auto short_tower = inspect_single_file(file.string());
  ASSERT_FALSE(short_tower.is_ok());
  EXPECT_NE(
      short_tower.status().message().find(
          "missing tensor 'cond_stage_model.model.transformer.resblocks.4.attn.in_proj_weight'"),
      std::string::npos)
      << short_tower.status().message();
}

// The UNet and VAE maps agree with every row diffusers' own conversion script produced.
TEST_F(SingleFileTest, NameMapsMatchTheConversionScriptsKeyMaps) {
  int checked = 0;
  for (const fs::path& dir : {kSd15, kSdxl}) {
    if (!fs::exists(dir)) continue;
    const json map = json::parse(read_text(dir / "single_file/key_map.json"));
    const auto unet = unet_original_names(*parse_unet_config(read_text(dir / "unet/config.json")));
    const auto vae = vae_original_names(*parse_vae_config(read_text(dir / "vae/config.json")));
    size_t unet_rows = 0, vae_rows = 0;
    for (const auto& row : map["rows"]) {
      const std::string component = row[0], diffusers = row[1], original = row[2];
      if (component == "unet") {
        ++unet_rows;
        ASSERT_TRUE(unet.count(diffusers)) << diffusers;
        EXPECT_EQ("model.diffusion_model." + unet.at(diffusers), original) << diffusers;
      } else if (component == "vae") {
        ++vae_rows;
        ASSERT_TRUE(vae.count(diffusers)) << diffusers;
        EXPECT_EQ("first_stage_model." + vae.at(diffusers), original) << diffusers;
      }
    }
    EXPECT_EQ(unet.size(), unet_rows) << dir;
    EXPECT_EQ(vae.size(), vae_rows) << dir;
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "skipped: no single-file fixture";
}

TEST_F(SingleFileTest, TruncatedAndGarbageFilesAreErrors) {
  REQUIRE_FIXTURE(kSd15);
  const std::string whole = read_text(kSd15 / "single_file/sd15-tiny-ldm.safetensors");
  const std::map<std::string, std::string> files{{"truncated", whole.substr(0, whole.size() / 2)},
                                                 {"header_only", whole.substr(0, 200)},
                                                 {"garbage", std::string(4096, '\x5a')},
                                                 {"empty", std::string()}};
  for (const auto& [name, bytes] : files) {
    const fs::path p = dir_ / (name + ".safetensors");
    write_bytes(p, bytes);
    auto info = inspect_single_file(p.string());
    ASSERT_FALSE(info.is_ok()) << name;
    EXPECT_NE(info.status().message().find(p.string()), std::string::npos)
        << info.status().message();
  }
  EXPECT_NE(inspect_single_file((dir_ / "truncated.safetensors").string())
                .status()
                .message()
                .find("truncated"),
            std::string::npos);
  EXPECT_FALSE(inspect_single_file((dir_ / "absent.safetensors").string()).is_ok());
}

TEST_F(SingleFileTest, SidecarsAreCheckedAndApplied) {
  REQUIRE_FIXTURE(kSd15);
  const fs::path file = place(kSd15 / "single_file/sd15-tiny-ldm.safetensors", "m", kSd15);
  const fs::path side = dir_ / "m.json";
  auto error_for = [&](const std::string& sidecar) {
    write_bytes(side, sidecar);
    auto r = inspect_single_file(file.string());
    return r.is_ok() ? std::string("ok") : r.status().message();
  };
  const std::string cfg = json(fs::absolute(kSd15).string()).dump();
  EXPECT_NE(error_for(R"({"prediction_type": "sample", "config_dir": )" + cfg + "}")
                .find("prediction_type"),
            std::string::npos);
  EXPECT_NE(
      error_for(R"({"prediction": "epsilon", "config_dir": )" + cfg + "}").find("'prediction'"),
      std::string::npos);
  EXPECT_NE(error_for(R"({"config_dir": 3})").find("config_dir"), std::string::npos);
  EXPECT_NE(error_for(R"({"config_dir": "nowhere"})").find("nowhere"), std::string::npos);
  EXPECT_NE(error_for("[1, 2]").find("not a JSON object"), std::string::npos);
  // Relative to the sidecar's folder.
  fs::create_symlink(fs::absolute(kSd15), dir_ / "cfg");
  EXPECT_EQ(error_for(R"({"config_dir": "cfg", "prediction_type": "v_prediction"})"), "ok");
  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok());
  EXPECT_EQ(json::parse(info->configs.scheduler)["prediction_type"], "v_prediction");
  EXPECT_EQ(info->sidecar, side.string());
  // Without config_dir the tiny file does not fit SD 1.5's published sizes: refused at inspect.
  const std::string published = error_for(R"({"prediction_type": "epsilon"})");
  EXPECT_NE(published.find("expected [320,4,3,3]"), std::string::npos) << published;
  // A config folder given by the caller (atelier generate --config) stands in for the sidecar's.
  auto given = inspect_single_file(file.string(), kSd15.string());
  ASSERT_TRUE(given.is_ok()) << given.status().to_string();
  EXPECT_EQ(given->config_dir, fs::absolute(kSd15).string());
  EXPECT_EQ(json::parse(given->configs.scheduler)["prediction_type"], "epsilon");
}

// Random SDXL-shaped models in both layouts: a folder with both encoders and tokenizers, and a
// half-precision single file that reads back as the same weights.
TEST_F(SingleFileTest, SyntheticSdxlFolderAndSingleFile) {
  REQUIRE_FIXTURE(kSdxl);
  const ModelConfigs configs = folder_configs(kSdxl);
  const fs::path folder = dir_ / "folder";
  Status st = write_synthetic_model(folder.string(), configs, (kSdxl / "tokenizer").string(), 3,
                                    safetensors::DType::kF32);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(read_text(folder / "model_index.json"), configs.model_index);
  EXPECT_EQ(read_text(folder / "tokenizer_2/tokenizer_config.json"), configs.tokenizer_2);
  EXPECT_TRUE(fs::exists(folder / "tokenizer_2/vocab.json"));
  for (const char* f :
       {"text_encoder_2/model.safetensors", "unet/diffusion_pytorch_model.safetensors"}) {
    auto written = read_tensors(folder / f), fixture = read_tensors(kSdxl / f);
    ASSERT_EQ(written.size(), fixture.size()) << f;
    for (const auto& [name, t] : fixture) EXPECT_EQ(written.at(name).sizes(), t.sizes()) << name;
  }

  const fs::path file = dir_ / "xl.safetensors";
  st = write_synthetic_single_file(file.string(), Family::kSdxl, configs, 5,
                                   safetensors::DType::kF16);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  place({}, "xl", kSdxl);
  auto info = inspect_single_file(file.string());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->family, Family::kSdxl);
  auto w = load_single_file(file.string(), *info, torch::kFloat16);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  auto want = synthetic_components(configs, 5);
  ASSERT_TRUE(want.is_ok());
  for (auto [got, expected] : {std::pair{&*w->text_encoder_2, &*want->text_encoder_2},
                               std::pair{&w->unet, &want->unet}, std::pair{&w->vae, &want->vae}}) {
    ASSERT_EQ(got->tensors().size(), expected->tensors().size());
    for (const auto& [name, t] : expected->tensors()) {
      EXPECT_TRUE(torch::equal(got->tensors().at(name), t.to(torch::kFloat16))) << name;
    }
  }
}

}  // namespace
}  // namespace atelier::sd
