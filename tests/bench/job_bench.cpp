// job_bench: the whole generation path (HTTP submit -> durable queue -> worker -> PNG into the
// image store -> fenced commit -> SSE `done`) with the instant `null` model, next to the same
// generator called directly in-process, measured in the same run.
//
//   job_bench [jobs_per_submitter=20] [submitters=64] [modes=full,normal]
//
// Prints jobs/s and submit-to-done latency (p50/p99) for one submitter at a time (no queueing:
// the path's own cost per job) and for 64 concurrent submitters (throughput), and the overhead
// per job: path latency minus the direct generator time.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/logging.h"
#include "server/app/app.h"
#include "server/inference/null_generator.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace atelier {
namespace {

using Clock = std::chrono::steady_clock;
using testing::Connection;
using testing::make_request;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string post_json(uint16_t port, const std::string& path, const std::string& body,
                      const std::string& auth = {}) {
  auto r = testing::http_request(port, "POST", path, body, auth);
  if (!r || r->status >= 300) {
    std::fprintf(stderr, "POST %s failed: %s\n", path.c_str(), r ? r->body.c_str() : "-");
    std::exit(1);
  }
  return r->body;
}

class NoProgress : public inference::ProgressSink {
 public:
  void on_step(int, int, const image::Image*) override {}
};

// The null generator alone: what the path would cost if it added nothing.
std::vector<double> direct_runs(int n) {
  auto gen = inference::make_null_generator();
  inference::GenerateRequest req;
  req.model = "null";
  req.prompt = "bench";
  req.width = req.height = 64;
  req.steps = 1;
  req.count = 1;
  inference::CancelToken cancel;
  NoProgress sink;
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    req.seed = i;
    auto t0 = Clock::now();
    auto r = gen->generate(req, sink, cancel);
    out.push_back(ms_since(t0));
    if (!r.is_ok()) std::exit(1);
  }
  return out;
}

// One job through the server: submit (on the submitter's keep-alive connection, as a script's
// HTTP client does), then follow its SSE stream (its own connection: it ends with the job).
double one_job(Connection& submits, uint16_t port, const std::string& auth, int64_t project,
               int seed) {
  nlohmann::json body = {{"model", "null"}, {"prompt", "bench"}, {"steps", 1}, {"seed", seed}};
  auto t0 = Clock::now();
  submits.send(make_request("POST", "/api/v1/projects/" + std::to_string(project) + "/jobs",
                            body.dump(), auth));
  auto r = submits.read_response(std::chrono::seconds(60));
  if (!r || r->status != 202) {
    std::fprintf(stderr, "submit failed: %s\n", r ? r->body.c_str() : "-");
    std::exit(1);
  }
  int64_t id = nlohmann::json::parse(r->body)["id"];
  Connection conn(port);
  conn.send(make_request("GET", "/api/v1/jobs/" + std::to_string(id) + "/events", "", auth));
  if (!conn.read_response(std::chrono::seconds(60), /*head=*/true)) std::exit(1);
  testing::StreamedBody stream;
  if (!conn.read_stream_until(stream, "event: done", std::chrono::seconds(120))) {
    std::fprintf(stderr, "job %lld did not finish: %s\n", static_cast<long long>(id),
                 stream.data.c_str());
    std::exit(1);
  }
  return ms_since(t0);
}

struct Run {
  double seconds = 0;
  std::vector<double> latencies;
};

Run run_submitters(uint16_t port, const std::string& auth, int64_t project, int submitters,
                   int per_submitter) {
  Run run;
  std::vector<std::vector<double>> per(submitters);
  std::atomic<int> seed{0};
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < submitters; ++s) {
    threads.emplace_back([&, s] {
      Connection submits(port);
      for (int i = 0; i < per_submitter; ++i) {
        per[s].push_back(one_job(submits, port, auth, project, seed++));
      }
    });
  }
  for (auto& t : threads) t.join();
  run.seconds = ms_since(t0) / 1000.0;
  for (auto& v : per) run.latencies.insert(run.latencies.end(), v.begin(), v.end());
  return run;
}

// CPU time of the whole process (server and bench client together), user + system.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Figures {
  Run seq;
  Run conc;
  double seq_cpu_ms_per_job = 0;
};

