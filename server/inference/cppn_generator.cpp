// The CPPN renderer. Layout of the work:
//
//   State (cppn_style.h) --build_net--> Net: weight tensors on the device, output layer
//   normalised with statistics from a fixed 32-pixel probe grid, so every seed spreads over the
//   whole palette and the normalisation is the same at every resolution (upscale, previews).
//   Net --eval_tile--> the network's outputs for one tile of rows, with feature-major matrices
//   (units x pixels), so one addmm per layer covers the tile and each activation group is a
//   contiguous slice of rows.
//   --shade--> RGB bytes through the cosine palette: straight from each tile for "smooth"; via a
//   whole-picture field for "contour", whose lines need neighbouring rows.
//
// Tile sizes are fixed per device kind (never derived from the thread count) and each tile is
// computed single-threaded by whichever thread takes it, so the same request always runs the same
// arithmetic and gives the same bits.
#include "server/inference/cppn_generator.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>
#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <numbers>
#include <optional>
#include <utility>

#include "server/inference/cppn_style.h"
#include "server/inference/edit_canvas.h"

namespace atelier::inference {
namespace {

using cppn::Look;
using cppn::State;

constexpr uint64_t kStreamWeights = 5;  // see cppn_style.cpp: stream ids never change
constexpr int kProbeSide = 32;          // long side of the normalisation probe grid
constexpr int kContourBands = 7;
constexpr float kContourHalfWidth = 0.0045f;  // in normalised units; the long side spans 2
constexpr float kLightDepth = 0.15f;          // light output darkens by up to 2 * this

// Pixels per tile: on the CPU a tile's activations (32 units x 16384 pixels, 2 MB) stay in
// cache and each thread of torch's pool takes whole tiles; a GPU wants big launches.
int64_t tile_pixels(const at::Device& d) {
  return d.is_cuda() ? (int64_t{1} << 20) : 16384;
}

// Debian's libtorch multiplies matrices with OpenBLAS, whose own thread pool fights torch's
// intra-op threads (which already split the tiles): its spinning workers made a render 2-3x
// slower, even with one torch thread on a busy machine (measured). So a CPU render asks OpenBLAS
// for one thread and restores the setting afterwards; looked up at run time, so nothing links
// against OpenBLAS (other BLAS builds, e.g. MKL, lack the symbols and run single-threaded there).
class BlasThreadsGuard {
 public:
  explicit BlasThreadsGuard(const at::Device& device) {
    if (!device.is_cpu()) return;
    const Api& api = lookup();
    if (!api.get || !api.set) return;
    previous_ = api.get();
    if (previous_ > 1) api.set(1);
  }
  ~BlasThreadsGuard() {
    if (previous_ > 1) lookup().set(previous_);
  }
  BlasThreadsGuard(const BlasThreadsGuard&) = delete;
  BlasThreadsGuard& operator=(const BlasThreadsGuard&) = delete;

 private:
  struct Api {
    int (*get)() = nullptr;
    void (*set)(int) = nullptr;
  };
  static const Api& lookup() {
    static const Api api{
        reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")),
        reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))};
    return api;
  }
  int previous_ = 0;
};

struct ActGroup {
  char fn;  // one of cppn::kActivations; 't' runs as a sigmoid, see fold_tanh()
  int64_t start;
  int64_t len;
};

struct Net {
  at::Tensor w_in, b_in;  // (H, 3) over (x, y, r), coordinate scale folded in; (H, 1)
  std::vector<at::Tensor> w_hidden, b_hidden;  // (H, H), (H, 1)
  // (kOutputs, H), (kOutputs, 1): normalised over the probe grid, then scaled so a sigmoid
  // gives the palette coordinate (row 0, guidance's gain folded in) and the light (row 1).
  at::Tensor w_out, b_out;
  std::vector<std::vector<ActGroup>> acts;  // one entry per activation layer
};

// A layer's weights on the host, in double while the folding below rewrites them.
struct HostLayer {
  int64_t out = 0, in = 0;
  std::vector<double> w;  // row-major (out, in)
  std::vector<double> b;
};

HostLayer draw_layer(cppn::Rng& rng, int64_t out, int64_t in, double w_std, double b_std) {
  HostLayer l{out, in, std::vector<double>(out * in), std::vector<double>(out)};
  // Drawn as floats so the values do not depend on how the folding rounds.
  for (double& v : l.w) v = static_cast<float>(w_std * rng.normal());
  for (double& v : l.b) v = static_cast<float>(b_std * rng.normal());
  return l;
}

