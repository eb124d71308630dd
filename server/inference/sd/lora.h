// LoRA in the kohya-ss / A1111 naming most shared LoRAs use, merged into a loaded model's
// weights and switched between jobs without reloading the model.
//
// Contract:
//   * A file holds modules `<name>.lora_down.weight`, `<name>.lora_up.weight` and optionally
//     `<name>.alpha` (one value), where <name> is `lora_unet_`, `lora_te_` (SD 1.x),
//     `lora_te1_` or `lora_te2_` (SDXL) followed by a module path with every '.' written '_'.
//     Linear: down [r, in], up [out, r]; Conv2d k x k: down [r, in, k, k], up [out, r, 1, 1]
//     (a 1x1 conv may also carry 2-D factors). F32, F16, BF16 and F64 values; parsed tensors are
//     kept on the CPU in float32 so one parse serves every dtype and device.
//   * Malformed modules (down without up or the reverse, rank mismatch, shapes that are neither
//     form, non-finite values, an alpha that is not one value) refuse the whole file, naming the
//     key. Keys of other forms (LoHa/LoKr/DoRA parts, non-kohya names) are not applied; they are
//     counted as unmatched.
//   * Family (SD 1.x or SDXL) comes from the names and shapes: te1/te2 modules, label_emb /
//     add_embedding, a transformer depth above 1, or cross-attention keys 2048 wide mean SDXL;
//     anything else is SD 1.x (whose kohya files use diffusers paths; SD 2.x LoRAs also read as
//     SD 1.x and then fail the shape check against the model, naming the key).
//   * Pairing: every Linear/Conv weight of the model (the UNet's diffusers names and their
//     original LDM/SGM names from unet_original_names, the text encoders' transformers names)
//     yields the kohya names it answers to, so both path styles pair for both families. A file
//     for another family, or one of whose modules none pairs, is refused (invalid_argument,
//     field "loras"); a paired module whose shapes do not fit its weight is refused naming the key.
//   * Merge: W' = W + weight * (alpha / rank) * up @ down (no alpha: alpha = rank), conv per
//     kernel tap (up [out, r] @ down [r, in*k*k], reshaped), in float32 on the weight's device,
//     all LoRAs of a set summed in float32, then cast once to the weight's dtype.
//   * Switching (LoraPatcher::apply): restores every weight the previous set patched from a
//     backup copy taken before patching (bit-exact, no drift however often sets change; the base
//     model is never re-read), then patches the new set. The same set again is a no-op. A set
//     that fails to pair changes nothing.
//
// Costs: parsing reads the file once and holds float32 copies (Lora::bytes()). LoraPatcher::create
// builds a name index of a few thousand strings (SDXL). apply() does, per patched weight, one
// rank-r matrix product and two copies; backups of patched weights (model dtype) live on the CPU
// so they take no accelerator memory.
// Threads: a Lora is immutable; share it (shared_ptr<const Lora>) across threads and caches.
// A LoraPatcher writes the model's weights in place: its owner must not run the model while
// apply() runs, and must not call it from two threads at once.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "server/inference/sd/unet.h"

namespace atelier::safetensors {
class File;
}

namespace atelier::sd {

enum class LoraFamily { kSd1, kSdxl };
std::string_view lora_family_name(LoraFamily family);  // "SD 1.x", "SDXL"
// The family of LoRAs a model takes: SDXL for text_time UNets, SD 1.x otherwise.
LoraFamily model_lora_family(const UNetConfig& unet);

struct LoraModule {
  std::string name;    // kohya module name, e.g. "lora_unet_input_blocks_4_1_proj_in"
  torch::Tensor down;  // CPU float32: [r, in] or [r, in, k, k]
  torch::Tensor up;    // CPU float32: [out, r] or [out, r, 1, 1]
  double alpha = 0;    // the file's alpha, or the rank when it has none
  bool has_alpha = false;
  int64_t rank() const { return down.size(0); }
  int64_t key_count() const { return has_alpha ? 3 : 2; }
};

// One parsed LoRA file.
class Lora {
 public:
  // `label` names the LoRA in messages (its file name without extension for load()).
  static Result<Lora> load(const std::string& path);
  static Result<Lora> parse(const safetensors::File& file, std::string label);

  const std::string& label() const { return label_; }
  LoraFamily family() const { return family_; }
  const std::vector<LoraModule>& modules() const { return modules_; }
  // Keys that are no kohya LoRA module part: never applied, counted as unmatched.
  const std::vector<std::string>& unsupported_keys() const { return unsupported_; }
  int64_t key_count() const;
  int64_t bytes() const;  // memory held by the parsed tensors

 private:
  std::string label_;
  LoraFamily family_ = LoraFamily::kSd1;
  std::vector<LoraModule> modules_;
  std::vector<std::string> unsupported_;
};

// How one LoRA pairs with one model.
struct LoraMatch {
  struct Target {
    size_t module = 0;      // index into Lora::modules()
    std::string component;  // "unet", "text_encoder" or "text_encoder_2"
    std::string parameter;  // e.g. "down_blocks.1.attentions.0.proj_in.weight"
  };
  std::vector<Target> targets;              // one per paired module
  int64_t matched_keys = 0;                 // keys of the paired modules
  std::vector<std::string> unmatched_keys;  // every other key of the file
};

struct LoraUse {
  std::shared_ptr<const Lora> lora;
  double weight = 1.0;
};

// What apply() did with one LoRA of the set (the job reports it).
struct LoraReport {
  std::string label;
  double weight = 0;
  int64_t matched_modules = 0, matched_keys = 0, unmatched_keys = 0;
};

// Patches one loaded model. Hand it the model's live parameter tensors by component ("unet",
// "text_encoder", "text_encoder_2"; others are ignored) and diffusers name; the model's modules
// must hold these same tensors (they are updated in place).
class LoraPatcher {
 public:
  using Parameters = std::map<std::string, std::map<std::string, torch::Tensor>>;

  static Result<LoraPatcher> create(const UNetConfig& unet, Parameters parameters);

  LoraFamily family() const { return family_; }
  // Pairs `lora` with this model without changing anything; the errors of the contract.
  Result<LoraMatch> match(const Lora& lora) const;
  // Makes `set` the applied set (empty: the base model). Entries with weight 0 are checked but
  // change nothing. The same set (same Lora objects, same weights, same order) as the applied
  // one returns at once; a re-parsed file is another object, so keep parsed LoRAs cached. On
  // error the previous set stays applied (or, should a tensor operation fail midway, the base
  // model is restored and an internal error returned).
  Result<std::vector<LoraReport>> apply(const std::vector<LoraUse>& set);
  const std::vector<LoraUse>& applied() const { return applied_; }
  // Weights currently differing from the base model (with a backup each).
  size_t patched_count() const { return backups_.size(); }

 private:
  using Key = std::pair<std::string, std::string>;  // component, parameter
  void restore();

  LoraFamily family_ = LoraFamily::kSd1;
  Parameters params_;
  std::map<std::string, Key> index_;  // kohya module name -> weight it patches
  std::map<Key, torch::Tensor> backups_;
  std::vector<LoraUse> applied_;
  std::vector<LoraReport> reports_;
};

}  // namespace atelier::sd
