// LoRA (kohya naming) against the sdxl-tiny-lora fixture: fused weights as diffusers'
// fuse_lora(0.8) left them, every module paired with the right weight, the whole pipeline run
// with the LoRA against the reference run's tensors, exact restoring when sets switch, and the
// refusals (wrong family, nothing matching, malformed files) with partial matches counted.
#include "server/inference/sd/lora.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/safetensors.h"
#include "server/inference/sd/model_files.h"
#include "server/inference/sd/pipeline.h"
#include "server/inference/sd/unet.h"
#include "server/inference/sd/weights.h"
#include "tests/unit/inference/sd_fixture.h"

namespace atelier::sd {
namespace {

namespace fs = std::filesystem;
using fixture::fixture_tensor;
using fixture::max_diff;
using Params = LoraPatcher::Parameters;

const fs::path kXl = "../shared/fixtures/sdxl-tiny";
const fs::path kXlLora = "../shared/fixtures/sdxl-tiny-lora";
const fs::path kSd15 = "../shared/fixtures/sd15-tiny-ldm";
const std::string kLoraFile = (kXlLora / "lora/sdxl-tiny-lora-kohya.safetensors").string();

#define SKIP_WITHOUT(dir) \
  if (!fs::exists(dir)) GTEST_SKIP() << (dir).string() << " is absent"

// A model folder's weights as the pipeline holds them: component -> Weights (their tensors are
// the ones modules built from them use).
struct Model {
  UNetConfig unet;
  std::map<std::string, Weights> weights;
  Params params() const {
    Params p;
    for (const auto& [component, w] : weights) p[component] = w.tensors();
    return p;
  }
};

Model load_model(const fs::path& dir, torch::Dtype dtype = torch::kFloat32) {
  Model m;
  auto text = read_model_file((dir / "unet/config.json").string());
  EXPECT_TRUE(text.is_ok());
  auto config = parse_unet_config(text.is_ok() ? *text : "");
  EXPECT_TRUE(config.is_ok()) << config.status().message();
  if (config.is_ok()) m.unet = *config;
  const std::pair<const char*, const char*> files[] = {
      {"unet", "diffusion_pytorch_model.safetensors"},
      {"text_encoder", "model.safetensors"},
      {"text_encoder_2", "model.safetensors"}};
  for (const auto& [component, file] : files) {
    const fs::path path = dir / component / file;
    if (!fs::exists(path)) continue;
    auto w = Weights::load(path.string(), dtype);
    EXPECT_TRUE(w.is_ok()) << w.status().message();
    if (w.is_ok()) m.weights.emplace(component, std::move(*w));
  }
  return m;
}

LoraPatcher make_patcher(const Model& m) {
  auto p = LoraPatcher::create(m.unet, m.params());
  EXPECT_TRUE(p.is_ok()) << p.status().message();
  return std::move(p).value();
}

std::shared_ptr<const Lora> fixture_lora() {
  auto l = Lora::load(kLoraFile);
  EXPECT_TRUE(l.is_ok()) << l.status().message();
  return l.is_ok() ? std::make_shared<const Lora>(std::move(*l)) : nullptr;
}

Params snapshot(const Params& p) {
  Params out;
  for (const auto& [c, tensors] : p)
    for (const auto& [n, t] : tensors) out[c][n] = t.clone();
  return out;
}

// Same dtype, shape and bits.
bool bits_equal(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto as_int = a.element_size() == 4 ? torch::kInt32 : torch::kInt16;
  return torch::equal(a.contiguous().view(as_int), b.contiguous().view(as_int));
}

// Number of weights whose bits differ from `base`.
int count_changed(const Params& now, const Params& base) {
  int n = 0;
  for (const auto& [c, tensors] : base)
    for (const auto& [name, t] : tensors) n += bits_equal(now.at(c).at(name), t) ? 0 : 1;
  return n;
}

// The README's merge rule, in float32 and in diffusers' order: W + s * ((U * alpha / r) @ D),
// U as [out, r], D as [r, in * k * k].
torch::Tensor fused(const torch::Tensor& w, const LoraModule& m, double s) {
  torch::Tensor u = m.up.reshape({m.up.size(0), m.rank()}), d = m.down.reshape({m.rank(), -1});
  return w.to(torch::kFloat32) +
         torch::mm(u.mul(m.alpha).div(m.rank()), d).reshape(w.sizes()).mul(s);
}

const LoraModule& module_named(const Lora& l, const std::string& name) {
  for (const auto& m : l.modules())
    if (m.name == name) return m;
  ADD_FAILURE() << "no module " << name;
  return l.modules().front();
}

// ---- in-memory LoRA files ----

safetensors::TensorData tensor_data(const std::string& name, const torch::Tensor& t,
                                    safetensors::DType dtype = safetensors::DType::kF32) {
  const auto st = dtype == safetensors::DType::kF16    ? torch::kHalf
                  : dtype == safetensors::DType::kBF16 ? torch::kBFloat16
                                                       : torch::kFloat32;
  torch::Tensor c = t.to(st).contiguous();
  return {name, dtype, c.sizes().vec(),
          std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size())};
}

void add_module(std::vector<safetensors::TensorData>& v, const std::string& name,
                const torch::Tensor& down, const torch::Tensor& up,
                std::optional<double> alpha = 1.0) {
  v.push_back(tensor_data(name + ".lora_down.weight", down));
  v.push_back(tensor_data(name + ".lora_up.weight", up));
  if (alpha) v.push_back(tensor_data(name + ".alpha", torch::tensor(*alpha).to(torch::kFloat32)));
}

Result<Lora> lora_from(const std::vector<safetensors::TensorData>& tensors) {
  auto bytes = safetensors::serialize(tensors);
  if (!bytes.is_ok()) return bytes.status();
  auto file = safetensors::File::from_bytes(std::move(*bytes));
  if (!file.is_ok()) return file.status();
  return Lora::parse(*file, "test-lora");
}

// The fixture file's tensors, to be extended.
std::vector<safetensors::TensorData> fixture_tensors() {
  std::vector<safetensors::TensorData> v;
  auto f = safetensors::File::open(kLoraFile);
  EXPECT_TRUE(f.is_ok());
  for (const auto& t : f->tensors()) {
    auto b = f->bytes(t);
    v.push_back({t.name, t.dtype, t.shape, std::string(b.begin(), b.end())});
  }
  return v;
}

// ---- against the fixture ----

TEST(LoraTest, FusedWeightsMatchDiffusersFuseLora) {
  SKIP_WITHOUT(kXlLora);
  Model model = load_model(kXl);
  LoraPatcher patcher = make_patcher(model);
  EXPECT_EQ(patcher.family(), LoraFamily::kSdxl);
  const Params params = model.params(), base = snapshot(params);
  auto lora = fixture_lora();
  ASSERT_TRUE(lora);
  auto ref =
      safetensors::File::open((kXlLora / "expected/fused_weights_sample.safetensors").string());
  ASSERT_TRUE(ref.is_ok());
  // Applying the same set twice must not apply it twice.
  for (int round = 0; round < 2; ++round) {
    auto reports = patcher.apply({{lora, 0.8}});
    ASSERT_TRUE(reports.is_ok()) << reports.status().message();
    std::set<std::string> kinds;
    for (const auto& t : ref->tensors()) {
      if (t.name.ends_with("_original")) continue;
      const size_t dot = t.name.find('.');
      const std::string component = t.name.substr(0, dot), param = t.name.substr(dot + 1);
      const torch::Tensor want = fixture_tensor(*ref, t.name);
      const torch::Tensor& got = params.at(component).at(param);
      EXPECT_TRUE(
          bits_equal(base.at(component).at(param), fixture_tensor(*ref, t.name + "_original")))
          << t.name;
      EXPECT_LT(max_diff(got, want), 1e-6) << t.name;
      EXPECT_GT(max_diff(want, base.at(component).at(param)), 1e-3) << t.name;  // a real change
      kinds.insert(component + (got.dim() == 2 ? " linear" : got.size(2) == 1 ? " 1x1" : " 3x3"));
    }
    EXPECT_EQ(kinds, (std::set<std::string>{"text_encoder linear", "text_encoder_2 linear",
                                            "unet linear", "unet 1x1", "unet 3x3"}));
    EXPECT_EQ(count_changed(params, base), 252);
  }
}

TEST(LoraTest, EveryModulePairsWithTheWeightDiffusersPatches) {
  SKIP_WITHOUT(kXlLora);
  Model model = load_model(kXl);
  LoraPatcher patcher = make_patcher(model);
  auto lora = fixture_lora();
  ASSERT_TRUE(lora);
  EXPECT_EQ(lora->family(), LoraFamily::kSdxl);
  EXPECT_EQ(lora->key_count(), 756);
  ASSERT_EQ(lora->modules().size(), 252u);
  auto m = patcher.match(*lora);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(m->targets.size(), 252u);
  EXPECT_EQ(m->matched_keys, 756);
  EXPECT_TRUE(m->unmatched_keys.empty()) << m->unmatched_keys.front();
  auto text = read_model_file((kXlLora / "expected/kohya_to_diffusers.json").string());
  ASSERT_TRUE(text.is_ok());
  std::map<std::string, std::pair<std::string, std::string>> want;
  const nlohmann::json rows = nlohmann::json::parse(*text)["rows"];
  for (const auto& row : rows) {
    want[row["kohya"]] = {row["component"], row["module"].get<std::string>() + ".weight"};
  }
  ASSERT_EQ(want.size(), 252u);
  std::map<std::string, int> per_component;
  for (const auto& t : m->targets) {
    const std::string& name = lora->modules()[t.module].name;
    EXPECT_EQ(std::make_pair(t.component, t.parameter), want.at(name)) << name;
    ++per_component[t.component];
  }
  EXPECT_EQ(per_component, (std::map<std::string, int>{
                               {"unet", 198}, {"text_encoder", 30}, {"text_encoder_2", 24}}));
}

TEST(LoraTest, SwitchingSetsRestoresTheBaseBitForBit) {
  SKIP_WITHOUT(kXlLora);
  Model model = load_model(kXl);
  LoraPatcher patcher = make_patcher(model);
  const Params params = model.params(), base = snapshot(params);
  auto lora = fixture_lora();
  ASSERT_TRUE(lora);
  const std::string conv = "down_blocks.0.resnets.0.conv1.weight";
  const LoraModule& m = module_named(*lora, "lora_unet_input_blocks_1_0_in_layers_2");

  ASSERT_TRUE(patcher.apply({{lora, 0.8}}).is_ok());
  const Params at_08 = snapshot(params);
  EXPECT_LT(max_diff(params.at("unet").at(conv), fused(base.at("unet").at(conv), m, 0.8)), 1e-6);
  auto again = patcher.apply({{lora, 0.8}});
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(count_changed(params, at_08), 0);

  ASSERT_TRUE(patcher.apply({{lora, 0.3}}).is_ok());
  EXPECT_LT(max_diff(params.at("unet").at(conv), fused(base.at("unet").at(conv), m, 0.3)), 1e-6);
  EXPECT_EQ(patcher.patched_count(), 252u);

  auto none = patcher.apply({});
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(count_changed(params, base), 0);
  EXPECT_EQ(patcher.patched_count(), 0u);

  // Many switches, a negative weight, the same LoRA twice in a set, a fresh parse of the file:
  // no drift.
  auto reparsed = fixture_lora();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(patcher.apply({{lora, 0.8}}).is_ok());
    ASSERT_TRUE(patcher.apply({{lora, -1.5}, {reparsed, 0.7}}).is_ok());
    ASSERT_TRUE(patcher.apply({{reparsed, 0.3}}).is_ok());
  }
  ASSERT_TRUE(patcher.apply({{reparsed, 0.8}}).is_ok());
  EXPECT_EQ(count_changed(params, at_08), 0);
  ASSERT_TRUE(patcher.apply({{lora, 0.5}, {reparsed, 0.3}}).is_ok());
  EXPECT_LT(max_diff(params.at("unet").at(conv), fused(base.at("unet").at(conv), m, 0.8)), 1e-5);
  ASSERT_TRUE(patcher.apply({}).is_ok());
  EXPECT_EQ(count_changed(params, base), 0);
  // Weight 0: paired and reported, nothing changed.
  auto zero = patcher.apply({{lora, 0.0}});
  ASSERT_TRUE(zero.is_ok());
  EXPECT_EQ((*zero)[0].matched_modules, 252);
  EXPECT_EQ(count_changed(params, base), 0);
}

