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

}  // namespace
}  // namespace atelier::inference
