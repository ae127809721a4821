#include "model/attention_layer.h"

#include "ops/linear.h"
#include "ops/shape_ops.h"

#include <cmath>

namespace hsa {

Tensor attention_forward(const LayerContext& ctx, int64_t window, const Tensor& x, int64_t pos0, KvHistory* history,
                         AttentionCache* cache) {
  const ModelConfig& c = ctx.config;
  int64_t B = x.dim(0), n = x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  QkvCache qkv_cache;
  auto [q, k, v] = qkv_forward(ctx, x, c.num_key_value_heads, pos0, qkv_cache);

  Tensor keys = k, values = v;
  int64_t k_start = pos0;
  if (history && history->k.defined() && history->k.dim(1) > 0) {
    HSA_CHECK(history->start + history->k.dim(1) == pos0, "attention: key history ends at {} but the input starts at {}",
              history->start + history->k.dim(1), pos0);
    keys = ops::concat({history->k, k}, 1);
    values = ops::concat({history->v, v}, 1);
    k_start = history->start;
  }
  ops::SwaParams params{window, 1.0 / std::sqrt(double(D)), pos0, k_start};
  ops::SwaOut attn = ops::swa_forward(q, keys, values, params);
  Tensor attn_flat = attn.out.view({B, n, HQ * D});
  Tensor y = ops::linear_forward(attn_flat, ctx.param("attn.o_proj.weight"));

  if (history) {  // keep only what the next position can see
    int64_t total = keys.dim(1), keep = std::min(total, window - 1);
    history->k = ops::slice_copy(keys, 1, total - keep, total);
    history->v = ops::slice_copy(values, 1, total - keep, total);
    history->start = k_start + total - keep;
  }
  if (cache) *cache = AttentionCache{qkv_cache, q, k, v, attn_flat, attn, params};
  return y;
}

Tensor attention_backward(const LayerContext& ctx, const AttentionCache& cache, const Tensor& dy, TensorMap& grads) {
  const ModelConfig& c = ctx.config;
  int64_t B = cache.qkv.x.dim(0), n = cache.qkv.x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  auto og = ops::linear_backward(dy, cache.attn_flat, ctx.param("attn.o_proj.weight"));
  accumulate_grad(grads, ctx.name("attn.o_proj.weight"), og.dw);
  auto ag = ops::swa_backward(og.dx.view({B, n, HQ, D}), cache.q, cache.k, cache.v, cache.attn, cache.params);
  return qkv_backward(ctx, cache.qkv, ag.dq, ag.dk, ag.dv, grads);
}

}  // namespace hsa
