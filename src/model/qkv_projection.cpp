#include "model/qkv_projection.h"

#include "model/optional_norm.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"

namespace hsa {

namespace {

// [B, n, heads, D] -> [B, n, heads * D], the layout of the projections' outputs.
Tensor merge_heads(const Tensor& t) { return t.contiguous().view({t.dim(0), t.dim(1), t.dim(2) * t.dim(3)}); }

}  // namespace

Qkv qkv_forward(const LayerContext& ctx, const Tensor& x, int64_t kv_heads, int64_t pos0, QkvCache& cache) {
  const ModelConfig& c = ctx.config;
  const int64_t B = x.dim(0), n = x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  auto norm = ops::rmsnorm_forward(x, ctx.param("attn_norm.weight"), c.rms_norm_eps);
  cache = QkvCache{x, norm.y, norm.rstd, {}, {}, {}, {}, pos0};
  cache.q_raw = ops::linear_forward(norm.y, ctx.param("attn.q_proj.weight")).view({B, n, HQ, D});
  cache.k_raw = ops::linear_forward(norm.y, ctx.param("attn.k_proj.weight")).view({B, n, kv_heads, D});
  Tensor v = ops::linear_forward(norm.y, ctx.param("attn.v_proj.weight")).view({B, n, kv_heads, D});
  OptionalNorm qn = optional_rmsnorm(ctx, cache.q_raw, "attn.q_norm.weight", c.qk_norm);
  OptionalNorm kn = optional_rmsnorm(ctx, cache.k_raw, "attn.k_norm.weight", c.qk_norm);
  Tensor q = qn.y, k = kn.y;
  cache.q_rstd = qn.rstd, cache.k_rstd = kn.rstd;
  return Qkv{ops::rope_forward(q, pos0, c.rope_theta), ops::rope_forward(k, pos0, c.rope_theta), v};
}

Tensor qkv_backward(const LayerContext& ctx, const QkvCache& cache, const Tensor& dq_in, const Tensor& dk_in,
                    const Tensor& dv, TensorMap& grads) {
  const ModelConfig& c = ctx.config;
  const Tensor dq = optional_rmsnorm_backward(ctx, ops::rope_backward(dq_in, cache.pos0, c.rope_theta), cache.q_raw,
                                              cache.q_rstd, "attn.q_norm.weight", c.qk_norm, grads);
  const Tensor dk = optional_rmsnorm_backward(ctx, ops::rope_backward(dk_in, cache.pos0, c.rope_theta), cache.k_raw,
                                              cache.k_rstd, "attn.k_norm.weight", c.qk_norm, grads);
  auto qp = ops::linear_backward(merge_heads(dq), cache.xn, ctx.param("attn.q_proj.weight"));
  auto kp = ops::linear_backward(merge_heads(dk), cache.xn, ctx.param("attn.k_proj.weight"));
  auto vp = ops::linear_backward(merge_heads(dv), cache.xn, ctx.param("attn.v_proj.weight"));
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