at::Tensor to_tensor(const std::vector<float>& v, int64_t rows, int64_t cols,
                     const at::TensorOptions& opt) {
  // from_blob does not own the memory; clone() before it goes away.
  at::Tensor cpu = at::from_blob(const_cast<float*>(v.data()), {rows, cols}, at::kFloat).clone();
  return opt.device().is_cpu() ? cpu : cpu.to(opt.device());
}

at::Tensor to_tensor(const std::vector<double>& v, int64_t rows, int64_t cols,
                     const at::TensorOptions& opt) {
  return to_tensor(std::vector<float>(v.begin(), v.end()), rows, cols, opt);
}

// Activation groups: equal slices of the layer's units, the remainder going to the last group.
std::vector<ActGroup> groups_for(const std::string& letters, int64_t width) {
  std::vector<ActGroup> out;
  const int64_t n = static_cast<int64_t>(letters.size());
  const int64_t base = width / n;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back({letters[i], i * base, i + 1 == n ? width - i * base : base});
  }
  return out;
}

// tanh(x) = 2 * sigmoid(2x) - 1, and the CPU sigmoid kernel is vectorised where Debian's tanh
// is not (3x faster). The factor 2 goes into the producing layer's rows and the affine 2s - 1
// into the consuming layer's columns, so a tanh unit costs one sigmoid and nothing else.
void fold_tanh(HostLayer& producer, HostLayer& consumer, const std::vector<ActGroup>& groups) {
  for (const ActGroup& g : groups) {
    if (g.fn != 't') continue;
    for (int64_t u = g.start; u < g.start + g.len; ++u) {
      for (int64_t i = 0; i < producer.in; ++i) producer.w[u * producer.in + i] *= 2;
      producer.b[u] *= 2;
      for (int64_t r = 0; r < consumer.out; ++r) {
        consumer.b[r] -= consumer.w[r * consumer.in + u];
        consumer.w[r * consumer.in + u] *= 2;
      }
    }
  }
}

void activate(const at::Tensor& h, const std::vector<ActGroup>& groups) {
  for (const ActGroup& g : groups) {
    at::Tensor part = groups.size() == 1 ? h : h.narrow(0, g.start, g.len);
    switch (g.fn) {
      case 't':
        part.sigmoid_();  // see fold_tanh()
        break;
      case 's':
        part.sin_();
        break;
      default:  // 'g'
        part.square_().neg_().exp_();
        break;
    }
  }
}

// Pixel-centre coordinates: the long side spans [-1, 1], so the picture is resolution-free and
// an upscale's pixel blocks average to the parent's pixel centres.
at::Tensor axis_coords(int n, int long_side, const at::TensorOptions& opt) {
  std::vector<float> v(static_cast<size_t>(n));
  const double px = 2.0 / long_side;
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>((i + 0.5) * px - double(n) / long_side);
  return to_tensor(v, 1, n, opt).view({n});
}

// A row-tiled grid over a width x height picture.
struct Grid {
  int width = 0, height = 0;
  at::Tensor xs, ys;  // pixel-centre coordinates
  int64_t rows_per_tile = 1;
  int64_t tiles = 0;
};

Grid make_grid(int width, int height, const at::TensorOptions& opt) {
  Grid g{width, height};
  const int long_side = std::max(width, height);
  g.xs = axis_coords(width, long_side, opt);
  g.ys = axis_coords(height, long_side, opt);
  g.rows_per_tile = std::max<int64_t>(1, tile_pixels(opt.device()) / width);
  g.tiles = (height + g.rows_per_tile - 1) / g.rows_per_tile;
  return g;
}

