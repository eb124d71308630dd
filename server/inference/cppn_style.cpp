#include "server/inference/cppn_style.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <numbers>

namespace atelier::inference::cppn {
namespace {

// Stream ids for stream_seed(); changing one changes every picture, so they are fixed forever
// (a change needs a new lineage version).
constexpr uint64_t kStreamLatent = 1;
constexpr uint64_t kStreamVariation = 2;
constexpr uint64_t kStreamStructure = 3;
constexpr uint64_t kStreamPalette = 4;

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t hash_words(const std::vector<std::string>& words) {
  uint64_t h = fnv1a("words");
  for (const std::string& w : words) h = fnv1a(w, fnv1a(" ", h));
  return h;
}

// One dictionary entry: the palette a colour or mood word pulls toward, and how hard.
struct ColourWord {
  std::string_view words;  // space-separated aliases
  Palette palette;
  float weight;  // share of the anchor in the final palette
};

// Hand-tuned so each word reads as itself across the whole t range (rendered and looked at).
const std::vector<ColourWord>& colour_words() {
  static const std::vector<ColourWord> kWords = {
      {"red crimson scarlet ruby blood",
       {{0.58f, 0.20f, 0.19f}, {0.34f, 0.16f, 0.14f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.05f, 0.10f}},
       0.85f},
      {"orange amber tangerine",
       {{0.70f, 0.42f, 0.20f}, {0.26f, 0.24f, 0.15f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.06f, 0.12f}},
       0.85f},
      {"yellow lemon",
       {{0.72f, 0.66f, 0.28f}, {0.24f, 0.26f, 0.20f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.02f, 0.15f}},
       0.85f},
      {"green emerald lime",
       {{0.30f, 0.55f, 0.32f}, {0.22f, 0.30f, 0.20f}, {0.75f, 0.75f, 0.75f}, {0.10f, 0.0f, 0.15f}},
       0.85f},
      {"blue sapphire azure cobalt",
       {{0.22f, 0.36f, 0.64f}, {0.18f, 0.26f, 0.30f}, {0.75f, 0.75f, 0.75f}, {0.15f, 0.08f, 0.0f}},
       0.85f},
      {"purple violet lavender indigo magenta",
       {{0.50f, 0.30f, 0.62f}, {0.28f, 0.20f, 0.30f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.15f, 0.05f}},
       0.85f},
      {"pink rose blush",
       {{0.80f, 0.52f, 0.64f}, {0.17f, 0.30f, 0.24f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.10f, 0.05f}},
       0.85f},
      {"teal cyan turquoise aqua",
       {{0.20f, 0.56f, 0.58f}, {0.18f, 0.30f, 0.30f}, {0.75f, 0.75f, 0.75f}, {0.20f, 0.05f, 0.0f}},
       0.85f},
      {"gold golden brass",
       {{0.70f, 0.56f, 0.28f}, {0.28f, 0.28f, 0.22f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.04f, 0.12f}},
       0.85f},
      {"ocean sea water underwater wave waves",
       {{0.18f, 0.42f, 0.58f}, {0.16f, 0.30f, 0.34f}, {0.75f, 0.75f, 0.75f}, {0.28f, 0.12f, 0.0f}},
       0.85f},
      {"sunset sunrise dusk dawn",
       {{0.62f, 0.38f, 0.45f}, {0.34f, 0.30f, 0.30f}, {0.75f, 0.75f, 0.6f}, {0.0f, 0.12f, 0.45f}},
       0.85f},
      {"forest jungle moss leaf leaves",
       {{0.30f, 0.44f, 0.22f}, {0.24f, 0.30f, 0.16f}, {0.75f, 0.75f, 0.75f}, {0.08f, 0.0f, 0.20f}},
       0.85f},
      {"neon cyberpunk synthwave vaporwave",
       {{0.52f, 0.26f, 0.58f}, {0.46f, 0.24f, 0.40f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.50f, 0.25f}},
       0.85f},
      {"pastel soft",
       {{0.80f, 0.78f, 0.82f}, {0.16f, 0.16f, 0.16f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.33f, 0.67f}},
       0.85f},
      {"monochrome grayscale greyscale gray grey noir",
       {{0.50f, 0.50f, 0.50f}, {0.44f, 0.44f, 0.44f}, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}},
       0.97f},
      {"fire flame flames lava volcano ember",
       {{0.55f, 0.30f, 0.12f}, {0.43f, 0.28f, 0.10f}, {0.7f, 0.6f, 0.5f}, {0.5f, 0.5f, 0.5f}},
       0.85f},
      {"ice winter frost frozen snow glacier",
       {{0.66f, 0.76f, 0.84f}, {0.28f, 0.20f, 0.12f}, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}},
       0.85f},
      {"desert sand dune dunes",
       {{0.70f, 0.56f, 0.42f}, {0.24f, 0.22f, 0.18f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.03f, 0.08f}},
       0.85f},
      {"autumn fall",
       {{0.60f, 0.40f, 0.20f}, {0.32f, 0.26f, 0.16f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.10f, 0.20f}},
       0.85f},
      {"night dark midnight shadow black",
       {{0.16f, 0.17f, 0.30f}, {0.14f, 0.15f, 0.26f}, {0.75f, 0.75f, 0.75f}, {0.10f, 0.15f, 0.0f}},
       0.85f},
      {"space galaxy cosmic nebula stars",
       {{0.36f, 0.24f, 0.46f}, {0.34f, 0.22f, 0.40f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.25f, 0.15f}},
       0.85f},
      {"candy sweet bubblegum",
       {{0.80f, 0.62f, 0.80f}, {0.18f, 0.34f, 0.18f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.25f, 0.50f}},
       0.85f},
      {"vintage sepia retro antique",
       {{0.58f, 0.48f, 0.36f}, {0.34f, 0.28f, 0.22f}, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}},
       0.85f},
      {"earth earthy clay soil rust",
       {{0.52f, 0.40f, 0.30f}, {0.26f, 0.20f, 0.15f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.05f, 0.10f}},
       0.85f},
      {"rainbow psychedelic colorful colourful",
       {{0.50f, 0.50f, 0.50f}, {0.46f, 0.46f, 0.46f}, {0.75f, 0.75f, 0.75f}, {0.0f, 0.33f, 0.67f}},
       0.85f},
  };
  return kWords;
}

