// No orphan files, through the server (issue 19, finding 6): cancelling running jobs leaves no
// image file, the running sweep removes old unreferenced files while the server runs, and
// GET /api/v1/projects/{id} reports the disk space of the project's images.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "server/auth/token.h"
#include "server/inference/null_generator.h"
#include "tests/integration/job_test_helpers.h"

namespace atelier::apitest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

nlohmann::json job_body(const std::string& model, nlohmann::json extra = {}) {
  nlohmann::json body = {{"model", model}, {"prompt", "a harbour"}, {"width", 64}, {"height", 64}};
  if (extra.is_object()) body.update(extra);
  return body;
}

// Where the test holds the "late" model: it enters, waits for the gate, then returns its images
// whatever the cancel token says (as a real model's last step or VAE decode does).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  bool open = false;
};

class LateGenerator : public inference::Generator {
 public:
  explicit LateGenerator(std::shared_ptr<Gate> gate)
      : gate_(std::move(gate)), inner_(inference::make_null_generator()) {}
  const inference::ModelInfo& info() const override { return inner_->info(); }
  Result<std::vector<inference::GeneratedImage>> generate(const inference::GenerateRequest& request,
                                                          inference::ProgressSink& progress,
                                                          const inference::CancelToken&) override {
    {
      std::unique_lock lock(gate_->mu);
      ++gate_->entered;
      gate_->cv.notify_all();
      gate_->cv.wait(lock, [&] { return gate_->open; });
    }
    inference::CancelToken never;
    return inner_->generate(request, progress, never);
  }

 private:
  std::shared_ptr<Gate> gate_;
  std::unique_ptr<inference::Generator> inner_;
};

class OrphanFilesApiTest : public ::testing::Test {
 protected:
  void start(std::function<void(ServerConfig&)> tweak = {}) {
    ServerConfig c = test_config(dir_);
    c.enable_null_model = true;
    c.null_step_ms = 20;
    if (tweak) tweak(c);
    app::AppHooks hooks;
    hooks.register_models = [gate = gate_](inference::ModelRegistry& models) -> Status {
      inference::ModelEntry late = inference::null_model_entry();
      late.info.id = "late";
      late.create = [gate](const std::string&) -> Result<std::unique_ptr<inference::Generator>> {
        return std::unique_ptr<inference::Generator>(std::make_unique<LateGenerator>(gate));
      };
      return models.add(std::move(late));
    };
    server_ = std::make_unique<TestServer>(c, std::move(hooks));
    port_ = server_->port();
    owner_ = register_account(port_, "owner");
    project_ = create_project(port_, owner_.token);
  }

  void TearDown() override {
    open_gate();  // a worker held there would keep the server from stopping
    server_.reset();
  }

  void open_gate() {
    std::lock_guard lock(gate_->mu);
    gate_->open = true;
    gate_->cv.notify_all();
  }

  // Waits until the late model has been entered `n` times.
  bool wait_entered(int n) {
    std::unique_lock lock(gate_->mu);
    return gate_->cv.wait_for(lock, 10s, [&] { return gate_->entered >= n; });
  }

  fs::path images_dir() const { return dir_ / "data" / "images"; }

  std::vector<fs::path> pngs() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(images_dir())) {
      if (e.is_regular_file() && e.path().extension() == ".png") out.push_back(e.path());
    }
    return out;
  }

  // Files are settled right after the job's commit, on the thread that committed it, so an
  // answer showing the job ended may come a moment before: wait for the count, up to 5 s.
  size_t wait_png_count(size_t want) const {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (pngs().size() != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    return pngs().size();
  }

  int64_t disk_bytes(const std::string& token) {
    auto r = expect_status(call(port_, "GET", project_path(project_), "", bearer(token)), 200,
                           "get project");
    EXPECT_TRUE(r.json["disk_bytes"].is_number_integer()) << r.body;
    return r.json.value("disk_bytes", int64_t{-1});
  }

  testing::TempDir dir_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  std::unique_ptr<TestServer> server_;
  uint16_t port_ = 0;
  Account owner_;
  int64_t project_ = 0;
};

