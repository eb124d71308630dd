// The torch-free half of the built-in `cppn` model: everything that decides what a picture looks
// like before any tensor is touched.
//
//  - prompt -> style: the prompt's words pick a colour palette (colour and mood words such as
//    "ocean" or "neon" steer it, every other word jitters it) and the network's structure
//    (activation mix, depth, coordinate scale; only the words that are not colour words count,
//    so "a red castle" and "a blue castle" share their layout and differ in colour);
//  - seed -> latent vector; variation -> perturbed latent;
//  - the lineage string that lets a child image reproduce or perturb its parent exactly;
//  - request -> the State each image of a job renders, and the preview sizes of its steps.
//
// Nothing here allocates tensors, so it compiles and tests fast. Random numbers come from an
// explicitly seeded SplitMix64 stream implemented here rather than from torch's generators: a
// lineage stored today must render the same network after a libtorch upgrade, on any device, and
// torch does not promise that its random streams stay the same across versions, devices or CPU
// instruction sets. No global random state is read or written.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "server/inference/generator.h"

namespace atelier::inference::cppn {

inline constexpr int kLatentDim = 8;
inline constexpr int kOutputs = 2;  // network outputs: palette position, light
inline constexpr std::string_view kLineageVersion = "cppn1";

// SplitMix64: tiny, fast, and the same numbers on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double normal();   // standard normal (Box-Muller, computed in double)

 private:
  uint64_t state_;
};

// A well-mixed seed for one independent stream (weights, latent, variation, ...) of `seed`.
uint64_t stream_seed(uint64_t seed, uint64_t stream);

// How the network's outputs become pixels.
enum class Sampler {
  kSmooth,   // continuous palette, soft shading
  kContour,  // posterised palette bands separated by thin dark iso-lines, like a relief map
};
std::string_view sampler_name(Sampler sampler);  // "smooth" | "contour"
std::optional<Sampler> parse_sampler(std::string_view name);

// Cosine palette (after Inigo Quilez): colour(t) = a + b * cos(2*pi*(c*t + d)) per RGB channel,
// t in [0, 1]. Palettes built here keep every channel inside [0.02, 0.98], so pixels never clip.
struct Palette {
  std::array<float, 3> a{};
  std::array<float, 3> b{};
  std::array<float, 3> c{};
  std::array<float, 3> d{};
};
std::array<float, 3> eval_palette(const Palette& palette, float t);

// Activation functions; each hidden layer applies a mix of them to equal groups of its units.
//   't' tanh (soft plateaus), 's' sin (stripes, rings), 'g' gaussian exp(-x^2) (blobs, ridges).
inline constexpr std::string_view kActivations = "tsg";

// The network's architecture. The seed (Network::seed) picks its weights.
struct Structure {
  int width = 32;                   // hidden units per layer, 8..64
  std::vector<std::string> layers;  // activation groups of each hidden layer, 2..6 layers
  float scale = 1;                  // coordinate scale: larger means more, smaller features
  float gain = 1;                   // hidden weight gain: larger means more intricate folds
};

// Everything that fixes a picture's layout.
struct Network {
  uint64_t seed = 0;  // picks the weights
  Structure structure;
  std::array<float, kLatentDim> latent{};
};

// Everything that maps the network's outputs to colour.
struct Look {
  Palette palette;
  float guidance = 7;  // contrast and saturation, see contrast_for_guidance(); float so that
                       // a request's value and the same value read back from a lineage agree
  Sampler sampler = Sampler::kSmooth;
};

// What the lineage string carries: enough to re-render the image exactly.
struct State {
  Network network;
  Look look;
};

// Lowercases ASCII, turns everything that is not a letter or digit (bytes >= 0x80 count as
// letters, so non-English words survive) into separators, drops a few stop words, then sorts and
// de-duplicates: word order, case, punctuation and repetition do not matter.
std::vector<std::string> normalize_words(std::string_view prompt);