TEST(LoraTest, HalfPrecisionModelMergesInFloat32AndRestoresExactly) {
  SKIP_WITHOUT(kXlLora);
  Model model = load_model(kXl, torch::kHalf);
  LoraPatcher patcher = make_patcher(model);
  const Params params = model.params(), base = snapshot(params);
  auto lora = fixture_lora();
  ASSERT_TRUE(lora);
  auto m = patcher.match(*lora);
  ASSERT_TRUE(m.is_ok());
  ASSERT_TRUE(patcher.apply({{lora, 0.8}}).is_ok());
  for (const auto& t : m->targets) {
    const torch::Tensor& got = params.at(t.component).at(t.parameter);
    ASSERT_EQ(got.scalar_type(), torch::kHalf);
    // One rounding, of the float32 sum: not a sum of fp16 values.
    const torch::Tensor want =
        fused(base.at(t.component).at(t.parameter), lora->modules()[t.module], 0.8)
            .to(torch::kHalf);
    EXPECT_TRUE(bits_equal(got, want)) << t.parameter;
  }
  ASSERT_TRUE(patcher.apply({{lora, 0.3}}).is_ok());
  ASSERT_TRUE(patcher.apply({}).is_ok());
  EXPECT_EQ(count_changed(params, base), 0);
}