// Calls body(tile, scratch) for every tile. On the CPU the tiles are handed out one at a time
// from a shared counter to torch's intra-op threads, so a thread the OS preempts (a busy build
// machine) just takes fewer tiles instead of holding the others at a barrier; ops inside run
// single-threaded, and a tile is computed the same way whichever thread takes it, so the result
// does not depend on the thread count. On a GPU the tiles run in order. `scratch` is per thread.
template <class Body>
void for_tiles(const at::Device& device, int64_t tiles, const Body& body) {
  const int64_t workers = device.is_cuda() ? 1 : std::min<int64_t>(at::get_num_threads(), tiles);
  std::atomic<int64_t> next{0};
  auto work = [&](int64_t, int64_t) {
    std::vector<at::Tensor> scratch;
    for (int64_t tile = next++; tile < tiles; tile = next++) body(tile, scratch);
  };
  if (workers <= 1) {
    work(0, 1);
  } else {
    at::parallel_for(0, workers, 1, work);  // one index each; nested calls run inline
  }
}

// Evaluates the network over tile `tile` of the grid: (kOutputs, rows * width). The scratch
// tensors are grown on first use and reused by the caller's later tiles.
at::Tensor eval_tile(const Net& net, const Grid& g, int64_t tile,
                     std::vector<at::Tensor>& scratch) {
  const at::TensorOptions opt = net.w_in.options();
  const int64_t units = net.w_in.size(0);
  const int64_t r0 = tile * g.rows_per_tile;
  const int64_t rows = std::min<int64_t>(g.rows_per_tile, g.height - r0);
  const int64_t n = rows * g.width;
  if (scratch.empty()) {
    const int64_t max_n = g.rows_per_tile * g.width;
    scratch = {at::empty({3 * max_n}, opt), at::empty({units * max_n}, opt),
               at::empty({units * max_n}, opt)};
  }
  at::Tensor coords = scratch[0].narrow(0, 0, 3 * n).view({3, n});
  at::Tensor x = coords[0], y = coords[1], r = coords[2];
  x.view({rows, g.width}).copy_(g.xs.unsqueeze(0).expand({rows, g.width}));
  y.view({rows, g.width}).copy_(g.ys.narrow(0, r0, rows).unsqueeze(1).expand({rows, g.width}));
  at::hypot_out(r, x, y);

  at::Tensor a = scratch[1].narrow(0, 0, units * n).view({units, n});
  at::Tensor b = scratch[2].narrow(0, 0, units * n).view({units, n});
  at::addmm_out(a, net.b_in, net.w_in, coords);
  activate(a, net.acts[0]);
  for (size_t l = 0; l < net.w_hidden.size(); ++l) {
    at::addmm_out(b, net.b_hidden[l], net.w_hidden[l], a);
    activate(b, net.acts[l + 1]);
    std::swap(a, b);
  }
  return at::addmm(net.b_out, net.w_out, a);
}

// The probe grid has the picture's aspect ratio and a fixed size, so its statistics (and the
// normalisation built from them) are identical for a picture, its previews and its upscales.
std::pair<int, int> probe_size(int width, int height) {
  const int long_side = std::max(width, height);
  auto side = [&](int s) {
    return std::max(2, static_cast<int>(std::lround(double(kProbeSide) * s / long_side)));
  };
  return {side(width), side(height)};
}