// One server in `sync_mode`, measured with 1 and then `submitters` concurrent submitters.
// `dir` outlives the measurement on purpose: deleting a run's thousand image files right before
// the next run would slow that run's file creation (ext4 without a journal skips recently
// deleted inodes one by one), which is a cost of the benchmark, not of the path.
Figures measure(const testing::TempDir& dir, const std::string& sync_mode, int per_submitter,
                int submitters) {
  ServerConfig c;
  c.port = 0;
  c.data_dir = dir / "data";
  c.web_root = dir / "no-web";
  c.log_level = log::Level::kWarn;
  c.enable_null_model = true;
  c.io_threads = 2;
  c.max_queued_per_user = 1'000'000;
  c.sync_mode = sync_mode;
  app::App app(c);
  if (Status st = app.start(); !st.is_ok()) {
    std::fprintf(stderr, "start: %s\n", st.to_string().c_str());
    std::exit(1);
  }
  const uint16_t port = app.port();
  auto reg = nlohmann::json::parse(
      post_json(port, "/api/v1/auth/register",
                R"({"username":"bench","password":"correct horse battery staple"})"));
  std::string auth = "Authorization: Bearer " + reg["token"].get<std::string>();
  int64_t project =
      nlohmann::json::parse(post_json(port, "/api/v1/projects", R"({"name":"bench"})", auth))["id"];
  run_submitters(port, auth, project, 1, 10);  // warm-up
  Figures f;
  const double cpu0 = cpu_seconds();
  f.seq = run_submitters(port, auth, project, 1, std::max(50, per_submitter * 4));
  f.seq_cpu_ms_per_job =
      (cpu_seconds() - cpu0) * 1000.0 / static_cast<double>(f.seq.latencies.size());
  f.conc = run_submitters(port, auth, project, submitters, per_submitter);
  app.shutdown();
  return f;
}

void print_mode(const std::string& mode, const Figures& f, int submitters, double direct_p50,
                double direct_mean) {
  const Run& seq = f.seq;
  const Run& conc = f.conc;
  std::printf("  sync_mode=%s\n", mode.c_str());
  std::printf("    1 submitter:   %6.0f jobs/s  latency p50 %7.2f ms  p99 %7.2f ms  (%zu jobs)\n",
              static_cast<double>(seq.latencies.size()) / seq.seconds,
              percentile(seq.latencies, 0.5), percentile(seq.latencies, 0.99),
              seq.latencies.size());
  std::printf("    CPU per job, 1 submitter: %.2f ms (server and this client, all threads)\n",
              f.seq_cpu_ms_per_job);
  std::printf("    %d submitters: %6.0f jobs/s  latency p50 %7.2f ms  p99 %7.2f ms  (%zu jobs)\n",
              submitters, static_cast<double>(conc.latencies.size()) / conc.seconds,
              percentile(conc.latencies, 0.5), percentile(conc.latencies, 0.99),
              conc.latencies.size());
  const double seq_overhead = percentile(seq.latencies, 0.5) - direct_p50;
  const double amortized =
      conc.seconds * 1000.0 / static_cast<double>(conc.latencies.size()) - direct_mean;
  std::printf(
      "    overhead per job: p50 %.2f ms alone (path p50 - direct p50) [goal < 2 ms: %s]; "
      "%.2f ms amortized at %d submitters (wall/jobs - direct mean)\n",
      seq_overhead, seq_overhead < 2.0 ? "met" : "NOT met", amortized, submitters);
}

int main_impl(int argc, char** argv) {
  const int per_submitter = argc > 1 ? std::atoi(argv[1]) : 20;
  const int submitters = argc > 2 ? std::atoi(argv[2]) : 64;
  log::init(log::Format::kText, log::Level::kWarn);
  std::vector<double> direct = direct_runs(1000);
  const double direct_p50 = percentile(direct, 0.5);
  double direct_mean = 0;
  for (double d : direct) direct_mean += d;
  direct_mean /= static_cast<double>(direct.size());
  const std::string modes = argc > 3 ? argv[3] : "full,normal";
  const bool run_full = modes.find("full") != std::string::npos;
  const bool run_normal = modes.find("normal") != std::string::npos;
  Figures full, normal;
  testing::TempDir full_dir("atelier-job-bench"), normal_dir("atelier-job-bench");
  if (run_full) full = measure(full_dir, "full", per_submitter, submitters);
  if (run_normal) normal = measure(normal_dir, "normal", per_submitter, submitters);

  std::printf(
      "job_bench (null model, 64x64, 1 step; whole path = HTTP submit -> durable queue -> "
      "worker -> PNG into the image store -> fenced commit -> SSE done)\n");
  std::printf("  direct generator: p50 %.3f ms  p99 %.3f ms  (%zu runs, same process)\n",
              direct_p50, percentile(direct, 0.99), direct.size());
  if (run_full) {
    print_mode("full (fsync every commit and image)", full, submitters, direct_p50, direct_mean);
  }
  if (run_normal) {
    print_mode("normal (no fsync; survives kill -9, not power loss)", normal, submitters,
               direct_p50, direct_mean);
  }
  if (run_full && run_normal) {
    // The same path and code in both modes: the difference is time spent waiting for the disk.
    std::printf(
        "  full - normal at p50: %.2f ms = waiting for 4 flushes in series per job (the submit "
        "commit, which claims the job for the waiting worker too; the image file; its directory "
        "entry; the finishing commit) on this disk\n",
        percentile(full.seq.latencies, 0.5) - percentile(normal.seq.latencies, 0.5));
  }
  return 0;
}

}  // namespace
}  // namespace atelier

int main(int argc, char** argv) {
  return atelier::main_impl(argc, argv);
}
