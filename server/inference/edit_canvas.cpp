#include "server/inference/edit_canvas.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <span>
#include <vector>

namespace atelier::inference::canvas {
namespace {

// One output sample of a resampled axis: source taps [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

std::vector<Taps> axis_taps(int src, int dst) {
  std::vector<Taps> out(static_cast<size_t>(dst));
  const double scale = double(src) / dst;
  for (int i = 0; i < dst; ++i) {
    Taps& t = out[i];
    if (src == dst) {
      t = {i, {1.0f}};
    } else if (src > dst) {
      // Area: the exact overlap of [i, i + 1) * scale with each source pixel.
      const double lo = i * scale, hi = (i + 1) * scale;
      t.first = static_cast<int>(lo);
      const int last = std::min(src - 1, static_cast<int>(std::ceil(hi)) - 1);
      for (int s = t.first; s <= last; ++s) {
        const double w = std::min<double>(s + 1, hi) - std::max<double>(s, lo);
        t.weights.push_back(static_cast<float>(std::max(0.0, w) / scale));
      }
    } else {
      // Bilinear through pixel centres.
      const double x = std::clamp((i + 0.5) * scale - 0.5, 0.0, double(src - 1));
      t.first = std::min(static_cast<int>(x), src - 1);
      const double frac = x - t.first;
      t.weights.push_back(static_cast<float>(1 - frac));
      if (t.first + 1 < src && frac > 0) t.weights.push_back(static_cast<float>(frac));
    }
  }
  return out;
}

uint8_t to_byte(float v) {
  return static_cast<uint8_t>(std::clamp(v + 0.5f, 0.0f, 255.0f));
}

// Interleaved `channels` x uint8 planes, w x h -> nw x nh. The smaller intermediate goes first.
std::vector<uint8_t> resample(const std::vector<uint8_t>& src, int w, int h, int channels, int nw,
                              int nh) {
  const std::vector<Taps> tx = axis_taps(w, nw), ty = axis_taps(h, nh);
  const size_t c = static_cast<size_t>(channels);
  std::vector<uint8_t> out(static_cast<size_t>(nw) * nh * c);
  if (int64_t{nw} * h <= int64_t{w} * nh) {
    std::vector<float> mid(static_cast<size_t>(nw) * h * c);  // horizontal first
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < nw; ++x) {
        for (size_t k = 0; k < tx[x].weights.size(); ++k) {
          const uint8_t* p = &src[(size_t(y) * w + tx[x].first + k) * c];
          for (size_t ch = 0; ch < c; ++ch)
            mid[(size_t(y) * nw + x) * c + ch] += tx[x].weights[k] * p[ch];
        }
      }
    }
    for (int y = 0; y < nh; ++y) {
      for (size_t i = 0; i < size_t(nw) * c; ++i) {
        float v = 0;
        for (size_t k = 0; k < ty[y].weights.size(); ++k) {
          v += ty[y].weights[k] * mid[(ty[y].first + k) * size_t(nw) * c + i];
        }
        out[size_t(y) * nw * c + i] = to_byte(v);
      }
    }
  } else {
    std::vector<float> mid(static_cast<size_t>(w) * nh * c);  // vertical first
    for (int y = 0; y < nh; ++y) {
      for (size_t k = 0; k < ty[y].weights.size(); ++k) {
        const uint8_t* row = &src[(ty[y].first + k) * size_t(w) * c];
        for (size_t i = 0; i < size_t(w) * c; ++i)
          mid[size_t(y) * w * c + i] += ty[y].weights[k] * row[i];
      }
    }
    for (int y = 0; y < nh; ++y) {
      for (int x = 0; x < nw; ++x) {
        for (size_t ch = 0; ch < c; ++ch) {
          float v = 0;
          for (size_t k = 0; k < tx[x].weights.size(); ++k) {
            v += tx[x].weights[k] * mid[(size_t(y) * w + tx[x].first + k) * c + ch];
          }
          out[(size_t(y) * nw + x) * c + ch] = to_byte(v);
        }
      }
    }
  }
  return out;
}

// SplitMix64's finaliser: a well-mixed hash of one 64-bit value.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// How far the outpaint fill's box and noise grow with distance from the parent.
constexpr int kFillMaxRadius = 128;
constexpr double kFillNoise = 4.0;  // levels, reached at kFillNoiseRamp pixels out
constexpr double kFillNoiseRamp = 16.0;

}  // namespace

image::Image resize(const image::Image& img, int width, int height) {
  if (img.width == width && img.height == height) return img;
  return {width, height, img.channels,
          resample(img.pixels, img.width, img.height, img.channels, width, height)};
}

image::Mask resize(const image::Mask& mask, int width, int height) {
  if (mask.width == width && mask.height == height) return mask;
  return {width, height, resample(mask.values, mask.width, mask.height, 1, width, height)};
}