const ColourWord* find_colour_word(std::string_view word) {
  for (const ColourWord& entry : colour_words()) {
    std::string_view rest = entry.words;
    while (!rest.empty()) {
      size_t sp = rest.find(' ');
      std::string_view alias = rest.substr(0, sp);
      if (alias == word) return &entry;
      if (sp == std::string_view::npos) break;
      rest.remove_prefix(sp + 1);
    }
  }
  return nullptr;
}

bool is_stop_word(std::string_view w) {
  static constexpr std::string_view kStop[] = {"a",  "an",   "the",  "of", "and", "with",
                                               "in", "on",   "at",   "by", "to",  "for",
                                               "or", "from", "into", "is", "its", "very"};
  return std::find(std::begin(kStop), std::end(kStop), w) != std::end(kStop);
}

bool has_word(const std::vector<std::string>& words, std::initializer_list<std::string_view> any) {
  for (std::string_view w : any) {
    if (std::binary_search(words.begin(), words.end(), w)) return true;
  }
  return false;
}

// Keeps every channel of the palette inside [0.02, 0.98] for all t.
void keep_in_gamut(Palette& p) {
  for (int i = 0; i < 3; ++i) {
    p.b[i] = std::clamp(std::fabs(p.b[i]), 0.04f, 0.47f);
    p.a[i] = std::clamp(p.a[i], 0.02f + p.b[i], 0.98f - p.b[i]);
  }
}

Palette lerp(const Palette& x, const Palette& y, float w) {
  Palette out;
  for (int i = 0; i < 3; ++i) {
    out.a[i] = x.a[i] + w * (y.a[i] - x.a[i]);
    out.b[i] = x.b[i] + w * (y.b[i] - x.b[i]);
    out.c[i] = x.c[i] + w * (y.c[i] - x.c[i]);
    out.d[i] = x.d[i] + w * (y.d[i] - x.d[i]);
  }
  return out;
}

// ---- lineage helpers ----