// The whole txt2img_euler_g5_neg run with the LoRA at 0.8, then without it, on one loaded
// pipeline: diffusers' fused run, then sdxl-tiny's own run (pipeline tolerance 1e-3).
TEST(LoraTest, PipelineRunWithLoraMatchesDiffusersAndSwitchesBack) {
  SKIP_WITHOUT(kXlLora);
  torch::NoGradGuard no_grad;
  auto pipe = StableDiffusion::load(kXl.string());
  ASSERT_TRUE(pipe.is_ok()) << pipe.status().message();
  auto patcher = LoraPatcher::create(pipe->unet().config(), pipe->parameters());
  ASSERT_TRUE(patcher.is_ok()) << patcher.status().message();
  auto lora = fixture_lora();
  ASSERT_TRUE(lora);
  auto with_lora = safetensors::File::open(
      (kXlLora / "expected/txt2img_euler_g5_neg_lora_fused0p8.safetensors").string());
  auto without =
      safetensors::File::open((kXl / "expected/txt2img_euler_g5_neg.safetensors").string());
  ASSERT_TRUE(with_lora.is_ok() && without.is_ok());
  GenerationRequest r;
  r.prompt = "a red fox in the snow";
  r.negative_prompt = "blurry, low quality";
  r.width = 192;
  r.height = 128;
  r.steps = 5;
  r.guidance = 5;
  r.sampler = SamplerKind::kEuler;
  r.original_width = r.original_height = r.target_width = r.target_height = 1024;
  r.init_latents = fixture_tensor(*with_lora, "init_latents");
  auto check = [&](const safetensors::File& ref, const std::string& what) {
    GenerationTrace trace;
    auto image = pipe->generate(r, {}, &trace);
    ASSERT_TRUE(image.is_ok()) << image.status().message();
    EXPECT_LT(max_diff(trace.prompt_embeds, fixture_tensor(ref, "prompt_embeds")), 1e-4) << what;
    EXPECT_LT(max_diff(trace.add_text_embeds, fixture_tensor(ref, "add_text_embeds")), 1e-4)
        << what;
    ASSERT_EQ(trace.latents.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_LT(max_diff(trace.latents[i], fixture_tensor(ref, "latents_" + std::to_string(i + 1))),
                1e-3)
          << what << " step " << i;
    }
    EXPECT_LT(max_diff(trace.decoded, fixture_tensor(ref, "decoded")), 1e-3) << what;
    EXPECT_LT(max_diff(*image, fixture_tensor(ref, "image")), 1e-3) << what;
  };
  ASSERT_TRUE(patcher->apply({{lora, 0.8}}).is_ok());
  check(*with_lora, "with the LoRA");
  ASSERT_TRUE(patcher->apply({}).is_ok());
  check(*without, "without it");
}

