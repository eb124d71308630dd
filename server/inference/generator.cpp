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
    case Mode::kInpaint:
      return "inpaint";
    case Mode::kOutpaint:
      return "outpaint";
  }
  return "txt2img";
}

std::optional<Mode> parse_mode(std::string_view name) {
  for (Mode m : {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix, Mode::kUpscale, Mode::kInpaint,
                 Mode::kOutpaint}) {
    if (mode_name(m) == name) return m;
  }
  return std::nullopt;
}

std::string_view inpaint_area_name(InpaintArea area) {
  return area == InpaintArea::kMasked ? "masked" : "whole";
}

std::optional<InpaintArea> parse_inpaint_area(std::string_view name) {
  if (name == "whole") return InpaintArea::kWhole;
  if (name == "masked") return InpaintArea::kMasked;
  return std::nullopt;
}

}  // namespace atelier::inference
