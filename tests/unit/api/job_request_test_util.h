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

}  // namespace atelier::api::jobrequesttest