// True for the colour and mood words that steer the palette ("red", "ocean", "neon", ...).
bool is_colour_word(std::string_view word);

// The palette for a prompt: colour words pull it strongly toward their own palettes (averaged
// when there are several), the hash of all words jitters it, so every prompt gets its own
// colours. Colour words in `negative_prompt` push the palette's base colour away from theirs;
// other negative words are ignored (the model does not draw objects, so there is nothing to
// avoid).
Palette palette_for_prompt(std::string_view prompt, std::string_view negative_prompt = {});

// The structure for a prompt, from the hash of its non-colour words. A few mood words bias it:
// "calm", "minimal", "soft", ... make larger, smoother shapes; "intricate", "detailed",
// "chaotic", ... smaller, busier ones.
Structure structure_for_prompt(std::string_view prompt);

// The latent vector of a seed: kLatentDim standard normals.
std::array<float, kLatentDim> latent_for_seed(uint64_t seed);

// A variation of `latent`: rotates it toward a fresh latent drawn from `seed` by the angle
// strength * pi/2, so strength 0 returns `latent` unchanged, 1 an unrelated latent, and the
// distance grows monotonically in between. strength is clamped to [0, 1].
std::array<float, kLatentDim> vary_latent(const std::array<float, kLatentDim>& latent,
                                          uint64_t seed, double strength);

// Guidance (1..20) -> the gain (0.3 + 0.3 g) of the tanh squash that maps the network's
// (normalised) first output to the palette position. The squash is rescaled so +-2 sigma always
// reaches the palette's ends; the gain only sets how sharp the transitions are. 1: soft, even
// gradients; 7: balanced; 20: crisp, poster-like regions with narrow transitions.
float contrast_for_guidance(double guidance);
// The squash gain a look renders with: contrast_for_guidance(), halved for the contour sampler,
// whose bands already make crisp edges and need the palette coordinate spread evenly.
float squash_gain(const Look& look);
// Guidance -> colour saturation (1 = the palette's own colours, less blends toward grey).
float saturation_for_guidance(double guidance);

// Multiply-adds per pixel of the network's matrix products (the benchmark's FLOP count / 2).
int64_t multiply_adds_per_pixel(const Structure& structure);

// "cppn1;net=<16 hex>;w=32;act=t.ts.g;sc=<f>;gain=<f>;z=<8 f>;pal=<12 f>;gd=<f>;smp=smooth"
// Floats are written with enough digits to round-trip exactly.
std::string format_lineage(const State& state);
// Strict inverse of format_lineage: every field exactly once, values in range and finite.
// Anything else is kInvalidArgument with field "parent".
Result<State> parse_lineage(std::string_view lineage);

// ---- Requests ----

inline constexpr int kMinSide = 8;
inline constexpr int64_t kMaxPixels = int64_t{8192} * 8192;  // the renderer keeps 8 bytes a pixel
inline constexpr int kPreviewMaxSide = 256;
inline constexpr int kPreviewMinSide = 16;

// What the REST layer's range checks against ModelInfo do not cover (lineage modes, upscale
// sizes, sampler names) plus a defensive copy of those that keep the renderer safe. The field of
// an error names the request member at fault.
Status validate_request(const GenerateRequest& request, const std::vector<int>& upscale_factors);

// The state image `seed` of a (validated) job renders; see cppn_generator.h for what each mode
// keeps from the parent. Errors: a malformed parent lineage (kInvalidArgument, field "parent").
Result<State> state_for_request(const GenerateRequest& request, int64_t seed);

// Preview size for step `step` of `steps` (1 <= step < steps; step == steps gives the size of
// the final preview): the long side grows geometrically from kPreviewMinSide to
// min(kPreviewMaxSide, long side), keeping the aspect ratio.
std::pair<int, int> preview_size(int width, int height, int step, int steps);

}  // namespace atelier::inference::cppn