std::string format_float(float v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);  // shortest exact round trip
  return ec == std::errc() ? std::string(buf, end) : "nan";
}

std::optional<float> parse_float(std::string_view s) {
  float v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    s.remove_prefix(pos + 1);
  }
}

bool parse_floats(std::string_view s, float* out, size_t n, float max_abs) {
  std::vector<std::string_view> parts = split(s, ',');
  if (parts.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    std::optional<float> v = parse_float(parts[i]);
    if (!v || std::fabs(*v) > max_abs) return false;
    out[i] = *v;
  }
  return true;
}

Status bad_lineage(std::string_view why) {
  return Status::invalid_argument("parent lineage is not a valid cppn lineage: " + std::string(why),
                                  "parent");
}

}  // namespace

uint64_t Rng::next_u64() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Rng::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

double Rng::normal() {
  // 1 - uniform() is in (0, 1], so the log is finite.
  double u1 = 1.0 - uniform();
  double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  Rng rng(seed ^ (stream * 0xd1b54a32d192ed03ULL));
  rng.next_u64();
  return rng.next_u64();
}

std::string_view sampler_name(Sampler sampler) {
  return sampler == Sampler::kContour ? "contour" : "smooth";
}

std::optional<Sampler> parse_sampler(std::string_view name) {
  if (name == "smooth") return Sampler::kSmooth;
  if (name == "contour") return Sampler::kContour;
  return std::nullopt;
}

std::array<float, 3> eval_palette(const Palette& p, float t) {
  std::array<float, 3> rgb{};
  for (int i = 0; i < 3; ++i) {
    rgb[i] = p.a[i] + p.b[i] * std::cos(2.0f * std::numbers::pi_v<float> * (p.c[i] * t + p.d[i]));
  }
  return rgb;
}

std::vector<std::string> normalize_words(std::string_view prompt) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty() && !is_stop_word(cur)) words.push_back(cur);
    cur.clear();
  };
  for (unsigned char ch : prompt) {
    if (ch >= 'A' && ch <= 'Z') {
      cur.push_back(static_cast<char>(ch - 'A' + 'a'));
    } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch >= 0x80) {
      cur.push_back(static_cast<char>(ch));
    } else {
      flush();
    }
  }
  flush();
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  return words;
}

bool is_colour_word(std::string_view word) {
  return find_colour_word(word) != nullptr;
}

Palette palette_for_prompt(std::string_view prompt, std::string_view negative_prompt) {
  const std::vector<std::string> words = normalize_words(prompt);
  Rng rng(stream_seed(hash_words(words), kStreamPalette));

  // A random but tasteful palette: mid-range base colour, moderate amplitude, about half to
  // most of a cycle with small per-channel frequency differences. Less than a full cycle keeps
  // the palette's two ends apart: high guidance pushes most pixels toward the ends.
  // The base colour stays near grey and the hue comes from per-channel phases, as in the
  // classic cosine palettes; independent per-channel bases gave garish greens and magentas.
  Palette p;
  const double base_a = 0.42 + 0.16 * rng.uniform();
  const double base_b = 0.25 + 0.15 * rng.uniform();
  const double base_c = 0.45 + 0.4 * rng.uniform();
  for (int i = 0; i < 3; ++i) {
    p.a[i] = static_cast<float>(base_a + 0.16 * (rng.uniform() - 0.5));
    p.b[i] = static_cast<float>(base_b + 0.10 * (rng.uniform() - 0.5));
    p.c[i] = static_cast<float>(base_c + 0.3 * (rng.uniform() - 0.5));
    p.d[i] = static_cast<float>(rng.uniform());
  }

  // Colour words: average their anchors and pull toward them.
  Palette anchor;
  int matched = 0;
  float weight = 0;
  for (const std::string& w : words) {
    const ColourWord* entry = find_colour_word(w);
    if (!entry) continue;
    anchor = matched == 0 ? entry->palette : lerp(anchor, entry->palette, 1.0f / (matched + 1));
    weight = std::max(weight, entry->weight);
    ++matched;
  }
  if (matched > 0) p = lerp(p, anchor, weight);

  // Negative colour words: move the base colour away from each word's hue.
  for (const std::string& w : normalize_words(negative_prompt)) {
    const ColourWord* entry = find_colour_word(w);
    if (!entry) continue;
    const std::array<float, 3>& a = entry->palette.a;
    const float mean = (a[0] + a[1] + a[2]) / 3;
    for (int i = 0; i < 3; ++i) p.a[i] -= 0.8f * (a[i] - mean);
  }

  keep_in_gamut(p);
  return p;
}