image::Mask binarize(const image::Mask& mask, int threshold) {
  image::Mask out = mask;
  for (uint8_t& v : out.values) v = v >= threshold ? 255 : 0;
  return out;
}

int blur_radius(int mask_blur) {
  return mask_blur <= 0 ? 0 : static_cast<int>(2.5 * mask_blur + 0.5);
}

image::Mask blur_mask(const image::Mask& mask, int mask_blur) {
  const int r = blur_radius(mask_blur);
  if (r == 0) return mask;
  const int w = mask.width, h = mask.height;
  std::vector<double> kernel(static_cast<size_t>(2 * r + 1));
  double sum = 0;
  for (int k = -r; k <= r; ++k) {
    kernel[k + r] = std::exp(-double(k) * k / (2.0 * mask_blur * mask_blur));
    sum += kernel[k + r];
  }
  for (double& k : kernel) k /= sum;
  const int window = 2 * r + 1;
  constexpr uint16_t kFull = 255 * 256;  // the horizontal pass keeps 8 fraction bits

  // Each pass keeps, per line, how many values of the current window are 0 and how many are
  // full, so that windows inside flat areas (most of a mask) cost nothing.
  std::vector<uint16_t> mid(static_cast<size_t>(w) * h);
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = &mask.values[size_t(y) * w];
    auto at = [&](int x) { return row[std::clamp(x, 0, w - 1)]; };
    int zeros = 0, fulls = 0;
    for (int k = -r; k <= r; ++k) {
      zeros += at(k) == 0;
      fulls += at(k) == 255;
    }
    for (int x = 0; x < w; ++x) {
      uint16_t v;
      if (zeros == window) {
        v = 0;
      } else if (fulls == window) {
        v = kFull;
      } else {
        double acc = 0;
        for (int k = -r; k <= r; ++k) acc += kernel[k + r] * at(x + k);
        v = static_cast<uint16_t>(std::min<double>(kFull, acc * 256 + 0.5));
      }
      mid[size_t(y) * w + x] = v;
      zeros += (at(x + r + 1) == 0) - (at(x - r) == 0);
      fulls += (at(x + r + 1) == 255) - (at(x - r) == 255);
    }
  }
  image::Mask out{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h)};
  auto row_of = [&](int y) { return &mid[size_t(std::clamp(y, 0, h - 1)) * w]; };
  std::vector<int> zeros(static_cast<size_t>(w)), fulls(static_cast<size_t>(w));
  for (int k = -r; k <= r; ++k) {
    const uint16_t* row = row_of(k);
    for (int x = 0; x < w; ++x) {
      zeros[x] += row[x] == 0;
      fulls[x] += row[x] == kFull;
    }
  }
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (zeros[x] == window) continue;  // stays 0
      if (fulls[x] == window) {
        out.values[size_t(y) * w + x] = 255;
        continue;
      }
      double acc = 0;
      for (int k = -r; k <= r; ++k) acc += kernel[k + r] * row_of(y + k)[x];
      out.values[size_t(y) * w + x] = to_byte(static_cast<float>(acc / 256));
    }
    const uint16_t* in = row_of(y + r + 1);
    const uint16_t* gone = row_of(y - r);
    for (int x = 0; x < w; ++x) {
      zeros[x] += (in[x] == 0) - (gone[x] == 0);
      fulls[x] += (in[x] == kFull) - (gone[x] == kFull);
    }
  }
  return out;
}