// ---- refusals and counts ----

TEST(LoraTest, PartlyMatchingFileCountsTheRest) {
  SKIP_WITHOUT(kXlLora);
  Model model = load_model(kXl);
  LoraPatcher patcher = make_patcher(model);
  auto v = fixture_tensors();
  add_module(v, "lora_unet_input_blocks_99_1_proj_in", torch::randn({4, 64}),
             torch::randn({64, 4}));
  add_module(v, "lora_te2_text_model_encoder_layers_7_mlp_fc1", torch::randn({4, 48}),
             torch::randn({64, 4}), std::nullopt);
  v.push_back(tensor_data("lora_unet_middle_block_1_proj_out.hada_w1_a", torch::randn({4, 64})));
  v.push_back(tensor_data("text_encoder.some.other.weight", torch::randn({2, 2})));
  auto lora = lora_from(v);
  ASSERT_TRUE(lora.is_ok()) << lora.status().message();
  // The fixture's middle_block_1_proj_out module became a LoHa-form one: not applied.
  auto m = patcher.match(*lora);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(m->targets.size(), 251u);
  EXPECT_EQ(m->matched_keys, 753);
  // 3 + 2 keys of unknown modules, 4 of the LoHa-form module (down, up, alpha, hada_w1_a), one
  // foreign key.
  EXPECT_EQ(m->unmatched_keys.size(), 10u);
  auto reports = patcher.apply({{std::make_shared<const Lora>(std::move(*lora)), 1.0}});
  ASSERT_TRUE(reports.is_ok());
  EXPECT_EQ((*reports)[0].matched_modules, 251);
  EXPECT_EQ((*reports)[0].unmatched_keys, 10);
  EXPECT_EQ((*reports)[0].label, "test-lora");
}

