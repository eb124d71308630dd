// The clock vocabulary: std::chrono types in the domain and storage code, plain integers only at
// the edges (SQLite columns, JSON, wire formats), converted here.
//
//   SysTime     wall-clock time, what is stored and shown (ms resolution, like the columns)
//   SteadyTime  monotonic time, for deadlines, throttles and intervals (never stored)
#pragma once

#include <chrono>
#include <cstdint>

namespace atelier {

using SysTime = std::chrono::sys_time<std::chrono::milliseconds>;
using SteadyTime = std::chrono::steady_clock::time_point;

inline SysTime sys_now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}
inline SteadyTime steady_now() {
  return std::chrono::steady_clock::now();
}

// Edges: the integers the database and the wire formats hold.
inline int64_t to_unix_ms(SysTime t) {
  return t.time_since_epoch().count();
}
inline int64_t to_unix_s(SysTime t) {
  return std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
}
inline SysTime from_unix_ms(int64_t ms) {
  return SysTime(std::chrono::milliseconds(ms));
}
inline SysTime from_unix_s(int64_t s) {
  return SysTime(std::chrono::seconds(s));
}

}  // namespace atelier