TEST_F(OrphanFilesApiTest, CancellingRunningJobsLeavesNoFile) {
  start();
  // Cancelled while generating: the model stops at its next step.
  for (int i = 0; i < 3; ++i) {
    int64_t id = submit_ok(port_, owner_.token, project_,
                           job_body("null", {{"steps", 100}, {"seed", i}, {"count", 2}}));
    wait_state(port_, owner_.token, id, "running");
    auto r = call(port_, "POST", job_path(id, "/cancel"), "", bearer(owner_.token));
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(wait_terminal(port_, owner_.token, id)["state"], "cancelled");
  }
  // Cancelled after the model's last look at the token: its images come back anyway, are
  // written, and must go again.
  for (int i = 0; i < 3; ++i) {
    int64_t id = submit_ok(port_, owner_.token, project_,
                           job_body("late", {{"seed", 10 + i}, {"count", 2}}));
    wait_state(port_, owner_.token, id, "running");
    ASSERT_TRUE(wait_entered(i + 1));
    auto r = call(port_, "POST", job_path(id, "/cancel"), "", bearer(owner_.token));
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_TRUE(r.json["cancel_requested"].get<bool>());
    {
      std::lock_guard lock(gate_->mu);
      gate_->open = true;
      gate_->cv.notify_all();
    }
    nlohmann::json job = wait_terminal(port_, owner_.token, id);
    EXPECT_EQ(job["state"], "cancelled");
    EXPECT_TRUE(job["images"].empty());
    std::lock_guard lock(gate_->mu);
    gate_->open = false;  // the next one waits again
  }
  EXPECT_EQ(wait_png_count(0), 0u) << "a cancelled job's image is still on disk";
  EXPECT_EQ(disk_bytes(owner_.token), 0);

  // What is done stays.
  int64_t done = submit_ok(port_, owner_.token, project_, job_body("null", {{"steps", 1}}));
  ASSERT_EQ(wait_terminal(port_, owner_.token, done)["state"], "done");
  EXPECT_EQ(wait_png_count(1), 1u);
}

TEST_F(OrphanFilesApiTest, DiskBytesGrowsByTheImageSizes) {
  start();
  Account viewer = register_account(port_, "viewer");
  set_member(port_, owner_.token, project_, viewer.id, "viewer");
  EXPECT_EQ(disk_bytes(owner_.token), 0);

  int64_t total = 0;
  for (int seed : {1, 2}) {
    int64_t id = submit_ok(port_, owner_.token, project_,
                           job_body("null", {{"steps", 1}, {"seed", seed * 10}, {"count", 2}}));
    nlohmann::json job = wait_terminal(port_, owner_.token, id);
    ASSERT_EQ(job["state"], "done") << job.dump();
    ASSERT_EQ(job["images"].size(), 2u);
    for (const auto& image : job["images"]) {
      const int64_t bytes = image["bytes"].get<int64_t>();
      EXPECT_GT(bytes, 0);
      total += bytes;
    }
    EXPECT_EQ(disk_bytes(owner_.token), total);
  }
  int64_t on_disk = 0;
  for (const fs::path& p : pngs()) on_disk += static_cast<int64_t>(fs::file_size(p));
  EXPECT_EQ(on_disk, total) << "disk_bytes is what the files take";
  EXPECT_EQ(disk_bytes(viewer.token), total) << "members see it too";

  // The same images again are stored once and counted once.
  int64_t again = submit_ok(port_, owner_.token, project_,
                            job_body("null", {{"steps", 1}, {"seed", 10}, {"count", 2}}));
  ASSERT_EQ(wait_terminal(port_, owner_.token, again)["state"], "done");
  EXPECT_EQ(disk_bytes(owner_.token), total);

  // Another project's images are its own.
  int64_t other = create_project(port_, owner_.token, "Other");
  auto r = expect_status(call(port_, "GET", project_path(other), "", bearer(owner_.token)), 200,
                         "get other project");
  EXPECT_EQ(r.json["disk_bytes"], 0);
}

TEST_F(OrphanFilesApiTest, TheSweepRemovesOldUnreferencedFilesWhileTheServerRuns) {
  start([](ServerConfig& c) {
    c.orphan_sweep_interval_ms = 20;
    c.orphan_grace_ms = 60'000;
  });
  int64_t id = submit_ok(port_, owner_.token, project_, job_body("null", {{"steps", 1}}));
  nlohmann::json job = wait_terminal(port_, owner_.token, id);
  ASSERT_EQ(job["state"], "done");
  const std::string kept_sha = job["images"][0]["sha256"].get<std::string>();
  const fs::path kept = images_dir() / kept_sha.substr(0, 2) / (kept_sha + ".png");
  ASSERT_TRUE(fs::exists(kept));

  // Files no row refers to, as a crash between write and commit leaves them: one old, one new.
  auto plant = [&](const std::string& content) {
    const std::string sha = auth::sha256_hex(content);
    const fs::path p = images_dir() / sha.substr(0, 2) / (sha + ".png");
    testing::write_file(p, content);
    return p;
  };
  const auto an_hour_ago = fs::file_time_type::clock::now() - 1h;
  const fs::path old_orphan = plant("old orphan");
  const fs::path fresh_orphan = plant("fresh orphan");
  fs::last_write_time(old_orphan, an_hour_ago);
  fs::last_write_time(kept, an_hour_ago);

  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fs::exists(old_orphan) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_FALSE(fs::exists(old_orphan)) << "no sweep removed it within 10 s";
  EXPECT_TRUE(fs::exists(fresh_orphan)) << "inside the grace period";
  EXPECT_TRUE(fs::exists(kept)) << "an image row refers to it";
  auto file =
      call(port_, "GET",
           "/api/v1/images/" + std::to_string(job["images"][0]["id"].get<int64_t>()) + "/file", "",
           bearer(owner_.token));
  EXPECT_EQ(file.status, 200);
}

}  // namespace
}  // namespace atelier::apitest