TEST(LoraTest, RefusesLorasOfAnotherFamilyOrMatchingNothing) {
  SKIP_WITHOUT(kXlLora);
  Model xl = load_model(kXl);
  LoraPatcher patcher = make_patcher(xl);
  auto expect_refused = [&](const Result<LoraMatch>& r, const std::string& text) {
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().field(), "loras");
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  };
  std::vector<safetensors::TensorData> sd1;
  add_module(sd1, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", torch::randn({4, 32}),
             torch::randn({32, 4}));
  add_module(sd1, "lora_unet_down_blocks_1_attentions_0_proj_in", torch::randn({4, 64}),
             torch::randn({64, 4}));
  auto sd1_lora = lora_from(sd1);
  ASSERT_TRUE(sd1_lora.is_ok());
  EXPECT_EQ(sd1_lora->family(), LoraFamily::kSd1);
  expect_refused(patcher.match(*sd1_lora), "is a SD 1.x LoRA; this model is SDXL");

  std::vector<safetensors::TensorData> nothing;
  add_module(nothing, "lora_te2_text_model_encoder_layers_9_mlp_fc1", torch::randn({4, 48}),
             torch::randn({64, 4}));
  add_module(nothing, "lora_unet_output_blocks_0_1_transformer_blocks_5_attn1_to_q",
             torch::randn({4, 64}), torch::randn({64, 4}));
  auto none = lora_from(nothing);
  ASSERT_TRUE(none.is_ok());
  expect_refused(patcher.match(*none), "matches no layer of this SDXL model (none of its 6 keys");

  auto loha = lora_from(
      {tensor_data("lora_unet_input_blocks_4_1_proj_in.hada_w1_a", torch::randn({4, 64}))});
  ASSERT_TRUE(loha.is_ok());
  expect_refused(patcher.match(*loha), "no LoRA module in the kohya form");

  // A set with one refused LoRA changes nothing.
  auto good = fixture_lora();
  ASSERT_TRUE(patcher.apply({{good, 0.8}}).is_ok());
  const Params at_08 = snapshot(xl.params());
  auto refused = patcher.apply({{good, 0.3}, {std::make_shared<const Lora>(*none), 1.0}});
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().field(), "loras");
  EXPECT_EQ(count_changed(xl.params(), at_08), 0);
  EXPECT_EQ(patcher.applied()[0].weight, 0.8);

  // The SDXL fixture LoRA on an SD 1.5-shaped model.
  SKIP_WITHOUT(kSd15);
  LoraPatcher sd15 = make_patcher(load_model(kSd15));
  EXPECT_EQ(sd15.family(), LoraFamily::kSd1);
  expect_refused(sd15.match(*good), "is a SDXL LoRA; this model is SD 1.x");
}

