#include "server/inference/null_generator.h"

#include <optional>
#include <thread>

#include "server/inference/edit_canvas.h"

namespace atelier::inference {

namespace {

// FNV-1a, 64-bit: stable across platforms and runs (std::hash is not).
uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

class NullGenerator final : public Generator {
 public:
  explicit NullGenerator(std::chrono::milliseconds step_delay) : step_delay_(step_delay) {}

  const ModelInfo& info() const override { return null_model_info(); }

  Result<std::vector<GeneratedImage>> generate(const GenerateRequest& req, ProgressSink& progress,
                                               const CancelToken& cancel) override {
    // Inpaint and uploaded parents start from pixels (edit.h), other children from the lineage.
    ATELIER_ASSIGN_OR_RETURN(std::optional<Image> start, canvas::start_pixels(req));
    const bool from_lineage = req.parent && !start && req.mode != Mode::kInpaint;
    uint64_t parent_key = 0;
    if (from_lineage) {
      // The key a child inherits: every lineage mode derives from the parent's.
      const std::string& lineage = req.parent->lineage;
      if (lineage.size() != 22 || lineage.rfind("null1;", 0) != 0 ||
          lineage.find_first_not_of("0123456789abcdef", 6) != std::string::npos) {
        return Status::invalid_argument("the parent image was not made by the null model",
                                        "parent_image_id");
      }
      parent_key = std::stoull(lineage.substr(6), nullptr, 16);
    }
    for (int step = 1; step <= req.steps; ++step) {
      if (cancel.cancelled()) return Status::cancelled("cancelled");
      if (step_delay_.count() > 0) std::this_thread::sleep_for(step_delay_);
      Image preview;
      if (progress.wants_preview()) preview = render(8, 8, 0);
      progress.on_step(step, req.steps, progress.wants_preview() ? &preview : nullptr);
    }
    if (cancel.cancelled()) return Status::cancelled("cancelled");
    std::vector<GeneratedImage> out;
    for (int i = 0; i < req.count; ++i) {
      int64_t seed = req.seed + i;
      uint64_t key = fnv1a(req.prompt, static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull);
      if (start) {
        key ^= (static_cast<uint64_t>(req.strength * 1000) + 1) *
               (static_cast<uint64_t>(req.mode) + 1) * 0x100000001b3ull;
      } else if (from_lineage) {
        if (req.mode == Mode::kUpscale) {
          key = parent_key;
        } else {
          key = parent_key ^ (static_cast<uint64_t>(req.strength * 1000) + key);
        }
      }
      GeneratedImage img;
      img.image = render(req.width, req.height, key);
      if (start) {
        // An upscale keeps the parent's pixels and only tints them.
        const double weight = req.mode == Mode::kUpscale ? req.strength / 4 : req.strength;
        img.image = canvas::blend(*start, img.image, weight);
      }
      img.seed = seed;
      char hex[17];
      std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(key));
      img.lineage = std::string("null1;") + hex;
      out.push_back(std::move(img));
    }
    return out;
  }

 private:
  static Image render(int w, int h, uint64_t key) {
    Image img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    const int r0 = key & 0xff, g0 = (key >> 8) & 0xff, b0 = (key >> 16) & 0xff;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        uint8_t* px = &img.pixels[(static_cast<size_t>(y) * w + x) * 3];
        px[0] = static_cast<uint8_t>(r0 + x * 255 / w);
        px[1] = static_cast<uint8_t>(g0 + y * 255 / h);
        px[2] = static_cast<uint8_t>(b0 + (x + y) * 127 / (w + h));
      }
    }
    return img;
  }

  std::chrono::milliseconds step_delay_;
};

}  // namespace

const ModelInfo& null_model_info() {
  static const ModelInfo info = [] {
    ModelInfo m;
    m.id = "null";
    m.kind = "test";
    m.description = "Test model: instant deterministic gradients, no torch (tests, benchmarks).";
    m.width = {8, 2048, 64, 8};
    m.height = {8, 2048, 64, 8};
    m.steps = {1, 100, 4, 1};
    m.count = {1, 4, 1, 1};
    m.guidance = {0, 30, 7};
    m.strength = {0, 1, 0.5};
    m.samplers = {"none"};
    m.upscale_factors = {2, 4};
    m.modes = {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix,
               Mode::kUpscale, Mode::kInpaint,   Mode::kOutpaint};
    return m;
  }();
  return info;
}

std::unique_ptr<Generator> make_null_generator(std::chrono::milliseconds step_delay) {
  return std::make_unique<NullGenerator>(step_delay);
}

ModelEntry null_model_entry(std::chrono::milliseconds step_delay) {
  return {null_model_info(),
          [step_delay](const std::string&) -> Result<std::unique_ptr<Generator>> {
            return make_null_generator(step_delay);
          }};
}

}  // namespace atelier::inference
