#include "server/inference/torch_runtime.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

namespace atelier::inference {
namespace {

TEST(TorchRuntimeTest, AutoIsEveryCudaDeviceOrOneCpuWorker) {
  auto devices = resolve_worker_devices({"auto"});
  ASSERT_TRUE(devices.is_ok());
  const int cuda = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (cuda == 0) {
    EXPECT_EQ(*devices, std::vector<std::string>{"cpu"});
  } else {
    ASSERT_EQ(devices->size(), static_cast<size_t>(cuda));
    EXPECT_EQ(devices->front(), "cuda:0");
  }
  auto mixed = resolve_worker_devices({"cpu", "cpu"});
  ASSERT_TRUE(mixed.is_ok());
  EXPECT_EQ(*mixed, (std::vector<std::string>{"cpu", "cpu"}));
}

TEST(TorchRuntimeTest, ACudaDeviceThisLibtorchCannotSeeIsRefused) {
  auto devices = resolve_worker_devices({"cuda:63"});
  ASSERT_FALSE(devices.is_ok());
  EXPECT_EQ(devices.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(devices.status().message().find("cuda:63"), std::string::npos);
  if (!torch::cuda::is_available()) {
    EXPECT_FALSE(resolve_worker_devices({"cuda"}).is_ok());
  }
}

TEST(TorchRuntimeTest, WorkerThreadStateAndDescription) {
  auto state = torch_worker_thread_init("cpu");
  EXPECT_NE(state, nullptr);
  EXPECT_FALSE(torch_description().empty());
}

}  // namespace
}  // namespace atelier::inference
