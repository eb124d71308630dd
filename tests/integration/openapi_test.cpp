// proto/openapi.yaml and the server's router must describe the same endpoints.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>

#include "server/app/routes.h"

namespace atelier::app {
namespace {

const std::string kSpec = std::string(ATELIER_SOURCE_DIR) + "/proto/openapi.yaml";

// "/jobs/{id:int}" -> "/jobs/{id}": the spec has no types in paths.
std::string strip_param_types(const std::string& pattern) {
  return std::regex_replace(pattern, std::regex(R"(\{([A-Za-z0-9_]+):[a-z]+\})"), "{$1}");
}

std::set<std::string> router_operations() {
  http::Router router;
  http::StaticFiles files("/nonexistent");
  RouteServices services;
  services.static_files = &files;
  Status st = build_router(router, services);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  std::set<std::string> ops;
  for (const auto& r : router.routes()) {
    ops.insert(std::string(http::method_name(r.method)) + " " + strip_param_types(r.pattern));
  }
  return ops;
}

std::set<std::string> spec_operations(const YAML::Node& spec) {
  std::set<std::string> ops;
  for (const auto& path : spec["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      if (method == "parameters" || method == "summary" || method == "description") continue;
      std::string upper;
      for (char c : method) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      ops.insert(upper + " " + path.first.as<std::string>());
    }
  }
  return ops;
}

TEST(OpenApiTest, SpecIsOpenApi31) {
  YAML::Node spec = YAML::LoadFile(kSpec);
  ASSERT_TRUE(spec["openapi"]);
  EXPECT_EQ(spec["openapi"].as<std::string>().rfind("3.1", 0), 0u);
  EXPECT_TRUE(spec["components"]["schemas"]["Error"]);
}

TEST(OpenApiTest, EveryRouteIsInTheSpecAndEverySpecPathHasARoute) {
  YAML::Node spec = YAML::LoadFile(kSpec);
  auto routes = router_operations();
  auto documented = spec_operations(spec);
  ASSERT_FALSE(routes.empty());
  for (const auto& r : routes) {
    EXPECT_TRUE(documented.count(r)) << "route missing from proto/openapi.yaml: " << r;
  }
  for (const auto& d : documented) {
    EXPECT_TRUE(routes.count(d)) << "proto/openapi.yaml documents a path with no route: " << d;
  }
}

TEST(OpenApiTest, EveryOperationDocumentsResponsesAndAnId) {
  YAML::Node spec = YAML::LoadFile(kSpec);
  for (const auto& path : spec["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      if (method == "parameters") continue;
      EXPECT_TRUE(op.second["responses"]) << method << " " << path.first.as<std::string>();
      EXPECT_TRUE(op.second["operationId"]) << method << " " << path.first.as<std::string>();
    }
  }
}

}  // namespace
}  // namespace atelier::app
