// Names the calling thread, as `top -H`, `perf` and debuggers show it. Linux keeps at most 15
// bytes; longer names are cut. Does nothing where naming is not supported.
#pragma once

#include <string_view>

namespace atelier {

void set_current_thread_name(std::string_view name);

}  // namespace atelier
