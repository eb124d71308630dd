// ModelRegistry: the models this server offers, each with its declared parameters and a factory
// that builds an instance for one device. The REST layer validates requests against info(); each
// worker thread creates its own instances (a model instance never crosses threads).
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

 private:
  std::vector<ModelEntry> models_;
};

}  // namespace atelier::inference
