// Crash safety of the job queue with the real `atelier` binary: the server is killed with
// SIGKILL at random moments, and at the named points of a job's completion (after the image
// files are renamed into the store but before the commit; after the commit but before anyone
// is told), again and again. After a final restart every accepted job must reach a terminal
// state, each done job must have exactly one set of image rows and files, no temporary file may
// remain, and no job may have two job.done events.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "server/store/sqlite.h"
#include "tests/integration/api_test_helpers.h"
#include "tests/integration/crash_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace atelier {
namespace {

using namespace std::chrono_literals;
using apitest::bearer;
using apitest::call;
using testing::CrashServer;

const std::string kBin = ATELIER_BIN;
constexpr int kCycles = 24;
constexpr int kJobsPerCycle = 4;

// The null model, fast steps, and attempts enough to survive every kill.
const std::vector<std::string> kServerArgs = {
    "--enable-null-model", "true", "--null-step-ms", "3",
    "--job-max-attempts",  "50",   "--log-level",    "warn"};

TEST(JobCrashTest, KilledAtRandomPointsNoAcceptedJobIsLostOrDoubled) {
  testing::TempDir dir("atelier-crash-test");
  std::mt19937 rng(20261126);
  std::string token;
  int64_t project = 0;
  std::set<int64_t> accepted;
  int self_killed = 0;

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    // Alternate: crash points armed (the process kills itself inside a completion), or the
    // harness kills it at a random moment.
    std::string crash_at = cycle % 2 == 0 ? "after_rename:0.25,after_commit:0.25" : "";
    CrashServer server(kBin, dir, cycle, crash_at, kServerArgs);
    if (!server.listening()) {
      ++self_killed;
      continue;
    }
    const uint16_t port = server.port();
    if (cycle == 0) {
      token = apitest::register_account(port, "crash").token;
      project = apitest::create_project(port, token);
    }
    for (int i = 0; i < kJobsPerCycle; ++i) {
      nlohmann::json body = {{"model", "null"},
                             {"prompt", "crash " + std::to_string(cycle)},
                             {"steps", 1 + static_cast<int>(rng() % 4)},
                             {"count", 1 + static_cast<int>(rng() % 2)},
                             {"seed", static_cast<int>(rng() % 1000)}};
      auto r = testing::http_request(port, "POST", apitest::project_path(project, "/jobs"),
                                     body.dump(), bearer(token));
      if (!r) break;  // the server died under us (a crash point): that job was not accepted
      ASSERT_EQ(r->status, 202) << r->body;
      accepted.insert(nlohmann::json::parse(r->body)["id"].get<int64_t>());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 120));
    if (server.child().wait(0ms)) {
      ++self_killed;
    } else {
      server.child().signal(SIGKILL);
    }
    ASSERT_TRUE(server.child().wait(10s));
  }
  std::printf("[ crash test ] %d cycles, %d killed at a crash point, %zu jobs accepted\n", kCycles,
              self_killed, accepted.size());

  // Final run without crash points: everything left must finish.
  {
    CrashServer server(kBin, dir, kCycles, "", kServerArgs);
    const uint16_t port = server.port();
    for (int64_t id : accepted) {
      auto deadline = std::chrono::steady_clock::now() + 60s;
      while (true) {
        auto r = call(port, "GET", "/api/v1/jobs/" + std::to_string(id), "", bearer(token));
        ASSERT_EQ(r.status, 200) << "accepted job " << id << " was lost: " << r.body;
        std::string state = r.json["state"];
        if (state == "done" || state == "failed" || state == "cancelled") break;
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "job " << id << " stuck " << state;
        std::this_thread::sleep_for(20ms);
      }
    }
    server.child().signal(SIGTERM);
    ASSERT_EQ(server.child().wait(20s), 0);
  }

  auto db = store::Db::open(dir / "data" / "atelier.db", store::OpenMode::kReadOnly);
  ASSERT_TRUE(db.is_ok());
  // No job is left behind, every accepted one is there.
  auto stmt = db->prepare("SELECT id, state, count FROM jobs");
  ASSERT_TRUE(stmt.is_ok());
  std::map<int64_t, std::pair<std::string, int64_t>> jobs;
  while (*stmt->step()) jobs[stmt->column_int64(0)] = {stmt->column_text(1), stmt->column_int64(2)};
  for (int64_t id : accepted) ASSERT_TRUE(jobs.contains(id)) << "job " << id;
  int done = 0;
  for (const auto& [id, row] : jobs) {
    EXPECT_TRUE(row.first == "done" || row.first == "failed" || row.first == "cancelled")
        << "job " << id << " is " << row.first;
    if (row.first != "done") continue;
    ++done;
    auto images = db->prepare("SELECT COUNT(*), COUNT(DISTINCT idx) FROM images WHERE job_id = " +
                              std::to_string(id));
    ASSERT_TRUE(images.is_ok() && *images->step());
    EXPECT_EQ(images->column_int64(0), row.second) << "image rows of job " << id;
    EXPECT_EQ(images->column_int64(1), row.second);
  }
  EXPECT_GT(done, kCycles);  // the test exercised completions, not just kills
  // Images of unfinished jobs never became visible.
  EXPECT_EQ(*db->query_int64("SELECT COUNT(*) FROM images i JOIN jobs j ON j.id = i.job_id "
                             "WHERE j.state != 'done'"),
            0);

  // Every image row has its file; no temporary or unreferenced file remains.
  std::set<std::string> referenced;
  auto shas = db->prepare("SELECT DISTINCT sha256 FROM images");
  while (*shas->step()) referenced.insert(shas->column_text(0));
  for (const auto& sha : referenced) {
    EXPECT_TRUE(
        std::filesystem::exists(dir / "data" / "images" / sha.substr(0, 2) / (sha + ".png")))
        << sha;
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir / "data" / "images")) {
    if (!entry.is_regular_file()) continue;
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
    EXPECT_TRUE(referenced.contains(entry.path().stem().string())) << entry.path();
  }

  // The event log agrees: at most one job.done per job, exactly one for done jobs, the last
  // job event matches the final state, and seq has no gaps.
  std::map<int64_t, int> done_events;
  std::map<int64_t, std::string> last_event;
  auto events = db->prepare("SELECT seq, type, data FROM events WHERE project_id = " +
                            std::to_string(project) + " ORDER BY seq");
  int64_t expected_seq = 1;
  while (*events->step()) {
    EXPECT_EQ(events->column_int64(0), expected_seq++);
    auto data = nlohmann::json::parse(events->column_text(2));
    if (!data.contains("job")) continue;
    int64_t id = data["job"]["id"];
    std::string type = events->column_text(1);
    if (type == "job.done") ++done_events[id];
    last_event[id] = type;
    std::string state = data["job"]["state"];
    EXPECT_EQ(type, state == "running" ? "job.started" : "job." + state) << "seq " << expected_seq;
  }
  for (const auto& [id, row] : jobs) {
    EXPECT_EQ(done_events[id], row.first == "done" ? 1 : 0) << "job " << id;
    EXPECT_EQ(last_event[id], "job." + row.first) << "job " << id;
  }
}

}  // namespace
}  // namespace atelier
