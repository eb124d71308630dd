// ModelRegistry: the models this server offers, each with its declared parameters and a factory
// that builds an instance for one device, and the LoRA files (`--loras-dir`) jobs may apply. The
// REST layer validates requests against info(); each worker thread creates its own instances (a
// model instance never crosses threads).
//
// Filled at start-up, before any request or worker reads it; read-only afterwards.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/inference/generator.h"

namespace atelier::inference {

using GeneratorFactory =
    std::function<Result<std::unique_ptr<Generator>>(const std::string& device)>;

struct ModelEntry {
  ModelInfo info;
  GeneratorFactory create;
};

class ModelRegistry {
 public:
  // Adds a model; kAlreadyExists for a second model with the same id.
  Status add(ModelEntry entry);
  // nullptr when unknown.
  const ModelEntry* find(const std::string& id) const;
  // In the order added.
  const std::vector<ModelEntry>& models() const { return models_; }

  // Adds a LoRA; kAlreadyExists for a second one with the same name.
  Status add_lora(LoraInfo lora);
  // nullptr when unknown.
  const LoraInfo* find_lora(const std::string& name) const;
  // In the order added.
  const std::vector<LoraInfo>& loras() const { return loras_; }

  // The registry keeps every model's ModelInfo::loras up to date (whichever of add() and
  // add_lora() comes first): the names of the available LoRAs of the model's family, in the
  // order added, for models that take LoRAs (max_loras > 0 and a family); empty otherwise.
  static bool lora_fits(const ModelInfo& model, const LoraInfo& lora);

 private:
  void refresh_loras(ModelInfo& info) const;

  std::vector<ModelEntry> models_;
  std::vector<LoraInfo> loras_;
};

}  // namespace atelier::inference
