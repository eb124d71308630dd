// Shared by the job suites: submitting jobs, waiting for them and reading SSE streams over
// real sockets, on top of api_test_helpers.h.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/integration/api_test_helpers.h"

namespace atelier::apitest {

inline std::string job_path(int64_t job_id, const std::string& rest = {}) {
  return "/api/v1/jobs/" + std::to_string(job_id) + rest;
}

inline Reply submit(uint16_t port, const std::string& token, int64_t project_id,
                    const nlohmann::json& body, const std::string& extra_header = {}) {
  return call(port, "POST", project_path(project_id, "/jobs"), body.dump(),
              header_lines({bearer(token), extra_header}));
}

inline int64_t submit_ok(uint16_t port, const std::string& token, int64_t project_id,
                         const nlohmann::json& body) {
  auto r = expect_status(submit(port, token, project_id, body), 202, "submit " + body.dump());
  return r.json["id"].get<int64_t>();
}

inline nlohmann::json get_job(uint16_t port, const std::string& token, int64_t job_id) {
  return expect_status(call(port, "GET", job_path(job_id), "", bearer(token)), 200, "get job").json;
}

// Polls until the job is in a terminal state; throws after `timeout`.
inline nlohmann::json wait_terminal(uint16_t port, const std::string& token, int64_t job_id,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    nlohmann::json job = get_job(port, token, job_id);
    std::string state = job["state"].get<std::string>();
    if (state == "done" || state == "failed" || state == "cancelled") return job;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("job " + std::to_string(job_id) + " still " + state);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

inline nlohmann::json wait_state(uint16_t port, const std::string& token, int64_t job_id,
                                 const std::string& want,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    nlohmann::json job = get_job(port, token, job_id);
    if (job["state"] == want) return job;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("job " + std::to_string(job_id) + " never became " + want + " (is " +
                               job["state"].get<std::string>() + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

struct SseEvent {
  std::string name;
  nlohmann::json data;
};

// Splits an SSE body into its events (comments skipped).
inline std::vector<SseEvent> parse_sse(const std::string& body) {
  std::vector<SseEvent> out;
  size_t pos = 0;
  while (true) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string block = body.substr(pos, end - pos);
    pos = end + 2;
    SseEvent e;
    std::string data;
    size_t line_start = 0;
    while (line_start <= block.size()) {
      size_t nl = block.find('\n', line_start);
      std::string line = block.substr(line_start, nl == std::string::npos ? nl : nl - line_start);
      if (line.rfind("event: ", 0) == 0) e.name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) data += line.substr(6);
      if (nl == std::string::npos) break;
      line_start = nl + 1;
    }
    if (e.name.empty()) continue;
    e.data = nlohmann::json::parse(data, nullptr, false);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace atelier::apitest