Region bounding_box(const image::Mask& mask) {
  int x0 = mask.width, y0 = mask.height, x1 = -1, y1 = -1;
  for (int y = 0; y < mask.height; ++y) {
    const uint8_t* row = &mask.values[size_t(y) * mask.width];
    for (int x = 0; x < mask.width; ++x) {
      if (row[x] == 0) continue;
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = y;
    }
  }
  if (x1 < 0) return {};
  return {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

std::pair<int, int> fit_working_size(int width, int height, const IntParam& wr,
                                     const IntParam& hr) {
  struct Axis {
    int64_t m, lo, hi;
  };
  auto axis = [](const IntParam& p) {
    const int64_t m = std::max<int64_t>(1, p.multiple_of);
    const int64_t lo = std::max<int64_t>(m, (p.min + m - 1) / m * m);
    return Axis{m, lo, std::max(lo, p.max / m * m)};
  };
  const Axis ax = axis(wr), ay = axis(hr);
  auto valid = [](int64_t v, const Axis& a) { return v >= a.lo && v <= a.hi && v % a.m == 0; };
  if (valid(width, ax) && valid(height, ay)) return {width, height};
  double s = std::min({1.0, double(ax.hi) / width, double(ay.hi) / height});
  if (width * s < ax.lo || height * s < ay.lo) {
    s = std::max({s, double(ax.lo) / width, double(ay.lo) / height});
  }
  auto side = [&](int v, const Axis& a) {
    const int64_t n = std::llround(v * s / double(a.m)) * a.m;
    return static_cast<int>(std::clamp(n, a.lo, a.hi));
  };
  return {side(width, ax), side(height, ay)};
}

Region masked_region(const Region& box, int canvas_width, int canvas_height, int target_width,
                     int target_height, int padding) {
  int64_t x0 = int64_t{box.x} - padding, y0 = int64_t{box.y} - padding;
  int64_t bw = int64_t{box.width} + 2 * padding, bh = int64_t{box.height} + 2 * padding;
  // Widen the short side about the centre to the target's aspect.
  if (bw * target_height < bh * target_width) {
    const int64_t nw = (bh * target_width + target_height - 1) / target_height;
    x0 -= (nw - bw) / 2;
    bw = nw;
  } else {
    const int64_t nh = (bw * target_height + target_width - 1) / target_width;
    y0 -= (nh - bh) / 2;
    bh = nh;
  }
  auto place = [](int64_t& start, int64_t& len, int64_t limit) {
    if (len >= limit) {
      start = 0;
      len = limit;
    } else {
      start = std::clamp<int64_t>(start, 0, limit - len);
    }
  };
  place(x0, bw, canvas_width);
  place(y0, bh, canvas_height);
  return {static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(bw), static_cast<int>(bh)};
}

image::Image crop(const image::Image& img, const Region& r) {
  const size_t c = static_cast<size_t>(img.channels);
  image::Image out{r.width, r.height, img.channels,
                   std::vector<uint8_t>(static_cast<size_t>(r.width) * r.height * c)};
  for (int y = 0; y < r.height; ++y) {
    const uint8_t* src = &img.pixels[((size_t(r.y) + y) * img.width + r.x) * c];
    std::copy_n(src, size_t(r.width) * c, &out.pixels[size_t(y) * r.width * c]);
  }
  return out;
}

image::Mask crop(const image::Mask& mask, const Region& r) {
  image::Mask out{r.width, r.height, std::vector<uint8_t>(static_cast<size_t>(r.width) * r.height)};
  for (int y = 0; y < r.height; ++y) {
    const uint8_t* src = &mask.values[(size_t(r.y) + y) * mask.width + r.x];
    std::copy_n(src, r.width, &out.values[size_t(y) * r.width]);
  }
  return out;
}

OutpaintCanvas outpaint_canvas(const image::Image& parent, const Extend& e, int64_t seed) {
  const int pw = parent.width, ph = parent.height;
  const int w = pw + e.left + e.right, h = ph + e.top + e.bottom;
  OutpaintCanvas out{{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)},
                     {w, h, std::vector<uint8_t>(size_t(w) * h, 255)}};
  // Distance (in pixels, the larger of the two axes) from the parent; 0 over the parent.
  auto distance = [&](int x, int y) {
    const int dx = x < e.left ? e.left - x : std::max(0, x - (e.left + pw - 1));
    const int dy = y < e.top ? e.top - y : std::max(0, y - (e.top + ph - 1));
    return std::max(dx, dy);
  };
  auto radius = [&](int x, int y) { return std::min(distance(x, y) / 2, kFillMaxRadius); };
  // Nearest edge pixel: the parent clamped to the edge.
  for (int y = 0; y < h; ++y) {
    const int sy = std::clamp(y - e.top, 0, ph - 1);
    for (int x = 0; x < w; ++x) {
      const int sx = std::clamp(x - e.left, 0, pw - 1);
      std::copy_n(&parent.pixels[(size_t(sy) * pw + sx) * 3], 3,
                  &out.image.pixels[(size_t(y) * w + x) * 3]);
      if (distance(x, y) == 0) out.mask.values[size_t(y) * w + x] = 0;
    }
  }
  // Box averages whose radius grows with the distance: rows first, then columns, from prefix
  // sums (sums of at most 8192 bytes fit in 32 bits).
  std::vector<uint8_t> pass = out.image.pixels;
  std::vector<uint32_t> prefix;
  for (int y = 0; y < h; ++y) {
    prefix.assign(size_t(w + 1) * 3, 0);
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c)
        prefix[(x + 1) * 3 + c] = prefix[x * 3 + c] + out.image.pixels[(size_t(y) * w + x) * 3 + c];
    }
    for (int x = 0; x < w; ++x) {
      const int r = radius(x, y);
      if (r == 0) continue;
      const int a = std::max(0, x - r), b = std::min(w - 1, x + r);
      for (int c = 0; c < 3; ++c) {
        pass[(size_t(y) * w + x) * 3 + c] = static_cast<uint8_t>(
            (prefix[(b + 1) * 3 + c] - prefix[a * 3 + c] + (b - a + 1) / 2) / (b - a + 1));
      }
    }
  }
  constexpr int kStrip = 64;  // columns per prefix-sum strip: cache-friendly column sums
  for (int x0 = 0; x0 < w; x0 += kStrip) {
    const int sw = std::min(kStrip, w - x0);
    prefix.assign(size_t(h + 1) * sw * 3, 0);
    for (int y = 0; y < h; ++y) {
      for (int i = 0; i < sw * 3; ++i)
        prefix[(size_t(y) + 1) * sw * 3 + i] =
            prefix[size_t(y) * sw * 3 + i] + pass[(size_t(y) * w + x0) * 3 + i];
    }
    for (int y = 0; y < h; ++y) {
      for (int i = 0; i < sw; ++i) {
        const int x = x0 + i, d = distance(x, y), r = std::min(d / 2, kFillMaxRadius);
        if (d == 0) continue;
        const int a = std::max(0, y - r), b = std::min(h - 1, y + r);
        uint8_t* px = &out.image.pixels[(size_t(y) * w + x) * 3];
        const uint64_t noise =
            mix(static_cast<uint64_t>(seed) ^ mix((uint64_t(y) << 32) | uint32_t(x)));
        const double amp = kFillNoise * std::min(1.0, d / kFillNoiseRamp);
        for (int c = 0; c < 3; ++c) {
          const double mean = double(prefix[(size_t(b) + 1) * sw * 3 + i * 3 + c] -
                                     prefix[size_t(a) * sw * 3 + i * 3 + c]) /
                              (b - a + 1);
          const double u = double((noise >> (c * 16)) & 0xffff) / 65535.0 * 2 - 1;
          px[c] = to_byte(static_cast<float>(mean + amp * u));
        }
      }
    }
  }
  return out;
}

