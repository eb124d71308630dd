// LargestAllocation: the largest operator new request made on this thread while one is alive.
// common_test replaces the global operator new (largest_allocation.cpp) to record it, so a test
// can show that a decode did not allocate a huge buffer, without running out of memory or timing
// anything. Allocations by C libraries through malloc (libpng, libjpeg, libwebp) are not seen.
// Threads: one LargestAllocation at a time, per process.
#pragma once

#include <cstddef>

namespace atelier::testing {

class LargestAllocation {
 public:
  LargestAllocation();
  ~LargestAllocation();
  LargestAllocation(const LargestAllocation&) = delete;
  LargestAllocation& operator=(const LargestAllocation&) = delete;

  size_t bytes() const;
};

}  // namespace atelier::testing
