#include "model/attention_layer.h"

#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/shape_ops.h"

#include <cmath>

namespace hsa {

Tensor attention_forward(const LayerContext& ctx, int64_t window, const Tensor& x, int64_t pos0, KvHistory* history,
                         AttentionCache* cache) {
  const ModelConfig& c = ctx.config;
  int64_t B = x.dim(0), n = x.dim(1), HQ = c.num_attention_heads, H = c.num_key_value_heads, D = c.head_dim;
  auto norm = ops::rmsnorm_forward(x, ctx.param("attn_norm.weight"), c.rms_norm_eps);
  Tensor q_raw = ops::linear_forward(norm.y, ctx.param("attn.q_proj.weight")).view({B, n, HQ, D});
  Tensor k_raw = ops::linear_forward(norm.y, ctx.param("attn.k_proj.weight")).view({B, n, H, D});
  Tensor v = ops::linear_forward(norm.y, ctx.param("attn.v_proj.weight")).view({B, n, H, D});
  Tensor q = q_raw, k = k_raw, q_rstd, k_rstd;
  if (c.qk_norm) {
    auto qn = ops::rmsnorm_forward(q_raw, ctx.param("attn.q_norm.weight"), c.rms_norm_eps);
    auto kn = ops::rmsnorm_forward(k_raw, ctx.param("attn.k_norm.weight"), c.rms_norm_eps);
    q = qn.y, q_rstd = qn.rstd, k = kn.y, k_rstd = kn.rstd;
  }
  q = ops::rope_forward(q, pos0, c.rope_theta);
  k = ops::rope_forward(k, pos0, c.rope_theta);

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
  if (cache) *cache = AttentionCache{x, norm.y, norm.rstd, q_raw, k_raw, q_rstd, k_rstd, q, k, v, attn_flat, attn, params};
  return y;
}

Tensor attention_backward(const LayerContext& ctx, const AttentionCache& cache, const Tensor& dy, TensorMap& grads) {
  const ModelConfig& c = ctx.config;
  int64_t B = cache.x.dim(0), n = cache.x.dim(1), HQ = c.num_attention_heads, H = c.num_key_value_heads,
          D = c.head_dim;
  auto og = ops::linear_backward(dy, cache.attn_flat, ctx.param("attn.o_proj.weight"));
  accumulate_grad(grads, ctx.name("attn.o_proj.weight"), og.dw);
  auto ag = ops::swa_backward(og.dx.view({B, n, HQ, D}), cache.q, cache.k, cache.v, cache.attn, cache.params);
  Tensor dq = ops::rope_backward(ag.dq, cache.params.q_start, c.rope_theta);
  Tensor dk = ops::rope_backward(ag.dk, cache.params.q_start, c.rope_theta);
  if (c.qk_norm) {
    auto qg = ops::rmsnorm_backward(dq, cache.q_raw, ctx.param("attn.q_norm.weight"), cache.q_rstd);
    auto kg = ops::rmsnorm_backward(dk, cache.k_raw, ctx.param("attn.k_norm.weight"), cache.k_rstd);
    accumulate_grad(grads, ctx.name("attn.q_norm.weight"), qg.dweight);
    accumulate_grad(grads, ctx.name("attn.k_norm.weight"), kg.dweight);
    dq = qg.dx, dk = kg.dx;
  }
  auto qp = ops::linear_backward(dq.view({B, n, HQ * D}), cache.xn, ctx.param("attn.q_proj.weight"));
  auto kp = ops::linear_backward(dk.view({B, n, H * D}), cache.xn, ctx.param("attn.k_proj.weight"));
  auto vp = ops::linear_backward(ag.dv.contiguous().view({B, n, H * D}), cache.xn, ctx.param("attn.v_proj.weight"));
  accumulate_grad(grads, ctx.name("attn.q_proj.weight"), qp.dw);
  accumulate_grad(grads, ctx.name("attn.k_proj.weight"), kp.dw);
  accumulate_grad(grads, ctx.name("attn.v_proj.weight"), vp.dw);
  Tensor dxn = qp.dx;
  ops::add_(dxn, kp.dx);
  ops::add_(dxn, vp.dx);
  auto ng = ops::rmsnorm_backward(dxn, cache.x, ctx.param("attn_norm.weight"), cache.x_rstd);
  accumulate_grad(grads, ctx.name("attn_norm.weight"), ng.dweight);
  return ng.dx;
}

}  // namespace hsa