void composite(image::Image& canvas, const image::Image& patch, const Region& region,
               const image::Mask& alpha) {
  for (int y = 0; y < region.height; ++y) {
    const size_t cy = size_t(region.y) + y;
    for (int x = 0; x < region.width; ++x) {
      const size_t cx = size_t(region.x) + x;
      const unsigned a = alpha.values[cy * canvas.width + cx];
      if (a == 0) continue;
      uint8_t* dst = &canvas.pixels[(cy * canvas.width + cx) * 3];
      const uint8_t* src = &patch.pixels[(size_t(y) * patch.width + x) * 3];
      for (int c = 0; c < 3; ++c)
        dst[c] = static_cast<uint8_t>((dst[c] * (255 - a) + src[c] * a + 127) / 255);
    }
  }
}

image::Image flatten_over_white(const image::Image& img) {
  if (img.channels != 4) return img;
  image::Image out{img.width, img.height, 3,
                   std::vector<uint8_t>(size_t(img.width) * img.height * 3)};
  for (size_t i = 0; i < size_t(img.width) * img.height; ++i) {
    const unsigned a = img.pixels[i * 4 + 3];
    for (int c = 0; c < 3; ++c)
      out.pixels[i * 3 + c] =
          static_cast<uint8_t>((img.pixels[i * 4 + c] * a + 255 * (255 - a) + 127) / 255);
  }
  return out;
}

image::Image blend(const image::Image& from, const image::Image& to, double t) {
  t = std::clamp(t, 0.0, 1.0);
  image::Image out = from;
  for (size_t i = 0; i < out.pixels.size(); ++i) {
    out.pixels[i] = to_byte(static_cast<float>((1 - t) * from.pixels[i] + t * to.pixels[i]));
  }
  return out;
}

Result<image::Image> read_png_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open " + path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) return Status::io_error("cannot read " + path);
  return image::decode_png(bytes);
}

Result<std::optional<image::Image>> start_pixels(const GenerateRequest& r) {
  if (r.mode == Mode::kInpaint) {
    if (!r.inpaint || r.inpaint->image.width != r.width || r.inpaint->image.height != r.height ||
        r.inpaint->mask.width != r.width || r.inpaint->mask.height != r.height ||
        !image::validate(r.inpaint->image).is_ok()) {
      return Status::invalid_argument("an inpaint needs its image and mask at the request's size",
                                      "inpaint");
    }
    return std::optional<image::Image>(flatten_over_white(r.inpaint->image));
  }
  if (r.mode == Mode::kTxt2Img || !r.parent || !r.parent->uploaded) {
    return std::optional<image::Image>();
  }
  Result<image::Image> file = read_png_file(r.parent->png_path);
  if (!file.is_ok()) return Status::unprocessable("the parent image cannot be read");
  return std::optional<image::Image>(resize(flatten_over_white(*file), r.width, r.height));
}

}  // namespace atelier::inference::canvas
