// ws_fanout: live-room fan-out under load. One project with N subscribers on loopback; jobs run
// one after another, each emitting progress at 20 Hz plus previews at 4 Hz and three durable
// events. A warm-up job runs first and its progress is not counted: on fresh connections every
// server's latency climbs for about a second while the kernel grows the new sockets' buffers,
// and that second made single runs vary by half. Measures, per server and N: delivery latency of
// progress messages from the moment the server sent them (their `at_us`) to the moment a subscriber
// has read them (p50/p95/p99), the share of durable events delivered to every subscriber (must be
// 100%), and the server's CPU (share of its one core over the run) and memory (RSS and peak RSS).
//
// The same load runs against Atelier (`atelier serve`, null model at 50 ms a step) and two
// reference servers written for this benchmark only (ref_aiohttp.py: Python aiohttp, ComfyUI's
// stack; ref_node.mjs: Node `ws`). Servers run pinned to CPU 1 (taskset), this load generator
// pinned to CPU 0, so it does not steal the server's core; its own CPU share is printed so a
// saturated generator shows.
//
// "atelier-plain" is Atelier with ws_direct_writes off (plain strand-serialised Beast writes);
// with both named, each size runs both modes back to back and the plain / direct ratios print.
//
//   ws_fanout ATELIER_BIN REPO_DIR [subscribers=100,500,1000,2000] [jobs=8]
//   [servers=atelier,atelier-plain,aiohttp,node]
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/ws_fanout/fleet.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace atelier::bench {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kSteps = 20;
constexpr int kStepMs = 50;

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

// CPU seconds (user + system) a process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmRSS / VmHWM in MiB.
double memory_mib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return 0;
}

struct Outcome {
  std::string server;
  size_t subscribers = 0;
  bool ok = false;
  double p50 = 0, p95 = 0, p99 = 0;
  size_t samples = 0;
  double durable_share = 0;
  uint64_t out_of_order = 0;
  double server_cpu = 0, generator_cpu = 0, rss = 0, peak_rss = 0;
  double avg_event_bytes = 900, avg_preview_bytes = 700;
};

struct ServerUnderTest {
  std::string name;
  std::unique_ptr<testing::ChildProcess> process;
  uint16_t port = 0;
  std::string auth;
  int64_t project = 0;
};

uint16_t wait_port(testing::ChildProcess& p) {
  auto out = p.wait_for_output("listening on http://", std::chrono::seconds(20));
  if (!out) return 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return testing::parse_listening_port(p.output());
}

std::optional<json> http_json(uint16_t port, const std::string& method, const std::string& path,
                              const std::string& body = {}, const std::string& headers = {}) {
  auto r = testing::http_request(port, method, path, body, headers);
  if (!r || r->status >= 300) return std::nullopt;
  return json::parse(r->body, nullptr, false);
}

double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

