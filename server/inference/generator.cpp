#include "server/inference/generator.h"

namespace atelier::inference {

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::kTxt2Img:
      return "txt2img";
    case Mode::kVariation:
      return "variation";
    case Mode::kRemix:
      return "remix";
    case Mode::kUpscale:
      return "upscale";
  }
  return "txt2img";
}

std::optional<Mode> parse_mode(std::string_view name) {
  for (Mode m : {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix, Mode::kUpscale}) {
    if (mode_name(m) == name) return m;
  }
  return std::nullopt;
}

}  // namespace atelier::inference
