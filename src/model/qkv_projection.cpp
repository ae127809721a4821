#include "model/qkv_projection.h"

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
  Tensor q = cache.q_raw, k = cache.k_raw;
  if (c.qk_norm) {
    auto qn = ops::rmsnorm_forward(cache.q_raw, ctx.param("attn.q_norm.weight"), c.rms_norm_eps);
    auto kn = ops::rmsnorm_forward(cache.k_raw, ctx.param("attn.k_norm.weight"), c.rms_norm_eps);
    q = qn.y, cache.q_rstd = qn.rstd, k = kn.y, cache.k_rstd = kn.rstd;
  }
  return Qkv{ops::rope_forward(q, pos0, c.rope_theta), ops::rope_forward(k, pos0, c.rope_theta), v};
}

Tensor qkv_backward(const LayerContext& ctx, const QkvCache& cache, const Tensor& dq_in, const Tensor& dk_in,
                    const Tensor& dv, TensorMap& grads) {
  const ModelConfig& c = ctx.config;
  Tensor dq = ops::rope_backward(dq_in, cache.pos0, c.rope_theta);
  Tensor dk = ops::rope_backward(dk_in, cache.pos0, c.rope_theta);
  if (c.qk_norm) {
    auto qg = ops::rmsnorm_backward(dq, cache.q_raw, ctx.param("attn.q_norm.weight"), cache.q_rstd);
    auto kg = ops::rmsnorm_backward(dk, cache.k_raw, ctx.param("attn.k_norm.weight"), cache.k_rstd);
    accumulate_grad(grads, ctx.name("attn.q_norm.weight"), qg.dweight);
    accumulate_grad(grads, ctx.name("attn.k_norm.weight"), kg.dweight);
    dq = qg.dx, dk = kg.dx;
  }
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
