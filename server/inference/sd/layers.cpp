#include "server/inference/sd/layers.h"

#include <torch/version.h>

#include <cmath>

namespace atelier::sd {

namespace F = torch::nn::functional;

int64_t& flop_counter() {
  thread_local int64_t flops = 0;
  return flops;
}

Conv Conv::load(Weights& w, const std::string& name, int64_t in, int64_t out, int64_t k,
                int64_t stride, int64_t padding) {
  Conv c;
  c.w = w.take(name + ".weight", {out, in, k, k});
  c.b = w.take(name + ".bias", {out});
  c.stride = stride;
  c.padding = padding < 0 ? k / 2 : padding;
  return c;
}

torch::Tensor Conv::operator()(const torch::Tensor& x) const {
  torch::Tensor y = torch::conv2d(x, w, b, stride, padding);
  flop_counter() += 2 * y.numel() * w.size(1) * w.size(2) * w.size(3);
  return y;
}

Linear Linear::load(Weights& w, const std::string& name, int64_t in, int64_t out, bool bias) {
  Linear l;
  l.w = w.take(name + ".weight", {out, in});
  if (bias) l.b = w.take(name + ".bias", {out});
  return l;
}

torch::Tensor Linear::operator()(const torch::Tensor& x) const {
  flop_counter() += 2 * (x.numel() / x.size(-1)) * w.size(0) * w.size(1);
  return F::linear(x, w, b);
}

GroupNorm GroupNorm::load(Weights& w, const std::string& name, int64_t channels, int64_t groups,
                          double eps) {
  return GroupNorm{w.take(name + ".weight", {channels}), w.take(name + ".bias", {channels}), groups,
                   eps};
}

torch::Tensor GroupNorm::operator()(const torch::Tensor& x) const {
  return torch::group_norm(x, groups, w, b, eps);
}

LayerNorm LayerNorm::load(Weights& w, const std::string& name, int64_t dim, double eps) {
  return LayerNorm{w.take(name + ".weight", {dim}), w.take(name + ".bias", {dim}), eps};
}

torch::Tensor LayerNorm::operator()(const torch::Tensor& x) const {
  return torch::layer_norm(x, {w.size(0)}, w, b, eps);
}

Resnet Resnet::load(Weights& w, const std::string& name, int64_t in, int64_t out,
                    int64_t temb_channels, int64_t groups, double eps) {
  Resnet r;
  r.norm1 = GroupNorm::load(w, name + ".norm1", in, groups, eps);
  r.conv1 = Conv::load(w, name + ".conv1", in, out, 3);
  if (temb_channels > 0)
    r.time_proj = Linear::load(w, name + ".time_emb_proj", temb_channels, out, true);
  r.norm2 = GroupNorm::load(w, name + ".norm2", out, groups, eps);
  r.conv2 = Conv::load(w, name + ".conv2", out, out, 3);
  if (in != out) r.shortcut = Conv::load(w, name + ".conv_shortcut", in, out, 1);
  return r;
}

torch::Tensor Resnet::operator()(const torch::Tensor& x, const torch::Tensor& temb) const {
  torch::Tensor h = conv1(torch::silu(norm1(x)));
  if (time_proj && temb.defined())
    h = h + (*time_proj)(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2(torch::silu(norm2(h)));
  return (shortcut ? (*shortcut)(x) : x) + h;
}

Attention Attention::load(Weights& w, const std::string& name, int64_t query_dim,
                          int64_t context_dim, int64_t heads, int64_t dim_head, bool qkv_bias) {
  const int64_t inner = heads * dim_head;
  Attention a;
  a.q = Linear::load(w, name + ".to_q", query_dim, inner, qkv_bias);
  a.k = Linear::load(w, name + ".to_k", context_dim, inner, qkv_bias);
  a.v = Linear::load(w, name + ".to_v", context_dim, inner, qkv_bias);
  a.out = Linear::load(w, name + ".to_out.0", inner, query_dim, true);
  a.heads = heads;
  return a;
}

torch::Tensor Attention::operator()(const torch::Tensor& x, const torch::Tensor& context) const {
  const torch::Tensor& ctx = context.defined() ? context : x;
  const int64_t b = x.size(0), n = x.size(1);
  torch::Tensor qh = q(x), kh = k(ctx), vh = v(ctx);
  const int64_t d = qh.size(-1) / heads;
  flop_counter() += 2 * 2 * b * heads * n * kh.size(1) * d;  // scores and weighted sum
  auto split = [&](const torch::Tensor& t) {
    return t.view({b, t.size(1), heads, d}).transpose(1, 2);
  };
#if TORCH_VERSION_MAJOR >= 2
  torch::Tensor o = at::scaled_dot_product_attention(split(qh), split(kh), split(vh));
#else
  torch::Tensor scores =
      torch::matmul(split(qh), split(kh).transpose(-1, -2)) * (1.0 / std::sqrt(double(d)));
  torch::Tensor o = torch::matmul(torch::softmax(scores, -1), split(vh));
#endif
  return out(o.transpose(1, 2).reshape({b, n, heads * d}));
}

SpatialTransformer SpatialTransformer::load(Weights& w, const std::string& name, int64_t channels,
                                            int64_t heads, int64_t context_dim, int64_t layers,
                                            int64_t groups, bool linear_projection) {
  SpatialTransformer t;
  t.norm = GroupNorm::load(w, name + ".norm", channels, groups, 1e-6);
  t.linear_projection = linear_projection;
  if (linear_projection) {
    t.proj_in_linear = Linear::load(w, name + ".proj_in", channels, channels, true);
    t.proj_out_linear = Linear::load(w, name + ".proj_out", channels, channels, true);
  } else {
    t.proj_in_conv = Conv::load(w, name + ".proj_in", channels, channels, 1);
    t.proj_out_conv = Conv::load(w, name + ".proj_out", channels, channels, 1);
  }
  const int64_t dim_head = channels / heads;
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = name + ".transformer_blocks." + std::to_string(i);
    Block b;
    b.norm1 = LayerNorm::load(w, p + ".norm1", channels, 1e-5);
    b.attn1 = Attention::load(w, p + ".attn1", channels, channels, heads, dim_head, false);
    b.norm2 = LayerNorm::load(w, p + ".norm2", channels, 1e-5);
    b.attn2 = Attention::load(w, p + ".attn2", channels, context_dim, heads, dim_head, false);
    b.norm3 = LayerNorm::load(w, p + ".norm3", channels, 1e-5);
    b.ff_in = Linear::load(w, p + ".ff.net.0.proj", channels, channels * 4 * 2, true);
    b.ff_out = Linear::load(w, p + ".ff.net.2", channels * 4, channels, true);
    t.blocks.push_back(std::move(b));
  }
  return t;
}

torch::Tensor SpatialTransformer::operator()(const torch::Tensor& x,
                                             const torch::Tensor& context) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  torch::Tensor y = norm(x);
  auto to_tokens = [&](const torch::Tensor& t) {
    return t.permute({0, 2, 3, 1}).reshape({b, h * wd, c});
  };
  y = linear_projection ? proj_in_linear(to_tokens(y)) : to_tokens(proj_in_conv(y));
  for (const Block& blk : blocks) {
    y = blk.attn1(blk.norm1(y), {}) + y;
    y = blk.attn2(blk.norm2(y), context) + y;
    auto parts = blk.ff_in(blk.norm3(y)).chunk(2, -1);  // GEGLU: value * gelu(gate)
    y = blk.ff_out(parts[0] * torch::gelu(parts[1])) + y;
  }
  if (linear_projection) y = proj_out_linear(y);
  y = y.reshape({b, h, wd, c}).permute({0, 3, 1, 2}).contiguous();
  if (!linear_projection) y = proj_out_conv(y);
  return y + x;
}

SpatialSelfAttention SpatialSelfAttention::load(Weights& w, const std::string& name,
                                                int64_t channels, int64_t groups) {
  SpatialSelfAttention a;
  a.norm = GroupNorm::load(w, name + ".group_norm", channels, groups, 1e-6);
  a.attn = Attention::load(w, name, channels, channels, 1, channels, true);
  return a;
}

torch::Tensor SpatialSelfAttention::operator()(const torch::Tensor& x) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  torch::Tensor y = norm(x).view({b, c, h * wd}).transpose(1, 2);
  y = attn(y, {});
  return y.transpose(1, 2).reshape({b, c, h, wd}) + x;
}

}  // namespace atelier::sd
