// The replacement global operator new behind LargestAllocation. Its own file, so that no caller
// sees its malloc/free pairing inlined (GCC's -Wmismatched-new-delete would).
#include "tests/unit/common/largest_allocation.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {

std::atomic<size_t> g_largest{0};
thread_local bool g_tracking = false;

}  // namespace

void* operator new(std::size_t n) {
  if (g_tracking) {
    size_t seen = g_largest.load();
    while (n > seen && !g_largest.compare_exchange_weak(seen, n)) {
    }
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace atelier::testing {

LargestAllocation::LargestAllocation() {
  g_largest = 0;
  g_tracking = true;
}

LargestAllocation::~LargestAllocation() {
  g_tracking = false;
}

size_t LargestAllocation::bytes() const {
  return g_largest.load();
}

}  // namespace atelier::testing