Net build_net(const cppn::Network& network, const Look& look, int width, int height,
              const at::Device& device) {
  const at::TensorOptions opt = at::TensorOptions().dtype(at::kFloat).device(device);
  const cppn::Structure& s = network.structure;
  const int64_t h = s.width;
  const size_t layers = s.layers.size();
  cppn::Rng rng(cppn::stream_seed(network.seed, kStreamWeights));

  // Draw order is part of the lineage format: input, latent, hidden layers, output.
  // Biases (own and latent) grow with the coordinate scale: with small biases every first-layer
  // boundary passes near the centre and pictures become rays from the middle.
  HostLayer in = draw_layer(rng, h, 3, s.scale, 0.5 * s.scale);
  const HostLayer latent =
      draw_layer(rng, h, cppn::kLatentDim, 0.5 * s.scale / std::sqrt(double(cppn::kLatentDim)), 0);
  // The latent enters as part of the first layer's bias: it is constant over the picture.
  for (int64_t i = 0; i < h; ++i) {
    for (int j = 0; j < cppn::kLatentDim; ++j) {
      in.b[i] += latent.w[i * cppn::kLatentDim + j] * network.latent[j];
    }
  }
  std::vector<HostLayer> hidden;
  for (size_t l = 1; l < layers; ++l) {
    hidden.push_back(draw_layer(rng, h, h, s.gain / std::sqrt(double(h)), 0.1));
  }
  HostLayer out = draw_layer(rng, cppn::kOutputs, h, 1.0 / std::sqrt(double(h)), 0);

  Net net;
  for (const std::string& letters : s.layers) net.acts.push_back(groups_for(letters, h));
  for (size_t l = 0; l < layers; ++l) {
    fold_tanh(l == 0 ? in : hidden[l - 1], l + 1 < layers ? hidden[l] : out, net.acts[l]);
  }
  net.w_in = to_tensor(in.w, h, 3, opt);
  net.b_in = to_tensor(in.b, h, 1, opt);
  for (const HostLayer& l : hidden) {
    net.w_hidden.push_back(to_tensor(l.w, h, h, opt));
    net.b_hidden.push_back(to_tensor(l.b, h, 1, opt));
  }

  // Normalise each output to zero mean and unit spread over the probe grid, then apply the
  // sigmoid gains; all folded into the output layer so full-size rendering pays nothing.
  net.w_out = to_tensor(out.w, cppn::kOutputs, h, opt);
  net.b_out = to_tensor(out.b, cppn::kOutputs, 1, opt);
  const auto [pw, ph] = probe_size(width, height);
  const Grid probe_grid = make_grid(pw, ph, opt);
  std::vector<at::Tensor> scratch;
  const at::Tensor probe =
      eval_tile(net, probe_grid, 0, scratch).to(at::kCPU, at::kDouble).contiguous();
  const double* p = probe.data_ptr<double>();
  const int64_t n = probe.size(1);
  // tanh(k u) = 2 sigmoid(2 k u) - 1: row 0 feeds the palette squash, row 1 the light.
  const double gains[cppn::kOutputs] = {2.0 * cppn::squash_gain(look), 2.0};
  for (int o = 0; o < cppn::kOutputs; ++o) {
    double sum = 0, sum2 = 0;
    for (int64_t i = 0; i < n; ++i) sum += p[o * n + i];
    const double mean = sum / n;
    for (int64_t i = 0; i < n; ++i) sum2 += (p[o * n + i] - mean) * (p[o * n + i] - mean);
    // The floor keeps a nearly flat output from blowing float noise up into texture.
    const double f = gains[o] / std::max(std::sqrt(sum2 / n), 0.05);
    for (int64_t i = 0; i < h; ++i) out.w[o * h + i] *= f;
    out.b[o] = (out.b[o] - mean) * f;
  }
  net.w_out = to_tensor(out.w, cppn::kOutputs, h, opt);
  net.b_out = to_tensor(out.b, cppn::kOutputs, 1, opt);
  return net;
}

// The colour pipeline's constants, on the device. With s = sigmoid(output 0):
//   t   = beta + alpha * s, clamped to [0, 1]      (palette position)
//   rgb = M a + M diag(b) cos(2 pi (c t + d))      (M: saturation, a blend toward luma)
//   out = rgb * light * 255 + 0.5                  (then truncated to bytes)
struct Colouring {
  double alpha = 1, beta = 0, s_lo = 0, s_hi = 1;
  at::Tensor phase_scale_s, phase_shift_s;  // (3, 1): cos argument as a function of s
  at::Tensor phase_scale_t, phase_shift_t;  // (3, 1): as a function of t
  at::Tensor ma, mb;                        // (3, 1), (3, 3)
  bool contour = false;
};

Colouring make_colouring(const Look& look, const at::TensorOptions& opt) {
  Colouring c;
  const cppn::Palette& p = look.palette;
  // Squash rescaled so +-2 sigma reaches the palette's ends at any guidance: guidance changes
  // how sharp the transitions are, not how much of the palette is used.
  const double squash = 0.5 / std::tanh(2.0 * cppn::squash_gain(look));
  c.alpha = 2 * squash;
  c.beta = 0.5 - squash;
  c.s_lo = -c.beta / c.alpha;
  c.s_hi = (1 - c.beta) / c.alpha;
  const double sat = cppn::saturation_for_guidance(look.guidance);
  const double luma[3] = {0.299, 0.587, 0.114};
  const double two_pi = 2 * std::numbers::pi;
  std::vector<double> ss(3), sd(3), ts(3), td(3), ma(3), mb(9);
  for (int i = 0; i < 3; ++i) {
    ts[i] = two_pi * p.c[i];
    td[i] = two_pi * p.d[i];
    ss[i] = ts[i] * c.alpha;
    sd[i] = ts[i] * c.beta + td[i];
    for (int j = 0; j < 3; ++j) {
      const double m = (i == j ? sat : 0.0) + (1 - sat) * luma[j];
      ma[i] += m * p.a[j];
      mb[i * 3 + j] = m * p.b[j];
    }
  }
  c.phase_scale_s = to_tensor(ss, 3, 1, opt);
  c.phase_shift_s = to_tensor(sd, 3, 1, opt);
  c.phase_scale_t = to_tensor(ts, 3, 1, opt);
  c.phase_shift_t = to_tensor(td, 3, 1, opt);
  c.ma = to_tensor(ma, 3, 1, opt);
  c.mb = to_tensor(mb, 3, 3, opt);
  c.contour = look.sampler == cppn::Sampler::kContour;
  return c;
}