Structure structure_for_prompt(std::string_view prompt) {
  std::vector<std::string> words = normalize_words(prompt);
  std::vector<std::string> form_words;
  for (std::string& w : words) {
    if (!is_colour_word(w)) form_words.push_back(std::move(w));
  }
  Rng rng(stream_seed(hash_words(form_words), kStreamStructure));

  // The first layer sees the coordinates directly: sin there makes stripes and rings, gaussians
  // make blobs. Deeper layers fold those shapes; tanh-heavy menus keep the folds smooth.
  static constexpr std::string_view kFirst[] = {"t", "ts", "tg", "sg", "tsg", "s", "g"};
  static constexpr std::string_view kDeep[] = {"t", "t", "tg", "ts", "tsg", "g", "s"};
  Structure s;
  s.width = 32;
  const int depth = 3 + static_cast<int>(rng.next_u64() % 3);  // 3..5 activation layers
  for (int l = 0; l < depth; ++l) {
    const auto& menu = l == 0 ? kFirst : kDeep;
    s.layers.emplace_back(menu[rng.next_u64() % std::size(menu)]);
  }
  s.scale = static_cast<float>(1.2 * std::pow(3.0, rng.uniform()));  // 1.2 .. 3.6, log-uniform
  s.gain = static_cast<float>(1.4 + 1.6 * rng.uniform());            // 1.4 .. 3.0

  if (has_word(form_words, {"calm", "minimal", "minimalist", "serene", "gentle", "simple", "smooth",
                            "quiet", "peaceful"})) {
    s.scale *= 0.7f;
    s.gain = 1.0f + (s.gain - 1.0f) * 0.5f;
  }
  if (has_word(form_words, {"intricate", "detailed", "complex", "chaotic", "busy", "fractal",
                            "ornate", "wild"})) {
    s.scale *= 1.25f;
    s.gain *= 1.15f;
  }
  // Beyond these, features shrink toward the pixel size at common resolutions and read as noise.
  s.scale = std::min(s.scale, 4.0f);
  s.gain = std::min(s.gain, 3.0f);
  return s;
}

std::array<float, kLatentDim> latent_for_seed(uint64_t seed) {
  Rng rng(stream_seed(seed, kStreamLatent));
  std::array<float, kLatentDim> z{};
  for (float& v : z) v = static_cast<float>(rng.normal());
  return z;
}

std::array<float, kLatentDim> vary_latent(const std::array<float, kLatentDim>& latent,
                                          uint64_t seed, double strength) {
  if (!(strength > 0)) return latent;  // exact identity at 0 (and for NaN)
  const double angle = std::min(strength, 1.0) * std::numbers::pi / 2;
  Rng rng(stream_seed(seed, kStreamVariation));
  std::array<float, kLatentDim> out{};
  for (int i = 0; i < kLatentDim; ++i) {
    out[i] = static_cast<float>(std::cos(angle) * latent[i] + std::sin(angle) * rng.normal());
  }
  return out;
}

float contrast_for_guidance(double guidance) {
  return static_cast<float>(0.3 + 0.3 * std::clamp(guidance, 0.0, 50.0));
}

float squash_gain(const Look& look) {
  const float k = contrast_for_guidance(look.guidance);
  return look.sampler == Sampler::kContour ? 0.5f * k : k;
}

float saturation_for_guidance(double guidance) {
  return static_cast<float>(0.35 + 0.65 * std::clamp((guidance - 1.0) / 6.0, 0.0, 1.0));
}

int64_t multiply_adds_per_pixel(const Structure& s) {
  const int64_t h = s.width;
  const int64_t hidden = static_cast<int64_t>(s.layers.size()) - 1;
  return 3 * h + hidden * h * h + h * kOutputs;
}

