#include "model/hsa_layer.h"

#include "model/optional_norm.h"
#include "model/tiered_attention.h"

#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"

#include <cmath>
#include <optional>

namespace hsa {

ops::RetrievalParams retrieval_params_for(const ModelConfig& c, int64_t pos0) {
  ops::RetrievalParams p;
  p.chunk_size = c.chunk_size;
  p.topk = c.chunk_topk;
  p.window = c.hsa_window_mask ? c.hsa_sliding_window : 0;
  p.q_start = pos0;
  p.scale = 1.0 / std::sqrt(double(c.retrieval_dim / c.num_key_value_heads));
  p.weighting = c.chunk_weighting == "stick_breaking" ? ops::ChunkWeighting::stick_breaking
                                                       : ops::ChunkWeighting::softmax;
  return p;
}

Tensor hsa_forward(const LayerContext& ctx, const Tensor& x, int64_t pos0, const ChunkMemory& memory,
                   HsaCache* cache) {
  const ModelConfig& c = ctx.config;
  int64_t B = x.dim(0), n = x.dim(1), HQ = c.num_attention_heads, H = c.num_key_value_heads, D = c.head_dim;
  int64_t dm = c.hidden_size;
  if (memory.num_chunks() == 0) {  // nothing to retrieve yet (every position < S)
    if (cache) cache->empty = true;
    return Tensor::zeros({B, n, dm}, x.dtype(), x.device());
  }
  auto norm = ops::rmsnorm_forward(x, ctx.param("hsa_norm.weight"), c.rms_norm_eps);
  Tensor q_ret_raw = ops::linear_forward(norm.y, ctx.param("hsa.retrieval_proj.weight"))
                         .view({B, n, H, c.retrieval_dim / H});
  // With the landmarks' norm (chunk_memory.cpp) the retrieval norm keeps the scores bounded.
  const OptionalNorm rn = optional_rmsnorm(ctx, q_ret_raw, "hsa.retrieval_norm.weight", c.hsa_retrieval_norm);
  const Tensor& q_ret = rn.y;
  const Tensor& q_ret_rstd = rn.rstd;
  ops::RetrievalParams rp = retrieval_params_for(c, pos0);
  Tensor landmarks = memory.landmarks();
  ops::RetrievalOut ret = ops::retrieval_forward(q_ret, landmarks, rp);
  // Some pages beyond the device budget: start copying the selected ones now, under the query projection.
  std::optional<TieredAttention> tiered;
  if (!memory.fully_resident()) {
    HSA_CHECK(!cache,
              "hsa_forward: a cache (training, or an HSA trace) needs the whole chunk memory resident (no memory tiers)");
    tiered.emplace(memory, ret.indices);
  }
  Tensor q_raw = ops::linear_forward(norm.y, ctx.param("hsa.q_proj.weight")).view({B, n, HQ, D});
  const OptionalNorm qn = optional_rmsnorm(ctx, q_raw, "hsa.q_norm.weight", c.hsa_qk_norm);
  const Tensor& q = qn.y;
  const Tensor& q_rstd = qn.rstd;
  const double scale = 1.0 / std::sqrt(double(D));
  Tensor mem_k, mem_v;
  ops::HsaOut attn;
  ops::HsaRouting routing;  // kept for the backwards only when there is a cache
  if (tiered) {
    attn.out = tiered->forward(q, ret.weights, scale);
  } else {
    mem_k = memory.mem_k(), mem_v = memory.mem_v();
    attn = ops::hsa_attention_forward(q, mem_k, mem_v, ret.indices, ret.weights, scale, cache ? &routing : nullptr);
  }
  Tensor attn_flat = attn.out.view({B, n, HQ * D});
  Tensor y = ops::linear_forward(attn_flat, ctx.param("hsa.o_proj.weight"));
  if (cache)
    *cache = HsaCache{x, norm.y, norm.rstd, q_ret, q_raw, q_rstd, q, attn_flat, ret, rp, attn, mem_k, mem_v, landmarks,
                      false, q_ret_raw, q_ret_rstd, routing};
  return y;
}

Tensor hsa_backward(const LayerContext& ctx, const HsaCache& cache, const Tensor& dy, TensorMap& grads,
                    MemoryGrads& memory_grads) {
  if (cache.empty) return Tensor::zeros(dy.shape(), dy.dtype(), dy.device());
  const ModelConfig& c = ctx.config;
  int64_t B = cache.x.dim(0), n = cache.x.dim(1), HQ = c.num_attention_heads, D = c.head_dim;
  auto og = ops::linear_backward(dy, cache.attn_flat, ctx.param("hsa.o_proj.weight"));
  accumulate_grad(grads, ctx.name("hsa.o_proj.weight"), og.dw);
  auto ag = ops::hsa_attention_backward(og.dx.view({B, n, HQ, D}), cache.q, cache.mem_k, cache.mem_v,
                                        cache.retrieval.indices, cache.retrieval.weights, cache.attn,
                                        1.0 / std::sqrt(double(D)), cache.routing);
  auto rg = ops::retrieval_backward(ag.dweights, cache.q_ret, cache.landmarks, cache.retrieval,
                                    cache.retrieval_params, cache.routing);
  memory_grads.add(ag.dmem_k, ag.dmem_v, rg.dlandmarks);
  const Tensor dq =
      optional_rmsnorm_backward(ctx, ag.dq, cache.q_raw, cache.q_rstd, "hsa.q_norm.weight", c.hsa_qk_norm, grads);
  auto qp = ops::linear_backward(dq.view({B, n, HQ * D}), cache.xn, ctx.param("hsa.q_proj.weight"));
  const Tensor dq_ret = optional_rmsnorm_backward(ctx, rg.dqr.contiguous(), cache.q_ret_raw, cache.q_ret_rstd,
                                                  "hsa.retrieval_norm.weight", c.hsa_retrieval_norm, grads);
  auto rp = ops::linear_backward(dq_ret.contiguous().view({B, n, c.retrieval_dim}), cache.xn,
                                 ctx.param("hsa.retrieval_proj.weight"));
  accumulate_grad(grads, ctx.name("hsa.q_proj.weight"), qp.dw);
  accumulate_grad(grads, ctx.name("hsa.retrieval_proj.weight"), rp.dw);
  Tensor dxn = qp.dx;
  ops::add_(dxn, rp.dx);
  auto ng = ops::rmsnorm_backward(dxn, cache.x, ctx.param("hsa_norm.weight"), cache.x_rstd);
  accumulate_grad(grads, ctx.name("hsa_norm.weight"), ng.dweight);
  return ng.dx;
}

}  // namespace hsa
