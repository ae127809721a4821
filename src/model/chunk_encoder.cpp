#include "model/chunk_encoder.h"

#include "ops/elementwise.h"
#include "ops/linear.h"

#include <cmath>
#include <fmt/format.h>

namespace hsa {

// The attention sub-block shares the model layers' projections (qkv_projection.h), but keys and values have all
// num_attention_heads heads (no GQA: there is no KV cache to save here), positions restart at 0 in every chunk,
// and the attention is ops::block_attention instead of the causal window; there is no decoding history either.
namespace {

LayerContext block_context(const LayerContext& memory, int64_t i) {
  return LayerContext{memory.config, memory.params, memory.name(fmt::format("encoder.{}.", i))};
}

Tensor self_attention_forward(const LayerContext& ctx, const Tensor& x, EncoderBlockCache& bc) {
  const ModelConfig& c = ctx.config;
  const int64_t N = x.dim(0), T = x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  Qkv qkv = qkv_forward(ctx, x, HQ, 0, bc.qkv);
  bc.q = qkv.q, bc.k = qkv.k, bc.v = qkv.v;
  bc.attn = ops::block_attention_forward(bc.q, bc.k, bc.v, 1.0 / std::sqrt(double(D)));
  bc.attn_flat = bc.attn.out.view({N, T, HQ * D});
  return ops::linear_forward(bc.attn_flat, ctx.param("attn.o_proj.weight"));
}

Tensor self_attention_backward(const LayerContext& ctx, const EncoderBlockCache& bc, const Tensor& dy, TensorMap& grads) {
  const ModelConfig& c = ctx.config;
  const int64_t N = bc.qkv.x.dim(0), T = bc.qkv.x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  auto og = ops::linear_backward(dy, bc.attn_flat, ctx.param("attn.o_proj.weight"));
  accumulate_grad(grads, ctx.name("attn.o_proj.weight"), og.dw);
  auto ag = ops::block_attention_backward(og.dx.view({N, T, HQ, D}), bc.q, bc.k, bc.v, bc.attn,
                                          1.0 / std::sqrt(double(D)));
  return qkv_backward(ctx, bc.qkv, ag.dq, ag.dk, ag.dv, grads);
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
