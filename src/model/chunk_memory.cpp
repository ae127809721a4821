#include "model/chunk_memory.h"

#include "ops/chunk_pool.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/shape_ops.h"

#include <algorithm>
#include <cmath>

namespace hsa {

Tensor ChunkMemory::mem_k() const { return k_.defined() ? k_.slice(1, 0, chunks_) : Tensor(); }
Tensor ChunkMemory::mem_v() const { return v_.defined() ? v_.slice(1, 0, chunks_) : Tensor(); }
Tensor ChunkMemory::landmarks() const { return lmk_.defined() ? lmk_.slice(1, 0, chunks_) : Tensor(); }

size_t ChunkMemory::bytes() const {
  return (k_.defined() ? k_.nbytes() + v_.nbytes() + lmk_.nbytes() : 0);
}

namespace {
// A buffer like `like` (axis 1 = chunks) with room for `needed` chunks holding the first `used` of `buffer`.
Tensor regrow(const Tensor& buffer, const Tensor& like, int64_t used, int64_t needed) {
  Shape shape = like.shape();
  shape[1] = std::max<int64_t>(needed, buffer.defined() ? 2 * buffer.dim(1) : needed);
  Tensor grown = Tensor::empty(shape, like.dtype(), like.device());
  if (used > 0) {
    Tensor dst = grown.slice(1, 0, used);
    dst.copy_from(buffer.slice(1, 0, used));
  }
  return grown;
}
}  // namespace

void ChunkMemory::append(const Tensor& k, const Tensor& v, const Tensor& lmk) {
  int64_t n = k.dim(1);
  if (n == 0) return;
  // Claim the tail [chunks_, chunks_ + n) of the shared buffers; another copy may have written there already.
  int64_t expected = chunks_;
  bool fits = k_.defined() && k_.dim(1) >= chunks_ + n;
  bool owned = fits && written_ && written_->compare_exchange_strong(expected, chunks_ + n);
  if (!owned) {
    k_ = regrow(k_, k, chunks_, chunks_ + n);
    v_ = regrow(v_, v, chunks_, chunks_ + n);
    lmk_ = regrow(lmk_, lmk, chunks_, chunks_ + n);
    written_ = std::make_shared<std::atomic<int64_t>>(chunks_ + n);
  }
  Tensor dk = k_.slice(1, chunks_, chunks_ + n), dv = v_.slice(1, chunks_, chunks_ + n),
         dl = lmk_.slice(1, chunks_, chunks_ + n);
  dk.copy_from(k);
  dv.copy_from(v);
  dl.copy_from(lmk);
  chunks_ += n;
}

void ChunkMemory::truncate(int64_t chunks) {
  HSA_CHECK(chunks >= 0 && chunks <= chunks_, "ChunkMemory::truncate: cannot keep {} of {} chunks", chunks, chunks_);
  chunks_ = chunks;
}

ChunkMemory ChunkMemory::adopt(Tensor mem_k, Tensor mem_v, Tensor landmarks) {
  ChunkMemory m;
  m.chunks_ = mem_k.dim(1);
  HSA_CHECK(mem_v.dim(1) == m.chunks_ && landmarks.dim(1) == m.chunks_,
            "ChunkMemory::adopt: keys hold {} chunks, values {}, landmarks {}", m.chunks_, mem_v.dim(1),
            landmarks.dim(1));
  m.k_ = std::move(mem_k), m.v_ = std::move(mem_v), m.lmk_ = std::move(landmarks);
  m.written_ = std::make_shared<std::atomic<int64_t>>(m.chunks_);
  return m;
}

void MemoryGrads::add(const Tensor& dk, const Tensor& dv, const Tensor& dl) {
  if (!dmem_k.defined()) {
    dmem_k = dk.clone();
    dmem_v = dv.clone();
    dlandmarks = dl.clone();
    return;
  }
  ops::add_(dmem_k, dk);
  ops::add_(dmem_v, dv);
  ops::add_(dlandmarks, dl);
}

namespace {

// ids selecting row 0 of a one-row table for each of n chunks: the learned [CLS] row is broadcast to every chunk
// by an embedding gather (one kernel whatever n), and the embedding backward sums the n row gradients back.
Tensor cls_ids(int64_t n, Device device) { return Tensor::zeros({n, 1}, DType::i32, device); }

// The memory's keys and values projected from x [B, n, dm] (k_proj, v_proj, then k_norm with hsa_qk_norm), each
// [B, n, H, D]; k_raw and k_rstd are what the backward needs.
struct KvProjection {
  Tensor k, v, k_raw, k_rstd;
};

KvProjection project_kv(const LayerContext& ctx, const Tensor& x) {
  const ModelConfig& c = ctx.config;
  const int64_t B = x.dim(0), n = x.dim(1), H = c.num_key_value_heads, D = c.head_dim;
  KvProjection kv;
  kv.k_raw = ops::linear_forward(x, ctx.param("k_proj.weight")).view({B, n, H, D});
  kv.v = ops::linear_forward(x, ctx.param("v_proj.weight")).view({B, n, H, D});
  kv.k = kv.k_raw;
  if (c.hsa_qk_norm) {
    auto kn = ops::rmsnorm_forward(kv.k_raw, ctx.param("k_norm.weight"), c.rms_norm_eps);
    kv.k = kn.y;
    kv.k_rstd = kn.rstd;
  }
  return kv;
}

// The backward of project_kv from dk, dv [B, n, H, D]: adds the parameter gradients, and the gradient into x to dx
// (the k part first, then the v part; dx starts as the k part when undefined).
void project_kv_backward(const LayerContext& ctx, const Tensor& x, const Tensor& k_raw, const Tensor& k_rstd,
                         Tensor dk, const Tensor& dv, TensorMap& param_grads, Tensor& dx) {
  const ModelConfig& c = ctx.config;
  const int64_t B = x.dim(0), n = x.dim(1), HD = c.num_key_value_heads * c.head_dim;
  if (c.hsa_qk_norm) {
    auto kn = ops::rmsnorm_backward(dk, k_raw, ctx.param("k_norm.weight"), k_rstd);
    accumulate_grad(param_grads, ctx.name("k_norm.weight"), kn.dweight);
    dk = kn.dx;
  }
  auto kg = ops::linear_backward(dk.view({B, n, HD}), x, ctx.param("k_proj.weight"));
  auto vg = ops::linear_backward(dv.view({B, n, HD}), x, ctx.param("v_proj.weight"));
  accumulate_grad(param_grads, ctx.name("k_proj.weight"), kg.dw);
  accumulate_grad(param_grads, ctx.name("v_proj.weight"), vg.dw);
  if (dx.defined()) {
    ops::add_(dx, kg.dx);
  } else {
    dx = kg.dx;
  }
  ops::add_(dx, vg.dx);
}

// The chunk-encoder path of memory_build_forward: normalised states wait until their chunk completes; every
// complete chunk then runs through the encoder with its [CLS] row appended. Keys and values are projected from the
// token outputs, the landmark from the normed [CLS] output.
void build_with_encoder(const LayerContext& ctx, const Tensor& h, const ops::RmsNormOut& norm, MemoryState& state,
                        MemoryBuildCache* cache) {
  const ModelConfig& c = ctx.config;
  const int64_t B = h.dim(0), dm = c.hidden_size, H = c.num_key_value_heads, D = c.head_dim, S = c.chunk_size;
  if (cache) {
    *cache = MemoryBuildCache{};
    cache->h = h, cache->hn = norm.y, cache->hn_rstd = norm.rstd;
  }
  Tensor all_hn = ops::concat({state.pending_hn, norm.y}, 1);
  const int64_t total = all_hn.dim(1), chunks = total / S, N = B * chunks;
  if (chunks > 0) {
    Tensor tokens_in = ops::slice_copy(all_hn, 1, 0, chunks * S).view({N, S, dm});
    Tensor cls_in = ops::embedding_forward(ctx.param("cls").view({1, dm}), cls_ids(N, h.device()));
    Tensor y = chunk_encoder_forward(ctx, ops::concat({tokens_in, cls_in}, 1), cache ? &cache->encoder : nullptr);
    Tensor tokens = ops::slice_copy(y, 1, 0, S).view({B, chunks * S, dm});
    Tensor cls_out = ops::slice_copy(y, 1, S, S + 1).view({B, chunks, dm});
    const KvProjection kv = project_kv(ctx, tokens);
    auto lmk_norm = ops::rmsnorm_forward(cls_out, ctx.param("lmk_norm.weight"), c.rms_norm_eps);
    Tensor lmk = ops::linear_forward(lmk_norm.y, ctx.param("landmark_proj.weight"))
                     .view({B, chunks, H, c.retrieval_dim / H});
    state.memory.append(kv.k.view({B, chunks, S, H, D}), kv.v.view({B, chunks, S, H, D}), lmk);
    if (cache) {
      cache->tokens = tokens, cache->k_raw = kv.k_raw, cache->k_rstd = kv.k_rstd;
      cache->cls_out = cls_out, cache->cls_rstd = lmk_norm.rstd, cache->pooled = lmk_norm.y;
      cache->num_chunks = chunks;
    }
  }
  state.pending_hn = ops::slice_copy(all_hn, 1, chunks * S, total);
}

// The backward of build_with_encoder.
Tensor backward_with_encoder(const LayerContext& ctx, const MemoryBuildCache& cache, const MemoryGrads& grads,
                             TensorMap& param_grads) {
  const ModelConfig& c = ctx.config;
  const int64_t B = cache.h.dim(0), L = cache.h.dim(1), dm = c.hidden_size, H = c.num_key_value_heads,
                D = c.head_dim, S = c.chunk_size, C = cache.num_chunks, N = B * C;
  auto lg = ops::linear_backward(grads.dlandmarks.contiguous().view({B, C, c.retrieval_dim}), cache.pooled,
                                 ctx.param("landmark_proj.weight"));
  accumulate_grad(param_grads, ctx.name("landmark_proj.weight"), lg.dw);
  auto ng = ops::rmsnorm_backward(lg.dx, cache.cls_out, ctx.param("lmk_norm.weight"), cache.cls_rstd);
  accumulate_grad(param_grads, ctx.name("lmk_norm.weight"), ng.dweight);
  Tensor dtokens;
  project_kv_backward(ctx, cache.tokens, cache.k_raw, cache.k_rstd, grads.dmem_k.contiguous().view({B, C * S, H, D}),
                      grads.dmem_v.contiguous().view({B, C * S, H, D}), param_grads, dtokens);
  Tensor dy = ops::concat({dtokens.view({N, S, dm}), ng.dx.view({N, 1, dm})}, 1);
  Tensor dx = chunk_encoder_backward(ctx, cache.encoder, dy, param_grads);
  Tensor dcls = ops::embedding_backward(ops::slice_copy(dx, 1, S, S + 1), cls_ids(N, dx.device()), 1);
  accumulate_grad(param_grads, ctx.name("cls"), dcls.view({dm}));
  // The tail tokens of an incomplete chunk feed no chunk yet.
  Tensor dhn = ops::pad_slice(ops::slice_copy(dx, 1, 0, S).view({B, C * S, dm}), {B, L, dm}, 1, 0);
  auto hg = ops::rmsnorm_backward(dhn, cache.h, ctx.param("norm.weight"), cache.hn_rstd);
  accumulate_grad(param_grads, ctx.name("norm.weight"), hg.dweight);
  return hg.dx;
}

}  // namespace

void memory_build_forward(const LayerContext& ctx, const Tensor& h, MemoryState& state, MemoryBuildCache* cache) {
  const ModelConfig& c = ctx.config;
  int64_t B = h.dim(0), H = c.num_key_value_heads, D = c.head_dim, S = c.chunk_size;
  int64_t dr_head = c.retrieval_dim / H;
  if (cache)
    HSA_CHECK(state.pending() == 0 && state.memory.num_chunks() == 0,
              "memory_build_forward: training needs a fresh memory state");
  auto norm = ops::rmsnorm_forward(h, ctx.param("norm.weight"), c.rms_norm_eps);
  if (c.chunk_encoder_layers > 0) return build_with_encoder(ctx, h, norm, state, cache);
  const KvProjection kv = project_kv(ctx, norm.y);
  if (cache) {
    *cache = MemoryBuildCache{};
    cache->h = h, cache->hn = norm.y, cache->hn_rstd = norm.rstd, cache->k_raw = kv.k_raw, cache->k_rstd = kv.k_rstd;
  }
  Tensor all_hn = ops::concat({state.pending_hn, norm.y}, 1);
  Tensor all_k = ops::concat({state.pending_k, kv.k}, 1);
  Tensor all_v = ops::concat({state.pending_v, kv.v}, 1);
  int64_t total = all_hn.dim(1), chunks = total / S;
  if (chunks > 0) {
    Tensor pooled = ops::chunk_mean_forward(all_hn, S);
    Tensor lmk = ops::linear_forward(pooled, ctx.param("landmark_proj.weight")).view({B, chunks, H, dr_head});
    state.memory.append(ops::slice_copy(all_k, 1, 0, chunks * S).view({B, chunks, S, H, D}),
                        ops::slice_copy(all_v, 1, 0, chunks * S).view({B, chunks, S, H, D}), lmk);
    if (cache) {
      cache->pooled = pooled;
      cache->num_chunks = chunks;
    }
  }
  state.pending_hn = ops::slice_copy(all_hn, 1, chunks * S, total);
  state.pending_k = ops::slice_copy(all_k, 1, chunks * S, total);
  state.pending_v = ops::slice_copy(all_v, 1, chunks * S, total);
}

Tensor memory_build_backward(const LayerContext& ctx, const MemoryBuildCache& cache, const MemoryGrads& grads,
                             TensorMap& param_grads) {
  const ModelConfig& c = ctx.config;
  int64_t B = cache.h.dim(0), L = cache.h.dim(1), H = c.num_key_value_heads, D = c.head_dim, S = c.chunk_size;
  int64_t C = cache.num_chunks;
  if (C == 0 || !grads.dmem_k.defined()) return Tensor::zeros(cache.h.shape(), cache.h.dtype(), cache.h.device());
  if (c.chunk_encoder_layers > 0) return backward_with_encoder(ctx, cache, grads, param_grads);
  // Landmarks: lmk = W_lmk · mean_j hn[cS + j].
  auto lmk_grads = ops::linear_backward(grads.dlandmarks.contiguous().view({B, C, c.retrieval_dim}), cache.pooled,
                                        ctx.param("landmark_proj.weight"));
  accumulate_grad(param_grads, ctx.name("landmark_proj.weight"), lmk_grads.dw);
  Tensor dhn = ops::chunk_mean_backward(lmk_grads.dx, L, S);
  // Keys and values: rows of the complete chunks; the tail tokens feed no chunk yet.
  Tensor dk = ops::pad_slice(grads.dmem_k.contiguous().view({B, C * S, H, D}), {B, L, H, D}, 1, 0);
  Tensor dv = ops::pad_slice(grads.dmem_v.contiguous().view({B, C * S, H, D}), {B, L, H, D}, 1, 0);
  project_kv_backward(ctx, cache.hn, cache.k_raw, cache.k_rstd, dk, dv, param_grads, dhn);
  auto ng = ops::rmsnorm_backward(dhn, cache.h, ctx.param("norm.weight"), cache.hn_rstd);
  accumulate_grad(param_grads, ctx.name("norm.weight"), ng.dweight);
  return ng.dx;
}

}  // namespace hsa
