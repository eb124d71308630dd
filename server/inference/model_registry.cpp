#include "server/inference/model_registry.h"

namespace atelier::inference {

Status ModelRegistry::add(ModelEntry entry) {
  if (find(entry.info.id)) return Status::already_exists("model '" + entry.info.id + "' twice");
  models_.push_back(std::move(entry));
  return Status::ok();
}

const ModelEntry* ModelRegistry::find(const std::string& id) const {
  for (const ModelEntry& m : models_) {
    if (m.info.id == id) return &m;
  }
  return nullptr;
}

}  // namespace atelier::inference