// Colours `n` pixels from the cos arguments (3, n, overwritten) and the light sigmoid (n,
// overwritten) into dst (n, 3) bytes; `darken` (n), if defined, multiplies the light.
void shade(const Colouring& c, at::Tensor& phase, at::Tensor light, const at::Tensor& dst,
           const at::Tensor& darken = {}) {
  const at::Tensor rgb = at::addmm(c.ma, c.mb, phase.cos_());
  light.mul_(2 * kLightDepth * 255).add_((1 - 2 * kLightDepth) * 255);
  if (darken.defined()) light.mul_(darken);
  rgb.mul_(light.unsqueeze(0)).add_(0.5).clamp_(0, 255);
  dst.copy_(rgb.t());
}

// Contour lines for rows [r0, r0 + rows): alpha in [0, 1] per pixel, from the distance to the
// nearest band boundary measured in picture units (value / gradient), so lines keep their width
// on the picture at every resolution and stay anti-aliased. `t` is the palette position of
// rows [h0, h0 + t.size(0)), which include one neighbour row on each side where they exist.
at::Tensor contour_alpha(const at::Tensor& t, int64_t h0, int64_t r0, int64_t rows, int width,
                         int height) {
  const at::Tensor f = t * float(kContourBands);
  const int64_t hr = f.size(0);
  at::Tensor gx = at::empty_like(f), gy = at::empty_like(f);
  gx.narrow(1, 1, width - 2).copy_((f.narrow(1, 2, width - 2) - f.narrow(1, 0, width - 2)) * 0.5);
  gx.select(1, 0).copy_(f.select(1, 1) - f.select(1, 0));
  gx.select(1, width - 1).copy_(f.select(1, width - 1) - f.select(1, width - 2));
  if (hr >= 3) {
    gy.narrow(0, 1, hr - 2).copy_((f.narrow(0, 2, hr - 2) - f.narrow(0, 0, hr - 2)) * 0.5);
  }
  gy.select(0, 0).copy_(f.select(0, std::min<int64_t>(1, hr - 1)) - f.select(0, 0));
  gy.select(0, hr - 1).copy_(f.select(0, hr - 1) - f.select(0, std::max<int64_t>(0, hr - 2)));
  const double px = 2.0 / std::max(width, height);  // picture units per pixel
  const at::Tensor band = f.narrow(0, r0 - h0, rows).reshape({rows * width});
  const at::Tensor grad = at::hypot(gx, gy).narrow(0, r0 - h0, rows).reshape({rows * width});
  // Boundaries 1..bands-1 only: a saturated (flat) end of the palette must not read as a line.
  const at::Tensor nearest = band.round().clamp_(1, kContourBands - 1);
  const at::Tensor dist = (band - nearest).abs_() * px / grad.clamp_min(1e-6);
  at::Tensor u = ((dist - (kContourHalfWidth - px)) / (2 * px)).clamp_(0, 1);
  return 1 - u * u * (3 - 2 * u);  // 1 - smoothstep
}