Outcome run_one(const std::string& server, size_t n, int jobs, const std::string& atelier_bin,
                const std::string& repo, const testing::TempDir& dir, const Outcome& sizes) {
  Outcome out;
  out.server = server;
  // "atelier-plain": the same server with ws_direct_writes off (plain Beast writes).
  const bool atelier = server.rfind("atelier", 0) == 0;
  out.subscribers = n;
  static int run = 0;
  const std::string tag = server + "-" + std::to_string(n) + "-" + std::to_string(++run);
  std::vector<std::string> argv = {"/usr/bin/taskset", "-c", "1"};
  const std::string ev = std::to_string(static_cast<int>(sizes.avg_event_bytes));
  const std::string pv = std::to_string(static_cast<int>(sizes.avg_preview_bytes));
  if (atelier) {
    for (const char* a : {"serve", "--port", "0", "--log-level", "warn", "--enable-null-model",
                          "true", "--null-step-ms", "50", "--preview-interval-ms", "250",
                          "--sync-mode", "normal", "--io-threads", "1",
                          // every subscriber connects from 127.0.0.1
                          "--max-connections-per-ip", "1000000"}) {
      argv.push_back(a);
    }
    argv.insert(argv.begin() + 3, atelier_bin);
    argv.push_back("--ws-direct-writes");
    argv.push_back(server == "atelier-plain" ? "false" : "true");
    argv.push_back("--data-dir");
    argv.push_back((dir / tag).string());
  } else if (server == "aiohttp") {
    argv.insert(argv.end(), {"/usr/bin/python3", repo + "/tests/bench/ws_fanout/ref_aiohttp.py",
                             "--event-bytes", ev, "--preview-bytes", pv});
  } else {
    argv.insert(argv.end(),
                {"/usr/bin/node", repo + "/tests/bench/ws_fanout/ref_node.mjs", "--ws-module",
                 repo + "/web-client/node_modules/ws", "--event-bytes", ev, "--preview-bytes", pv});
  }
  ServerUnderTest s;
  s.process = std::make_unique<testing::ChildProcess>(argv, dir / (tag + ".log"));
  s.port = wait_port(*s.process);
  if (s.port == 0) {
    std::fprintf(stderr, "%s did not start:\n%s\n", server.c_str(), s.process->output().c_str());
    return out;
  }
  int64_t head_before = 0;
  std::vector<std::string> greeting;
  std::string target = "/ws";
  if (atelier) {
    auto reg = http_json(s.port, "POST", "/api/v1/auth/register",
                         R"({"username":"bench","password":"correct horse battery staple"})");
    if (!reg) return out;
    s.auth = "Bearer " + (*reg)["token"].get<std::string>();
    auto project = http_json(s.port, "POST", "/api/v1/projects", R"({"name":"fanout"})",
                             "Authorization: " + s.auth);
    if (!project) return out;
    s.project = (*project)["id"];
    auto events =
        http_json(s.port, "GET", "/api/v1/projects/" + std::to_string(s.project) + "/events", "",
                  "Authorization: " + s.auth);
    head_before = (*events)["head_seq"];
    greeting = {
        R"({"type":"hello","proto":1})",
        json{{"type", "subscribe"}, {"project", s.project}, {"after_seq", head_before}}.dump()};
    target = "/api/v1/ws";
  }

  Fleet fleet;
  fleet.trace_ = std::getenv("WS_FANOUT_TRACE") != nullptr;
  if (!fleet.open(s.port, target, s.auth, n, greeting, 0) ||
      !fleet.wait_subscribed(atelier, std::chrono::seconds(60))) {
    std::fprintf(stderr, "%s: could not open %zu subscribers\n", server.c_str(), n);
    fleet.stop();
    return out;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // presence announcements settle

  const double cpu0 = cpu_seconds(s.process->pid());
  const double self0 = self_cpu_seconds();
  const auto t0 = Clock::now();
  fleet.start_measuring();
  int64_t last_job = 0;
  if (atelier) {
    const std::string path = "/api/v1/projects/" + std::to_string(s.project) + "/jobs";
    for (int j = 0; j <= jobs; ++j) {  // the first is the warm-up
      auto job = http_json(
          s.port, "POST", path,
          json{{"model", "null"}, {"prompt", "fan-out " + std::to_string(j)}, {"steps", kSteps}}
              .dump(),
          "Authorization: " + s.auth);
      if (!job) return out;
      last_job = (*job)["id"];
      if (j == 0) fleet.skip_job(last_job);
    }
  } else {
    fleet.skip_job(1);
    http_json(s.port, "POST", "/start?jobs=" + std::to_string(jobs + 1));
  }
  // The run: jobs one after another, then a little for the last messages to arrive.
  std::this_thread::sleep_for(std::chrono::milliseconds((jobs + 1) * kSteps * kStepMs + 500));
  // Until the last job has finished (a server that cannot keep up finishes late).
  for (int i = 0; i < 1200; ++i) {
    bool finished = false;
    if (atelier) {
      auto job = http_json(s.port, "GET", "/api/v1/jobs/" + std::to_string(last_job), "",
                           "Authorization: " + s.auth);
      finished = job && (*job)["state"] == "done";
    } else {
      auto stats = http_json(s.port, "GET", "/stats");
      finished = stats && !(*stats)["running"].get<bool>();
    }
    if (finished) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  fleet.stop_measuring();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.server_cpu = 100.0 * (cpu_seconds(s.process->pid()) - cpu0) / seconds;
  out.generator_cpu = 100.0 * (self_cpu_seconds() - self0) / seconds;
  out.rss = memory_mib(s.process->pid(), "VmRSS");
  out.peak_rss = memory_mib(s.process->pid(), "VmHWM");

  int64_t expected = 0;
  if (atelier) {
    auto events =
        http_json(s.port, "GET", "/api/v1/projects/" + std::to_string(s.project) + "/events", "",
                  "Authorization: " + s.auth);
    expected = (*events)["head_seq"].get<int64_t>() - head_before;
  } else {
    auto stats = http_json(s.port, "GET", "/stats");
    expected = stats ? (*stats)["seq"].get<int64_t>() : 0;
  }
  fleet.stop();
  uint64_t delivered = 0;
  for (const auto& c : fleet.clients()) {
    delivered += c->events;
    out.out_of_order += c->out_of_order;
  }
  out.durable_share = expected > 0 ? static_cast<double>(delivered) /
                                         (static_cast<double>(expected) * static_cast<double>(n))
                                   : 0;
  if (fleet.trace_) {
    for (auto& [k, v] : fleet.per_step_) {
      std::sort(v.begin(), v.end());
      std::fprintf(stderr, "job %lld step %2lld: n %zu min %.1f p50 %.1f max %.1f\n",
                   (long long)(k / 100), (long long)(k % 100), v.size(), v.front(), v[v.size() / 2],
                   v.back());
    }
  }
  auto& lat = fleet.latencies_ms();
  out.samples = lat.size();
  out.p50 = percentile(lat, 0.50);
  out.p95 = percentile(lat, 0.95);
  out.p99 = percentile(lat, 0.99);
  if (fleet.events() > 0)
    out.avg_event_bytes = double(fleet.event_bytes()) / double(fleet.events());
  if (fleet.previews() > 0) {
    out.avg_preview_bytes = double(fleet.preview_bytes()) / double(fleet.previews());
  }
  if (fleet.trace_) {
    std::fprintf(stderr, "%s: %.0f bytes per event message, %.0f per preview frame\n",
                 server.c_str(), out.avg_event_bytes, out.avg_preview_bytes);
  }
  out.ok = true;
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

int main_impl(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: ws_fanout ATELIER_BIN REPO_DIR [subscribers=100,500,1000,2000] [jobs=8] "
                 "[servers=atelier,atelier-plain,aiohttp,node]\n");
    return 2;
  }
  const std::string atelier_bin = argv[1];
  const std::string repo = argv[2];
  std::vector<size_t> counts;
  for (const auto& c : split(argc > 3 ? argv[3] : "100,500,1000,2000"))
    counts.push_back(std::stoul(c));
  const int jobs = argc > 4 ? std::atoi(argv[4]) : 8;
  const auto servers = split(argc > 5 ? argv[5] : "atelier,atelier-plain,aiohttp,node");

  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  pin_to_cpu(0);
  testing::TempDir dir("atelier-ws-fanout");

  std::printf(
      "ws_fanout: %d jobs x %d steps at %d ms (progress 20 Hz, previews 4 Hz), servers on "
      "CPU 1, load generator on CPU 0\n\n",
      jobs, kSteps, kStepMs);
  std::printf("%-13s %6s %9s %9s %9s %9s %9s %8s %8s %8s %8s\n", "server", "subs", "p50 ms",
              "p95 ms", "p99 ms", "samples", "durable", "srv cpu", "gen cpu", "rss MiB", "peak");
  std::vector<Outcome> all;
  Outcome sizes;  // event and preview sizes the references imitate: Atelier's, once measured
  // Sizes outside, servers inside: the runs compared with each other are minutes apart, not
  // a whole sweep, so a change in the machine's load touches both.
  for (size_t n : counts) {
    for (const auto& server : servers) {
      Outcome o = run_one(server, n, jobs, atelier_bin, repo, dir, sizes);
      if (server == "atelier" && o.ok) sizes = o;
      if (!o.ok) {
        std::printf("%-13s %6zu  failed to run\n", server.c_str(), n);
        continue;
      }
      std::printf("%-13s %6zu %9.2f %9.2f %9.2f %9zu %8.2f%% %7.0f%% %7.0f%% %8.1f %8.1f%s\n",
                  o.server.c_str(), o.subscribers, o.p50, o.p95, o.p99, o.samples,
                  100.0 * o.durable_share, o.server_cpu, o.generator_cpu, o.rss, o.peak_rss,
                  o.out_of_order ? "  OUT OF ORDER" : "");
      std::fflush(stdout);
      all.push_back(o);
    }
  }
  // Ratios against the references at each size, and the goal.
  std::printf("\np95 ratio (reference / atelier; above 1: atelier faster)\n");
  for (size_t n : counts) {
    const Outcome* a = nullptr;
    for (const auto& o : all) {
      if (o.server == "atelier" && o.subscribers == n) a = &o;
    }
    if (!a) continue;
    std::printf("  %5zu subscribers:", n);
    for (const auto& o : all) {
      if (o.server != "atelier" && o.subscribers == n && a->p95 > 0) {
        std::printf("  %s %.2fx", o.server.c_str(), o.p95 / a->p95);
      }
    }
    std::printf("\n");
  }
  // The two write modes at each size: above 1, the direct-write fast path pays.
  std::printf(
      "\nwrite modes (atelier-plain / atelier, i.e. plain / direct; above 1: direct better)\n");
  for (size_t n : counts) {
    const Outcome* direct = nullptr;
    const Outcome* plain = nullptr;
    for (const auto& o : all) {
      if (o.subscribers != n) continue;
      if (o.server == "atelier") direct = &o;
      if (o.server == "atelier-plain") plain = &o;
    }
    if (!direct || !plain || direct->p50 <= 0 || direct->p95 <= 0 || direct->server_cpu <= 0)
      continue;
    std::printf("  %5zu subscribers:  p50 %.2fx  p95 %.2fx  p99 %.2fx  srv cpu %.2fx\n", n,
                plain->p50 / direct->p50, plain->p95 / direct->p95,
                direct->p99 > 0 ? plain->p99 / direct->p99 : 0.0,
                plain->server_cpu / direct->server_cpu);
  }
  auto most_within = [&](const std::string& server, double ms) {
    size_t best = 0;
    for (const auto& o : all) {
      if (o.server == server && o.p95 < ms && o.durable_share >= 0.9999) {
        best = std::max(best, o.subscribers);
      }
    }
    return best;
  };
  std::printf("\nmost subscribers with p95 < 50 ms and every durable event delivered:");
  for (const auto& server : servers)
    std::printf("  %s %zu", server.c_str(), most_within(server, 50));
  std::printf("\n");
  // Where the p95 crosses 50 ms, interpolated linearly between the two sizes measured around it
  // (sizes in order; a server under 50 ms at the largest size holds at least that many).
  std::printf("subscribers at p95 = 50 ms (interpolated):");
  for (const auto& server : servers) {
    const Outcome* below = nullptr;
    const Outcome* above = nullptr;
    for (const auto& o : all) {
      if (o.server != server || !o.ok || o.durable_share < 0.9999) continue;
      if (o.p95 < 50) {
        if (!above) below = &o;
      } else if (!above) {
        above = &o;
      }
    }
    if (below && above) {
      const double f = (50 - below->p95) / (above->p95 - below->p95);
      std::printf("  %s %.0f", server.c_str(),
                  static_cast<double>(below->subscribers) +
                      f * static_cast<double>(above->subscribers - below->subscribers));
    } else if (below) {
      std::printf("  %s >%zu", server.c_str(), below->subscribers);
    } else {
      std::printf("  %s <%zu", server.c_str(), above ? above->subscribers : 0);
    }
  }
  std::printf("\n");
  for (const auto& o : all) {
    if (o.server == "atelier" && o.subscribers == 1000) {
      const bool met = o.p95 < 50 && o.durable_share >= 0.9999;
      std::printf(
          "goal (atelier, 1000 subscribers, p95 < 50 ms, 100%% durable): %s (p95 %.2f ms, "
          "%.2f%%)\n",
          met ? "met" : "NOT met", o.p95, 100.0 * o.durable_share);
    }
  }
  return 0;
}

}  // namespace
}  // namespace atelier::bench

int main(int argc, char** argv) {
  return atelier::bench::main_impl(argc, argv);
}