TEST(LoraTest, MalformedFilesAreRefusedNamingTheKey) {
  auto expect_error = [](const Result<Lora>& r, const std::string& text) {
    ASSERT_FALSE(r.is_ok()) << text;
    EXPECT_EQ(r.status().field(), "loras");
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  };
  const std::string q = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj";
  expect_error(lora_from({tensor_data(q + ".lora_down.weight", torch::randn({4, 32}))}),
               "'" + q + ".lora_down.weight' has no lora_up.weight");
  expect_error(lora_from({tensor_data(q + ".lora_up.weight", torch::randn({32, 4})),
                          tensor_data(q + ".alpha", torch::tensor(2.0f))}),
               "'" + q + ".lora_up.weight' has no lora_down.weight");
  expect_error(lora_from({tensor_data(q + ".alpha", torch::tensor(2.0f))}),
               "'" + q + ".alpha' has no lora_down/lora_up pair");
  std::vector<safetensors::TensorData> v;
  add_module(v, q, torch::randn({4, 32}), torch::randn({32, 8}));
  expect_error(lora_from(v), "rank mismatch: '" + q + ".lora_down.weight' has rank 4");
  v.clear();
  add_module(v, q, torch::randn({4, 32, 3}), torch::randn({32, 4}));
  expect_error(lora_from(v), "'" + q + ".lora_down.weight' has shape [4, 32, 3]");
  v.clear();
  add_module(v, q, torch::randn({4, 32, 3, 3}), torch::randn({32, 4, 3, 3}));
  expect_error(lora_from(v), "'" + q + ".lora_up.weight' has shape [32, 4, 3, 3]");
  v.clear();
  add_module(v, q, torch::randn({4, 32}), torch::randn({32, 4}), std::nullopt);
  v.push_back(tensor_data(q + ".alpha", torch::ones({2})));
  expect_error(lora_from(v), "'" + q + ".alpha' has shape [2], expected one value");
  v.clear();
  add_module(v, q, torch::full({4, 32}, std::nan("")), torch::randn({32, 4}));
  expect_error(lora_from(v), "'" + q + ".lora_down.weight' holds values that are not finite");

  // Well-formed but not fitting the weight it pairs with: refused when paired.
  SKIP_WITHOUT(kXlLora);
  LoraPatcher patcher = make_patcher(load_model(kXl));
  v.clear();
  add_module(v, q, torch::randn({4, 33}), torch::randn({32, 4}));
  auto wrong_in = lora_from(v);
  ASSERT_TRUE(wrong_in.is_ok());
  auto r = patcher.match(*wrong_in);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("'" + q +
                                      ".lora_down.weight' has shape [4, 33], which "
                                      "does not fit text_encoder weight 'text_model.encoder."
                                      "layers.0.self_attn.q_proj.weight' [32, 32]"),
            std::string::npos)
      << r.status().message();
  v.clear();  // a 1x1 LoRA on a 3x3 convolution
  add_module(v, "lora_unet_input_blocks_1_0_in_layers_2", torch::randn({4, 32, 1, 1}),
             torch::randn({32, 4, 1, 1}));
  v.push_back(tensor_data(q + ".lora_down.weight", torch::randn({4, 32})));
  v.push_back(tensor_data(q + ".lora_up.weight", torch::randn({32, 4})));
  auto wrong_taps = lora_from(v);
  ASSERT_TRUE(wrong_taps.is_ok());
  r = patcher.match(*wrong_taps);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight' "
                                      "has shape [4, 32, 1, 1]"),
            std::string::npos)
      << r.status().message();
}

