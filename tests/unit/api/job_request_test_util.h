// Shared by the job_request tests: a JSON request and a registry with two models.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "server/http/message.h"
#include "server/inference/model_registry.h"
#include "server/inference/null_generator.h"

namespace atelier::api::jobrequesttest {

inline http::Request make_request(std::string body) {
  http::Request r;
  r.method = http::Method::kPost;
  r.body = std::move(body);
  r.headers.set("Content-Type", "application/json");
  return r;
}

// The null model, plus "plain": txt2img only, no upscale.
inline inference::ModelRegistry make_registry() {
  inference::ModelRegistry registry;
  EXPECT_TRUE(registry.add(inference::null_model_entry()).is_ok());
  inference::ModelEntry plain = inference::null_model_entry();
  plain.info.id = "plain";
  plain.info.modes = {inference::Mode::kTxt2Img};
  plain.info.upscale_factors.clear();
  plain.info.samplers = {"euler", "ddim"};
  EXPECT_TRUE(registry.add(std::move(plain)).is_ok());
  return registry;
}

inline const std::string kXlHash = std::string(64, 'a');
inline std::string lora_hash(char c) {
  return std::string(60, c) + "0000";
}

// make_registry() plus what issue 17 brings: "xl" (family sdxl, size conditioning, 5 LoRAs,
// native 1024x1024), "v15" (sd1, LoRAs, no size conditioning), "gone" (listed, unavailable),
// and LoRAs: ink, grain, l3..l6 (sdxl), old (sd1), broken (sdxl, unavailable).
inline inference::ModelRegistry make_lora_registry() {
  inference::ModelRegistry registry = make_registry();
  inference::ModelEntry xl = inference::null_model_entry();
  xl.info.id = "xl";
  xl.info.family = "sdxl";
  xl.info.hash = kXlHash;
  xl.info.size_conditioning = true;
  xl.info.max_loras = 5;
  xl.info.width = {256, 2048, 1024, 8};
  xl.info.height = {256, 2048, 1024, 8};
  EXPECT_TRUE(registry.add(std::move(xl)).is_ok());
  inference::ModelEntry v15 = inference::null_model_entry();
  v15.info.id = "v15";
  v15.info.family = "sd1";
  v15.info.max_loras = 5;
  EXPECT_TRUE(registry.add(std::move(v15)).is_ok());
  inference::ModelEntry gone = inference::null_model_entry();
  gone.info.id = "gone";
  gone.info.family = "sdxl";
  gone.info.available = false;
  gone.info.unavailable_reason = "the file is truncated (12 of 6938 MB)";
  EXPECT_TRUE(registry.add(std::move(gone)).is_ok());
  char c = 'b';
  for (const char* name : {"ink", "grain", "l3", "l4", "l5", "l6"}) {
    EXPECT_TRUE(registry.add_lora({name, "sdxl", lora_hash(c++), true, ""}).is_ok());
  }
  EXPECT_TRUE(registry.add_lora({"old", "sd1", lora_hash('o'), true, ""}).is_ok());
  EXPECT_TRUE(registry.add_lora({"broken", "sdxl", "", false, "no lora_up weights"}).is_ok());
  return registry;
}

}  // namespace atelier::api::jobrequesttest