image::Image render(const Net& net, const Look& look, int width, int height) {
  const at::TensorOptions opt = net.w_in.options();
  const at::Device device = opt.device();
  const Grid grid = make_grid(width, height, opt);
  const Colouring colouring = make_colouring(look, opt);
  image::Image img{width, height, 3, std::vector<uint8_t>(size_t(width) * height * 3)};
  const at::Tensor host = at::from_blob(img.pixels.data(), {int64_t{height} * width, 3}, at::kByte);
  const at::Tensor dst = device.is_cpu() ? host : at::empty(host.sizes(), opt.dtype(at::kByte));

  if (!colouring.contour) {
    // Pointwise all the way: colour each tile as soon as the network has evaluated it.
    for_tiles(device, grid.tiles, [&](int64_t tile, std::vector<at::Tensor>& scratch) {
      at::Tensor s = eval_tile(net, grid, tile, scratch).sigmoid_();
      const int64_t n = s.size(1);
      at::Tensor phase = at::addcmul(colouring.phase_shift_s, colouring.phase_scale_s,
                                     s[0].clamp_(colouring.s_lo, colouring.s_hi).unsqueeze(0));
      shade(colouring, phase, s[1], dst.narrow(0, tile * grid.rows_per_tile * width, n));
    });
  } else {
    // Contour lines need neighbours: keep the whole field, then colour in row bands.
    const at::Tensor field = at::empty({cppn::kOutputs, int64_t{height} * width}, opt);
    for_tiles(device, grid.tiles, [&](int64_t tile, std::vector<at::Tensor>& scratch) {
      const at::Tensor out = eval_tile(net, grid, tile, scratch).sigmoid_();
      field.narrow(1, tile * grid.rows_per_tile * width, out.size(1)).copy_(out);
    });
    for_tiles(device, grid.tiles, [&](int64_t tile, std::vector<at::Tensor>&) {
      const int64_t r0 = tile * grid.rows_per_tile;
      const int64_t rows = std::min<int64_t>(grid.rows_per_tile, height - r0);
      const int64_t h0 = std::max<int64_t>(0, r0 - 1);
      const int64_t h1 = std::min<int64_t>(height, r0 + rows + 1);
      const at::Tensor t = field[0]
                               .narrow(0, h0 * width, (h1 - h0) * width)
                               .mul(colouring.alpha)
                               .add_(colouring.beta)
                               .clamp_(0, 1)
                               .view({h1 - h0, width});
      const at::Tensor alpha = contour_alpha(t, h0, r0, rows, width, height);
      const at::Tensor band = t.narrow(0, r0 - h0, rows).reshape({rows * width});
      const at::Tensor quantised = band.mul(float(kContourBands))
                                       .floor_()
                                       .clamp_(0, kContourBands - 1)
                                       .add_(0.5)
                                       .div_(float(kContourBands));
      at::Tensor phase =
          at::addcmul(colouring.phase_shift_t, colouring.phase_scale_t, quantised.unsqueeze(0));
      shade(colouring, phase, field[1].narrow(0, r0 * width, rows * width).clone(),
            dst.narrow(0, r0 * width, rows * width), 1 - 0.6 * alpha);
    });
  }
  if (!device.is_cpu()) host.copy_(dst);  // device -> host
  return img;
}

class CppnGenerator final : public Generator {
 public:
  explicit CppnGenerator(at::Device device) : device_(device) {}

  const ModelInfo& info() const override { return cppn_model_info(); }

  Result<std::vector<GeneratedImage>> generate(const GenerateRequest& request,
                                               ProgressSink& progress,
                                               const CancelToken& cancel) override {
    // Cheap, and makes the generator safe to call from threads that did not set it.
    c10::InferenceMode inference_mode;
    BlasThreadsGuard blas_threads(device_);
    try {
      return generate_all(request, progress, cancel);
    } catch (const std::bad_alloc&) {
      return Status::resource_exhausted("cppn: out of memory rendering " + size_text(request));
    } catch (const std::exception& e) {
      std::string what = e.what();
      what = what.substr(0, what.find('\n'));  // c10 errors append a long backtrace
      if (what.find("out of memory") != std::string::npos) {
        return Status::resource_exhausted("cppn: out of device memory rendering " +
                                          size_text(request));
      }
      return Status::internal("cppn: " + what);
    }
  }

 private:
  static std::string size_text(const GenerateRequest& r) {
    return std::to_string(r.width) + "x" + std::to_string(r.height);
  }