TEST(LoraTest, FamilyFromNamesAndShapes) {
  auto family = [](const std::string& name, std::vector<int64_t> down) {
    std::vector<safetensors::TensorData> v;
    add_module(v, name, torch::randn(down), torch::randn({8, down[0]}));
    auto l = lora_from(v);
    EXPECT_TRUE(l.is_ok()) << l.status().message();
    return l.is_ok() ? l->family() : LoraFamily::kSd1;
  };
  EXPECT_EQ(family("lora_te2_text_model_encoder_layers_0_mlp_fc1", {4, 8}), LoraFamily::kSdxl);
  EXPECT_EQ(family("lora_te1_text_model_encoder_layers_0_mlp_fc1", {4, 8}), LoraFamily::kSdxl);
  EXPECT_EQ(family("lora_unet_label_emb_0_0", {4, 8}), LoraFamily::kSdxl);
  EXPECT_EQ(family("lora_unet_input_blocks_7_1_transformer_blocks_3_ff_net_2", {4, 8}),
            LoraFamily::kSdxl);
  EXPECT_EQ(
      family("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", {4, 2048}),
      LoraFamily::kSdxl);
  EXPECT_EQ(
      family("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", {4, 768}),
      LoraFamily::kSd1);
  EXPECT_EQ(family("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q", {4, 8}),
            LoraFamily::kSd1);
  EXPECT_EQ(family("lora_te_text_model_encoder_layers_0_mlp_fc1", {4, 8}), LoraFamily::kSd1);
}

// SD 1.x: kohya's diffusers paths and original (LDM) paths both pair; 1x1 conv projections; a
// module without alpha is scale 1; half-precision files.
TEST(LoraTest, Sd1ModelPairsBothPathStyles) {
  SKIP_WITHOUT(kSd15);
  Model model = load_model(kSd15);
  LoraPatcher patcher = make_patcher(model);
  const Params params = model.params(), base = snapshot(params);
  std::vector<safetensors::TensorData> v;
  const auto f16 = safetensors::DType::kF16;
  torch::Tensor d1 = torch::randn({2, 32, 1, 1}), u1 = torch::randn({32, 2, 1, 1}) * 0.1;
  v.push_back(
      tensor_data("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", d1, f16));
  v.push_back(tensor_data("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", u1, f16));
  add_module(v, "lora_unet_input_blocks_1_1_proj_out", torch::randn({4, 32, 1, 1}),
             torch::randn({32, 4, 1, 1}), 8.0);
  add_module(v, "lora_unet_input_blocks_1_0_in_layers_2", torch::randn({4, 32, 3, 3}),
             torch::randn({32, 4, 1, 1}), 2.0);
  add_module(v, "lora_te_text_model_encoder_layers_4_mlp_fc2", torch::randn({4, 37}),
             torch::randn({32, 4}), 4.0);
  auto lora = lora_from(v);
  ASSERT_TRUE(lora.is_ok()) << lora.status().message();
  EXPECT_EQ(lora->family(), LoraFamily::kSd1);
  const LoraModule& half = module_named(*lora, "lora_unet_down_blocks_0_attentions_0_proj_in");
  EXPECT_FALSE(half.has_alpha);
  EXPECT_EQ(half.alpha, 2.0);
  EXPECT_TRUE(torch::equal(half.down, d1.to(torch::kHalf).to(torch::kFloat32)));
  auto shared = std::make_shared<const Lora>(std::move(*lora));
  auto m = patcher.match(*shared);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  std::map<std::string, std::string> got;
  for (const auto& t : m->targets)
    got[shared->modules()[t.module].name] = t.component + ":" + t.parameter;
  EXPECT_EQ(
      got,
      (std::map<std::string, std::string>{
          {"lora_unet_down_blocks_0_attentions_0_proj_in",
           "unet:down_blocks.0.attentions.0.proj_in.weight"},
          {"lora_unet_input_blocks_1_1_proj_out",
           "unet:down_blocks.0.attentions.0.proj_out.weight"},
          {"lora_unet_input_blocks_1_0_in_layers_2", "unet:down_blocks.0.resnets.0.conv1.weight"},
          {"lora_te_text_model_encoder_layers_4_mlp_fc2",
           "text_encoder:text_model.encoder.layers.4.mlp.fc2.weight"}}));
  ASSERT_TRUE(patcher.apply({{shared, 0.5}}).is_ok());
  for (const auto& t : m->targets) {
    const auto& mod = shared->modules()[t.module];
    EXPECT_LT(max_diff(params.at(t.component).at(t.parameter),
                       fused(base.at(t.component).at(t.parameter), mod, 0.5)),
              1e-6)
        << mod.name;
  }
  EXPECT_EQ(count_changed(params, base), 4);
  ASSERT_TRUE(patcher.apply({}).is_ok());
  EXPECT_EQ(count_changed(params, base), 0);
}

}  // namespace
}  // namespace atelier::sd
