#include "server/inference/model_registry.h"

namespace atelier::inference {

Status ModelRegistry::add(ModelEntry entry) {
  if (find(entry.info.id)) return Status::already_exists("model '" + entry.info.id + "' twice");
  refresh_loras(entry.info);
  models_.push_back(std::move(entry));
  return Status::ok();
}

const ModelEntry* ModelRegistry::find(const std::string& id) const {
  for (const ModelEntry& m : models_) {
    if (m.info.id == id) return &m;
  }
  return nullptr;
}

Status ModelRegistry::add_lora(LoraInfo lora) {
  if (find_lora(lora.name)) return Status::already_exists("LoRA '" + lora.name + "' twice");
  loras_.push_back(std::move(lora));
  for (ModelEntry& m : models_) refresh_loras(m.info);
  return Status::ok();
}

const LoraInfo* ModelRegistry::find_lora(const std::string& name) const {
  for (const LoraInfo& l : loras_) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

bool ModelRegistry::lora_fits(const ModelInfo& model, const LoraInfo& lora) {
  return model.max_loras > 0 && !model.family.empty() && lora.available &&
         lora.family == model.family;
}

void ModelRegistry::refresh_loras(ModelInfo& info) const {
  info.loras.clear();
  for (const LoraInfo& l : loras_) {
    if (lora_fits(info, l)) info.loras.push_back(l.name);
  }
}

}  // namespace atelier::inference
