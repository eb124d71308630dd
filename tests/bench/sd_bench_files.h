// sd_bench's `xl-files` section (sd_bench_files.cpp): full-size SDXL model files with random
// weights, written to /tmp and loaded through the standard paths, with the published parameter
// counts checked on what was loaded. Never part of the default run: it writes ~7 GB twice and
// needs most of a 24 GiB machine's memory.
#pragma once

namespace atelier::sd_bench {

// Prints each step's time, memory and PASS/FAIL per count; 0 when every count that was checked
// matched (a step skipped for want of memory or fixtures prints why and is not a failure),
// 1 otherwise.
int xl_files_section();

}  // namespace atelier::sd_bench
