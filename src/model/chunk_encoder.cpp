#include "model/chunk_encoder.h"

#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"

#include <cmath>
#include <fmt/format.h>

namespace hsa {

// The attention sub-block mirrors attention_layer.cpp's projections, but keys and values have all
// num_attention_heads heads (no GQA: there is no KV cache to save here), positions restart at 0 in every chunk,
// and the attention is ops::block_attention instead of the causal window; there is no decoding history either.
namespace {

LayerContext block_context(const LayerContext& memory, int64_t i) {
  return LayerContext{memory.config, memory.params, memory.name(fmt::format("encoder.{}.", i))};
}

Tensor self_attention_forward(const LayerContext& ctx, const Tensor& x, EncoderBlockCache& bc) {
  const ModelConfig& c = ctx.config;
  const int64_t N = x.dim(0), T = x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  auto norm = ops::rmsnorm_forward(x, ctx.param("attn_norm.weight"), c.rms_norm_eps);
  bc.x = x, bc.xn = norm.y, bc.x_rstd = norm.rstd;
  bc.q_raw = ops::linear_forward(norm.y, ctx.param("attn.q_proj.weight")).view({N, T, HQ, D});
  bc.k_raw = ops::linear_forward(norm.y, ctx.param("attn.k_proj.weight")).view({N, T, HQ, D});
  bc.v = ops::linear_forward(norm.y, ctx.param("attn.v_proj.weight")).view({N, T, HQ, D});
  Tensor q = bc.q_raw, k = bc.k_raw;
  if (c.qk_norm) {
    auto qn = ops::rmsnorm_forward(bc.q_raw, ctx.param("attn.q_norm.weight"), c.rms_norm_eps);
    auto kn = ops::rmsnorm_forward(bc.k_raw, ctx.param("attn.k_norm.weight"), c.rms_norm_eps);
    q = qn.y, bc.q_rstd = qn.rstd, k = kn.y, bc.k_rstd = kn.rstd;
  }
  bc.q = ops::rope_forward(q, 0, c.rope_theta);
  bc.k = ops::rope_forward(k, 0, c.rope_theta);
  bc.attn = ops::block_attention_forward(bc.q, bc.k, bc.v, 1.0 / std::sqrt(double(D)));
  bc.attn_flat = bc.attn.out.view({N, T, HQ * D});
  return ops::linear_forward(bc.attn_flat, ctx.param("attn.o_proj.weight"));
}

Tensor self_attention_backward(const LayerContext& ctx, const EncoderBlockCache& bc, const Tensor& dy, TensorMap& grads) {
  const ModelConfig& c = ctx.config;
  const int64_t N = bc.x.dim(0), T = bc.x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  auto og = ops::linear_backward(dy, bc.attn_flat, ctx.param("attn.o_proj.weight"));
  accumulate_grad(grads, ctx.name("attn.o_proj.weight"), og.dw);
  auto ag = ops::block_attention_backward(og.dx.view({N, T, HQ, D}), bc.q, bc.k, bc.v, bc.attn,
                                          1.0 / std::sqrt(double(D)));
  Tensor dq = ops::rope_backward(ag.dq, 0, c.rope_theta);
  Tensor dk = ops::rope_backward(ag.dk, 0, c.rope_theta);
  if (c.qk_norm) {
    auto qg = ops::rmsnorm_backward(dq, bc.q_raw, ctx.param("attn.q_norm.weight"), bc.q_rstd);
    auto kg = ops::rmsnorm_backward(dk, bc.k_raw, ctx.param("attn.k_norm.weight"), bc.k_rstd);
    accumulate_grad(grads, ctx.name("attn.q_norm.weight"), qg.dweight);
    accumulate_grad(grads, ctx.name("attn.k_norm.weight"), kg.dweight);
    dq = qg.dx, dk = kg.dx;
  }
  auto qp = ops::linear_backward(dq.view({N, T, HQ * D}), bc.xn, ctx.param("attn.q_proj.weight"));
  auto kp = ops::linear_backward(dk.view({N, T, HQ * D}), bc.xn, ctx.param("attn.k_proj.weight"));
  auto vp = ops::linear_backward(ag.dv.view({N, T, HQ * D}), bc.xn, ctx.param("attn.v_proj.weight"));
  accumulate_grad(grads, ctx.name("attn.q_proj.weight"), qp.dw);
  accumulate_grad(grads, ctx.name("attn.k_proj.weight"), kp.dw);
  accumulate_grad(grads, ctx.name("attn.v_proj.weight"), vp.dw);
  Tensor dxn = qp.dx;
  ops::add_(dxn, kp.dx);
  ops::add_(dxn, vp.dx);
  auto ng = ops::rmsnorm_backward(dxn, bc.x, ctx.param("attn_norm.weight"), bc.x_rstd);
  accumulate_grad(grads, ctx.name("attn_norm.weight"), ng.dweight);
  return ng.dx;
}

}  // namespace

Tensor chunk_encoder_forward(const LayerContext& memory, const Tensor& x_in, ChunkEncoderCache* cache) {
  const int64_t layers = memory.config.chunk_encoder_layers;
  if (cache) cache->blocks.assign(size_t(layers), {});
  Tensor x = x_in;
  for (int64_t i = 0; i < layers; ++i) {
    LayerContext ctx = block_context(memory, i);
    EncoderBlockCache local;
    EncoderBlockCache& bc = cache ? cache->blocks[size_t(i)] : local;
    Tensor mid = ops::add(x, self_attention_forward(ctx, x, bc));
    x = ops::add(mid, ffn_forward(ctx, false, mid, nullptr, &bc.ffn));
  }
  return x;
}

Tensor chunk_encoder_backward(const LayerContext& memory, const ChunkEncoderCache& cache, const Tensor& dy,
                              TensorMap& grads) {
  Tensor dx = dy.clone();
  for (int64_t i = memory.config.chunk_encoder_layers - 1; i >= 0; --i) {
    LayerContext ctx = block_context(memory, i);
    const EncoderBlockCache& bc = cache.blocks[size_t(i)];
    ops::add_(dx, ffn_backward(ctx, bc.ffn, dx, 0.0, grads));
    ops::add_(dx, self_attention_backward(ctx, bc, dx, grads));
  }
  return dx;
}

}  // namespace hsa