std::string format_lineage(const State& state) {
  const Network& net = state.network;
  std::string out(kLineageVersion);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(net.seed));
  out += ";net=";
  out += hex;
  out += ";w=" + std::to_string(net.structure.width);
  out += ";act=";
  for (size_t i = 0; i < net.structure.layers.size(); ++i) {
    if (i) out += '.';
    out += net.structure.layers[i];
  }
  out += ";sc=" + format_float(net.structure.scale);
  out += ";gain=" + format_float(net.structure.gain);
  out += ";z=";
  for (int i = 0; i < kLatentDim; ++i) out += (i ? "," : "") + format_float(net.latent[i]);
  out += ";pal=";
  const Palette& p = state.look.palette;
  bool first = true;
  for (const auto* v : {&p.a, &p.b, &p.c, &p.d}) {
    for (float x : *v) {
      out += (first ? "" : ",") + format_float(x);
      first = false;
    }
  }
  out += ";gd=" + format_float(state.look.guidance);
  out += ";smp=" + std::string(sampler_name(state.look.sampler));
  return out;
}

Result<State> parse_lineage(std::string_view lineage) {
  if (lineage.empty()) return bad_lineage("it is empty (was the parent made by another model?)");
  std::vector<std::string_view> fields = split(lineage, ';');
  if (fields[0] != kLineageVersion) {
    return bad_lineage("unsupported version \"" + std::string(fields[0].substr(0, 16)) + "\"");
  }
  std::map<std::string_view, std::string_view> kv;
  for (size_t i = 1; i < fields.size(); ++i) {
    size_t eq = fields[i].find('=');
    if (eq == std::string_view::npos) return bad_lineage("field without '='");
    if (!kv.emplace(fields[i].substr(0, eq), fields[i].substr(eq + 1)).second) {
      return bad_lineage("duplicate field " + std::string(fields[i].substr(0, eq)));
    }
  }
  static constexpr std::string_view kKeys[] = {"net", "w",   "act", "sc", "gain",
                                               "z",   "pal", "gd",  "smp"};
  if (kv.size() != std::size(kKeys)) return bad_lineage("wrong number of fields");
  for (std::string_view key : kKeys) {
    if (!kv.count(key)) return bad_lineage("missing field " + std::string(key));
  }

  State st;
  Network& net = st.network;
  std::string_view seed_hex = kv["net"];
  auto [ptr, ec] =
      std::from_chars(seed_hex.data(), seed_hex.data() + seed_hex.size(), net.seed, 16);
  if (seed_hex.size() != 16 || ec != std::errc() || ptr != seed_hex.data() + seed_hex.size()) {
    return bad_lineage("net must be 16 hex digits");
  }
  std::string_view width = kv["w"];
  auto [wp, wec] = std::from_chars(width.data(), width.data() + width.size(), net.structure.width);
  if (wec != std::errc() || wp != width.data() + width.size() || net.structure.width < 8 ||
      net.structure.width > 64) {
    return bad_lineage("w must be 8..64");
  }
  for (std::string_view layer : split(kv["act"], '.')) {
    if (layer.empty() || layer.size() > 4 ||
        layer.find_first_not_of(kActivations) != std::string_view::npos) {
      return bad_lineage("act layers must be 1..4 of the letters t, s, g");
    }
    net.structure.layers.emplace_back(layer);
  }
  if (net.structure.layers.size() < 2 || net.structure.layers.size() > 6) {
    return bad_lineage("act must have 2..6 layers");
  }
  std::optional<float> scale = parse_float(kv["sc"]);
  std::optional<float> gain = parse_float(kv["gain"]);
  if (!scale || *scale <= 0 || *scale > 100) return bad_lineage("sc must be in (0, 100]");
  if (!gain || *gain <= 0 || *gain > 10) return bad_lineage("gain must be in (0, 10]");
  net.structure.scale = *scale;
  net.structure.gain = *gain;
  if (!parse_floats(kv["z"], net.latent.data(), kLatentDim, 100)) {
    return bad_lineage("z must be 8 finite numbers");
  }
  Palette& p = st.look.palette;
  float pal[12];
  if (!parse_floats(kv["pal"], pal, 12, 10)) return bad_lineage("pal must be 12 finite numbers");
  for (int i = 0; i < 3; ++i) {
    p.a[i] = pal[i];
    p.b[i] = pal[3 + i];
    p.c[i] = pal[6 + i];
    p.d[i] = pal[9 + i];
  }
  std::optional<float> guidance = parse_float(kv["gd"]);
  if (!guidance || *guidance < 0 || *guidance > 100) return bad_lineage("gd must be in [0, 100]");
  st.look.guidance = *guidance;
  std::optional<Sampler> sampler = parse_sampler(kv["smp"]);
  if (!sampler) return bad_lineage("unknown sampler");
  st.look.sampler = *sampler;
  return st;
}

