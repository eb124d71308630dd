// Crash safety of uploads with the real `atelier` binary: while members upload concurrently,
// the server is killed with SIGKILL at the named points of an upload (after the file is in the
// image store but before the commit; after the commit but before the answer) and at random
// moments, again and again; some uploads share their bytes (one file, several rows). After a
// final restart (and its start-up sweep) every file in the store has a row, every row has its
// file, no temporary file remains, and every acknowledged (201) upload is there with exactly
// one image.uploaded event.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "server/store/sqlite.h"
#include "tests/integration/api_test_helpers.h"
#include "tests/integration/crash_server.h"
#include "tests/integration/upload_test_files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace atelier {
namespace {

using namespace std::chrono_literals;
using apitest::bearer;
using testing::CrashServer;

const std::string kBin = ATELIER_BIN;
constexpr int kCycles = 12;
constexpr int kUploadsPerCycle = 6;

// No models; an hourly upload limit the test never reaches.
const std::vector<std::string> kServerArgs = {"--max-uploads-per-user-per-hour", "100000",
                                              "--log-level", "warn"};

TEST(UploadCrashTest, KilledMidUploadLeavesNoOrphanFilesOrRows) {
  testing::TempDir dir("atelier-upload-crash");
  std::mt19937 rng(20261127);
  std::string token;
  int64_t project = 0;
  std::mutex mu;
  std::map<int64_t, std::string> acknowledged;  // image id -> sha256, from 201 answers
  int self_killed = 0;
  int sent = 0;
  // Shared by a third of the uploads: the same bytes must stay while any row uses them.
  const std::string shared = uploadtest::png_of(uploadtest::gradient(48, 48, 3, 200));

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    // Alternate: crash points armed (the process kills itself inside an upload), or the harness
    // kills it at a random moment while uploads are in flight.
    const bool armed = cycle % 2 == 1;
    CrashServer server(kBin, dir, cycle,
                       armed ? "upload_after_put:0.3,upload_after_commit:0.3" : "", kServerArgs);
    ASSERT_TRUE(server.listening()) << "no upload crash point lies in start-up";
    const uint16_t port = server.port();
    if (cycle == 0) {
      token = apitest::register_account(port, "crash").token;
      project = apitest::create_project(port, token);
    }
    std::vector<std::string> files;
    for (int i = 0; i < kUploadsPerCycle; ++i) {
      files.push_back(i % 3 == 0 ? shared
                                 : uploadtest::png_of(uploadtest::gradient(
                                       48, 48, 3, cycle * kUploadsPerCycle + i)));
    }
    std::vector<std::thread> threads;
    for (const std::string& file : files) {
      threads.emplace_back([&, file] {
        std::optional<testing::RawResponse> r;
        try {
          r = testing::http_request(
              port, "POST", apitest::project_path(project, "/uploads"), file,
              apitest::header_lines({bearer(token), "Content-Type: image/png"}));
        } catch (const std::runtime_error&) {
          return;  // the server was gone before we connected: not acknowledged
        }
        if (!r) return;  // killed under us: not acknowledged
        std::lock_guard lock(mu);
        ++sent;
        ASSERT_EQ(r->status, 201) << r->body;
        auto image = nlohmann::json::parse(r->body)["image"];
        acknowledged[image["id"].get<int64_t>()] = image["sha256"].get<std::string>();
      });
    }
    if (!armed) {
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
      server.child().signal(SIGKILL);
    }
    for (auto& t : threads) t.join();
    if (armed && server.child().wait(0ms)) {
      ++self_killed;
    } else {
      server.child().signal(SIGKILL);
    }
    ASSERT_TRUE(server.child().wait(10s));
  }
  std::printf(
      "[ upload crash ] %d cycles, %d killed at a crash point, %d answered, %zu "
      "acknowledged\n",
      kCycles, self_killed, sent, acknowledged.size());
  EXPECT_GT(self_killed, 0) << "the crash points were never reached";
  EXPECT_GT(acknowledged.size(), 0u);

  // The final run without crash points: its start-up sweep removes what the kills left.
  {
    CrashServer server(kBin, dir, kCycles, "", kServerArgs);
    for (const auto& [id, sha] : acknowledged) {
      auto r = apitest::call(server.port(), "GET", "/api/v1/images/" + std::to_string(id), "",
                             bearer(token));
      ASSERT_EQ(r.status, 200) << "acknowledged upload " << id << " was lost: " << r.body;
      EXPECT_EQ(r.json["sha256"], sha);
    }
    server.child().signal(SIGTERM);
    ASSERT_EQ(server.child().wait(20s), 0);
  }

  auto db = store::Db::open(dir / "data" / "atelier.db", store::OpenMode::kReadOnly);
  ASSERT_TRUE(db.is_ok());
  std::map<int64_t, std::string> rows;  // every image is an upload here
  auto stmt = db->prepare("SELECT id, sha256, source FROM images");
  ASSERT_TRUE(stmt.is_ok());
  while (*stmt->step()) {
    rows[stmt->column_int64(0)] = stmt->column_text(1);
    EXPECT_EQ(stmt->column_text(2), "upload");
  }
  for (const auto& [id, sha] : acknowledged) {
    ASSERT_TRUE(rows.contains(id)) << "acknowledged upload " << id;
    EXPECT_EQ(rows[id], sha);
  }

  // Every row has its file; every file has a row; nothing temporary is left.
  std::set<std::string> referenced;
  for (const auto& [id, sha] : rows) referenced.insert(sha);
  for (const auto& sha : referenced) {
    EXPECT_TRUE(
        std::filesystem::exists(dir / "data" / "images" / sha.substr(0, 2) / (sha + ".png")))
        << "row without its file: " << sha;
  }
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir / "data" / "images")) {
    if (!entry.is_regular_file()) continue;
    ++files;
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
    EXPECT_TRUE(referenced.contains(entry.path().stem().string()))
        << "orphan file " << entry.path();
  }
  EXPECT_EQ(static_cast<size_t>(files), referenced.size());

  // The log agrees with the rows: one image.uploaded per row (same transaction), no gaps.
  std::map<int64_t, int> uploaded_events;
  auto events = db->prepare("SELECT seq, type, data FROM events WHERE project_id = " +
                            std::to_string(project) + " ORDER BY seq");
  ASSERT_TRUE(events.is_ok());
  int64_t expected_seq = 1;
  while (*events->step()) {
    EXPECT_EQ(events->column_int64(0), expected_seq++);
    if (events->column_text(1) != "image.uploaded") continue;
    auto data = nlohmann::json::parse(events->column_text(2));
    ++uploaded_events[data["image"]["id"].get<int64_t>()];
  }
  for (const auto& [id, sha] : rows) {
    EXPECT_EQ(uploaded_events[id], 1) << "image.uploaded events of upload " << id;
  }
  EXPECT_EQ(uploaded_events.size(), rows.size()) << "an event for an upload that is not there";
}

}  // namespace
}  // namespace atelier