  Result<std::vector<GeneratedImage>> generate_all(const GenerateRequest& r, ProgressSink& progress,
                                                   const CancelToken& cancel) {
    ATELIER_RETURN_IF_ERROR(cppn::validate_request(r, cppn_model_info().upscale_factors));
    ATELIER_ASSIGN_OR_RETURN(std::optional<image::Image> start, canvas::start_pixels(r));
    const int total = r.steps * r.count;
    std::vector<GeneratedImage> out;
    for (int i = 0; i < r.count; ++i) {
      if (cancel.cancelled()) return Status::cancelled("cppn: cancelled");
      const int64_t seed = r.seed + i;
      Result<State> state = cppn::state_for_request(r, seed);
      if (!state) return state.status();
      const Net net = build_net(state->network, state->look, r.width, r.height, device_);
      image::Image final_image;
      for (int step = 1; step <= r.steps; ++step) {
        if (cancel.cancelled()) return Status::cancelled("cppn: cancelled");
        const int global_step = i * r.steps + step;
        const bool want = progress.wants_preview();
        if (step < r.steps) {
          // Intermediate steps exist only to be watched: skip their renders when nobody is.
          if (want) {
            const auto [pw, ph] = cppn::preview_size(r.width, r.height, step, r.steps);
            const image::Image preview = render(net, state->look, pw, ph);
            progress.on_step(global_step, total, &preview);
          } else {
            progress.on_step(global_step, total, nullptr);
          }
          continue;
        }
        final_image = render(net, state->look, r.width, r.height);
        if (start) final_image = canvas::blend(*start, final_image, r.strength);
        if (!want) {
          progress.on_step(global_step, total, nullptr);
        } else if (std::max(r.width, r.height) <= cppn::kPreviewMaxSide) {
          progress.on_step(global_step, total, &final_image);
        } else {
          const auto [pw, ph] = cppn::preview_size(r.width, r.height, 1, 1);
          const image::Image preview = render(net, state->look, pw, ph);
          progress.on_step(global_step, total, &preview);
        }
      }
      out.push_back(
          {.image = std::move(final_image), .seed = seed, .lineage = cppn::format_lineage(*state)});
    }
    return out;
  }

  at::Device device_;
};

}  // namespace

const ModelInfo& cppn_model_info() {
  static const ModelInfo kInfo{
      .id = "cppn",
      .kind = "builtin",
      .description =
          "Built-in pattern generator (a random-weight CPPN network, no download): the seed "
          "picks the shapes; the prompt picks colours and style (colour and mood words like "
          "'ocean', 'sunset' or 'neon' steer the palette) but does not draw what it "
          "describes. Guidance sets contrast; sampler 'contour' adds bands and iso-lines.",
      .width = {.min = 64, .max = 2048, .default_value = 512, .multiple_of = 8},
      .height = {.min = 64, .max = 2048, .default_value = 512, .multiple_of = 8},
      .steps = {.min = 1, .max = 50, .default_value = 12, .multiple_of = 1},
      .count = {.min = 1, .max = 4, .default_value = 1, .multiple_of = 1},
      .guidance = {.min = 1, .max = 20, .default_value = 7},
      .strength = {.min = 0, .max = 1, .default_value = 0.35},
      .samplers = {"smooth", "contour"},
      .upscale_factors = {2, 4},
      .modes = {Mode::kTxt2Img, Mode::kVariation, Mode::kRemix, Mode::kUpscale, Mode::kInpaint,
                Mode::kOutpaint},
  };
  return kInfo;
}

Result<std::unique_ptr<Generator>> make_cppn_generator(const std::string& device) {
  std::optional<at::Device> dev;
  try {
    dev.emplace(device);
  } catch (const std::exception&) {
    return Status::invalid_argument("cppn: \"" + device + "\" is not a torch device", "device");
  }
  if (dev->is_cuda()) {
    if (!torch::cuda::is_available()) {
      return Status::unavailable("cppn: device \"" + device +
                                 "\" requested but CUDA is not available (no GPU visible, or "
                                 "libtorch built without CUDA)");
    }
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    const int64_t index = dev->has_index() ? dev->index() : 0;
    if (index >= count) {
      return Status::unavailable("cppn: device \"" + device + "\" requested but only " +
                                 std::to_string(count) + " CUDA device(s) present");
    }
    // Pin the index so work never follows the thread's current device.
    dev = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  } else if (!dev->is_cpu()) {
    return Status::invalid_argument(
        "cppn: supports \"cpu\" and \"cuda[:N]\" devices, not \"" + device + "\"", "device");
  }
  return std::unique_ptr<Generator>(std::make_unique<CppnGenerator>(*dev));
}

}  // namespace atelier::inference
