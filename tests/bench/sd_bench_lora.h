// sd_bench's `lora` section (sd_bench_lora.cpp): two rank-32 kohya LoRAs switched on an SD
// 1.5-shaped UNet with random weights, next to reloading the UNet's weights from disk, with an
// exact-restore check.
#pragma once

namespace atelier::sd_bench {

// Prints the figures; 0 when the restore check held, 1 otherwise.
int lora_section();

}  // namespace atelier::sd_bench
