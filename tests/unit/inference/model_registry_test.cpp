// ModelRegistry: add, find, duplicates refused, order kept.
#include "server/inference/model_registry.h"

#include <gtest/gtest.h>

#include <string>

#include "server/inference/null_generator.h"

namespace atelier::inference {
namespace {

ModelEntry entry_named(const std::string& id, const std::string& description = "") {
  ModelEntry e = null_model_entry();
  e.info.id = id;
  e.info.description = description;
  return e;
}

TEST(ModelRegistryTest, EmptyRegistryFindsNothing) {
  ModelRegistry registry;
  EXPECT_EQ(registry.find("null"), nullptr);
  EXPECT_TRUE(registry.models().empty());
}

TEST(ModelRegistryTest, AddThenFind) {
  ModelRegistry registry;
  ASSERT_TRUE(registry.add(null_model_entry()).is_ok());
  const ModelEntry* found = registry.find("null");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->info.id, "null");
  EXPECT_EQ(found->info.kind, "test");
  EXPECT_EQ(registry.find("cppn"), nullptr);
  EXPECT_EQ(registry.find("NULL"), nullptr);
  EXPECT_EQ(registry.find(""), nullptr);
}

TEST(ModelRegistryTest, DuplicateIdIsRefusedAndTheFirstKept) {
  ModelRegistry registry;
  ASSERT_TRUE(registry.add(entry_named("m", "first")).is_ok());
  Status st = registry.add(entry_named("m", "second"));
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists) << st.to_string();
  ASSERT_EQ(registry.models().size(), 1u);
  ASSERT_NE(registry.find("m"), nullptr);
  EXPECT_EQ(registry.find("m")->info.description, "first");
}

TEST(ModelRegistryTest, ModelsInTheOrderAdded) {
  ModelRegistry registry;
  for (const char* id : {"zeta", "alpha", "mid"}) {
    ASSERT_TRUE(registry.add(entry_named(id)).is_ok()) << id;
  }
  ASSERT_EQ(registry.models().size(), 3u);
  EXPECT_EQ(registry.models()[0].info.id, "zeta");
  EXPECT_EQ(registry.models()[1].info.id, "alpha");
  EXPECT_EQ(registry.models()[2].info.id, "mid");
  EXPECT_EQ(registry.find("alpha"), &registry.models()[1]);
}

TEST(ModelRegistryTest, FactoryBuildsAGeneratorForTheModel) {
  ModelRegistry registry;
  ASSERT_TRUE(registry.add(null_model_entry()).is_ok());
  const ModelEntry* entry = registry.find("null");
  ASSERT_NE(entry, nullptr);
  ASSERT_TRUE(entry->create);
  auto a = entry->create("cpu");
  auto b = entry->create("cuda:0");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_NE(a->get(), b->get());  // one instance per worker
  EXPECT_EQ((*a)->info().id, "null");
}

ModelEntry family_model(const std::string& id, const std::string& family, int max_loras = 5) {
  ModelEntry e = entry_named(id);
  e.info.family = family;
  e.info.max_loras = max_loras;
  return e;
}

LoraInfo lora(const std::string& name, const std::string& family, bool available = true) {
  return LoraInfo{name, family, std::string(64, 'c'), available, available ? "" : "truncated"};
}

TEST(ModelRegistryTest, LorasAreFoundByNameInTheOrderAdded) {
  ModelRegistry registry;
  EXPECT_EQ(registry.find_lora("x"), nullptr);
  ASSERT_TRUE(registry.add_lora(lora("ink", "sd1")).is_ok());
  ASSERT_TRUE(registry.add_lora(lora("film", "sdxl")).is_ok());
  Status twice = registry.add_lora(lora("ink", "sdxl"));
  EXPECT_EQ(twice.code(), StatusCode::kAlreadyExists);
  ASSERT_EQ(registry.loras().size(), 2u);
  EXPECT_EQ(registry.loras()[0].name, "ink");
  EXPECT_EQ(registry.loras()[1].name, "film");
  ASSERT_NE(registry.find_lora("ink"), nullptr);
  EXPECT_EQ(registry.find_lora("ink")->family, "sd1") << "the first one is kept";
  EXPECT_EQ(registry.find_lora("INK"), nullptr);
}

TEST(ModelRegistryTest, EachModelListsTheAvailableLorasOfItsFamily) {
  ModelRegistry registry;
  // Models before and after the LoRAs: both end up with the right list.
  ASSERT_TRUE(registry.add(family_model("xl", "sdxl")).is_ok());
  ASSERT_TRUE(registry.add_lora(lora("a", "sdxl")).is_ok());
  ASSERT_TRUE(registry.add_lora(lora("b", "sd1")).is_ok());
  ASSERT_TRUE(registry.add_lora(lora("broken", "sdxl", false)).is_ok());
  ASSERT_TRUE(registry.add_lora(lora("c", "sdxl")).is_ok());
  ASSERT_TRUE(registry.add(family_model("v15", "sd1")).is_ok());
  ASSERT_TRUE(registry.add(family_model("nolora", "sdxl", 0)).is_ok());
  ASSERT_TRUE(registry.add(entry_named("plain")).is_ok());
  EXPECT_EQ(registry.find("xl")->info.loras, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(registry.find("v15")->info.loras, (std::vector<std::string>{"b"}));
  EXPECT_TRUE(registry.find("nolora")->info.loras.empty());
  EXPECT_TRUE(registry.find("plain")->info.loras.empty());
}

}  // namespace
}  // namespace atelier::inference
