// Runs a program as a child process for tests, with its stdout and stderr going to a file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace atelier::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`, the current environment plus `env` (overrides), and output
  // (stdout and stderr) appended to `output_file`. Throws std::runtime_error on failure.
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& output_file,
               const std::map<std::string, std::string>& env = {});
  // Kills the child (SIGKILL) if it is still running.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signo);
  // The exit code (or 128 + signal) once the child ends, nullopt if still running at timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string output() const;
  // Waits until the output contains `needle`; returns the output, or nullopt on timeout or when
  // the child exited first.
  std::optional<std::string> wait_for_output(const std::string& needle,
                                             std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path output_file_;
};

// Runs a program to completion (with a timeout) and returns {exit code, output}.
std::pair<int, std::string> run_program(
    const std::vector<std::string>& argv, const std::filesystem::path& output_file,
    const std::map<std::string, std::string>& env = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Parses the port from a "listening on http://HOST:PORT" log line; 0 when absent.
uint16_t parse_listening_port(const std::string& output);

}  // namespace atelier::testing
