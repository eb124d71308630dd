// Small helpers the sd_bench sections share: wall time, medians, and a memory/load line.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace atelier::sd_bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Resident and peak resident memory of this process, and the machine's 1-minute load average
// (other processes on a shared machine slow every figure).
inline std::string memory_line() {
  std::ifstream in("/proc/self/status");
  std::string line;
  double rss = 0, hwm = 0;  // kB
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6);
  }
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  char buf[128];
  std::snprintf(buf, sizeof buf, "resident %.1f GB, peak %.1f GB; load average %.1f", rss / 1e6,
                hwm / 1e6, load);
  return buf;
}

}  // namespace atelier::sd_bench