Status validate_request(const GenerateRequest& r, const std::vector<int>& upscale_factors) {
  if (r.width < kMinSide || r.width > image::kMaxDimension) {
    return Status::invalid_argument("cppn: width must be 8..16384", "width");
  }
  if (r.height < kMinSide || r.height > image::kMaxDimension) {
    return Status::invalid_argument("cppn: height must be 8..16384", "height");
  }
  if (int64_t{r.width} * r.height > kMaxPixels) {
    return Status::invalid_argument("cppn: at most 8192x8192 pixels", "width");
  }
  if (r.count < 1) return Status::invalid_argument("cppn: count must be >= 1", "count");
  if (r.steps < 1) return Status::invalid_argument("cppn: steps must be >= 1", "steps");
  if (!r.sampler.empty() && !parse_sampler(r.sampler)) {
    return Status::invalid_argument("cppn: unknown sampler \"" + r.sampler + "\"", "sampler");
  }
  if (r.mode != Mode::kTxt2Img && r.mode != Mode::kInpaint && !r.parent) {
    return Status::invalid_argument(
        "cppn: mode " + std::string(mode_name(r.mode)) + " needs a parent image", "parent");
  }
  if (r.mode == Mode::kUpscale) {
    bool ok = false;
    for (int f : upscale_factors) {
      ok |= r.width == r.parent->width * f && r.height == r.parent->height * f;
    }
    if (!ok) {
      return Status::invalid_argument("cppn: upscale size must be the parent's " +
                                          std::to_string(r.parent->width) + "x" +
                                          std::to_string(r.parent->height) + " times 2 or 4",
                                      "width");
    }
  }
  return Status::ok();
}

Result<State> state_for_request(const GenerateRequest& r, int64_t seed) {
  const Look request_look{
      .palette = palette_for_prompt(r.prompt, r.negative_prompt),
      .guidance = static_cast<float>(r.guidance),
      .sampler = parse_sampler(r.sampler).value_or(Sampler::kSmooth),
  };
  // Inpaint and uploads work on pixels (cppn_generator.h): the picture is the request's own.
  if (r.mode == Mode::kTxt2Img || r.mode == Mode::kInpaint || !r.parent || r.parent->uploaded) {
    const auto s = static_cast<uint64_t>(seed);
    return State{.network = {.seed = s,
                             .structure = structure_for_prompt(r.prompt),
                             .latent = latent_for_seed(s)},
                 .look = request_look};
  }
  Result<State> parent = parse_lineage(r.parent->lineage);
  if (!parent) return parent.status();
  State st = std::move(parent).value();
  switch (r.mode) {
    case Mode::kVariation:
      st.network.latent = vary_latent(st.network.latent, static_cast<uint64_t>(seed), r.strength);
      break;
    case Mode::kRemix:
      st.look = request_look;
      break;
    default:  // upscale: the parent as it is
      break;
  }
  return st;
}

std::pair<int, int> preview_size(int width, int height, int step, int steps) {
  const int long_side = std::max(width, height);
  const double cap = std::min(kPreviewMaxSide, long_side);
  const double lo = std::min<double>(kPreviewMinSide, cap);
  const double side = lo * std::pow(cap / lo, std::min(1.0, double(step) / std::max(1, steps - 1)));
  auto scaled = [&](int s) {
    return std::max(2, static_cast<int>(std::lround(side * s / long_side)));
  };
  return {scaled(width), scaled(height)};
}

}  // namespace atelier::inference::cppn
