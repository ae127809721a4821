#include "model/chunk_memory.h"

#include "model/optional_norm.h"
#include "ops/chunk_pool.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/shape_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hsa {

Tensor ChunkMemory::landmarks() const { return lmk_.defined() ? lmk_.slice(1, 0, chunks_) : Tensor(); }

namespace {
std::vector<int32_t> all_chunks(int64_t n) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t c = 0; c < n; ++c) ids[static_cast<size_t>(c)] = static_cast<int32_t>(c);
  return ids;
}
}  // namespace

Tensor ChunkMemory::mem_k() const {
  if (!k_.defined()) return Tensor();
  if (fully_resident()) return k_.slice(1, 0, chunks_);
  FetchedPages f = fetch(all_chunks(chunks_));
  f.wait();
  return f.k;
}

Tensor ChunkMemory::mem_v() const {
  if (!v_.defined()) return Tensor();
  if (fully_resident()) return v_.slice(1, 0, chunks_);
  FetchedPages f = fetch(all_chunks(chunks_));
  f.wait();
  return f.v;
}

size_t ChunkMemory::bytes() const {
  size_t resident = k_.defined() ? k_.nbytes() + v_.nbytes() + lmk_.nbytes() : 0;
  return resident + (spill_ ? spill_->bytes() : 0);
}

void ChunkMemory::set_tiers(const MemoryTiers& tiers) {
  HSA_CHECK(chunks_ == 0 && !k_.defined(), "ChunkMemory::set_tiers: the memory already holds {} chunks", chunks_);
  HSA_CHECK(tiers.staging_pages >= 1 && tiers.cache_pages >= 0,
            "ChunkMemory::set_tiers: staging pages must be >= 1 (got {}) and cache pages >= 0 (got {})",
            tiers.staging_pages, tiers.cache_pages);
  tiers_ = tiers;
}

TierUsage ChunkMemory::usage() const {
  TierUsage u;
  u.device_pages = std::min(chunks_, resident_cap_);
  u.device_bytes = k_.defined() ? k_.nbytes() + v_.nbytes() : 0;
  u.landmark_bytes = lmk_.defined() ? lmk_.nbytes() : 0;
  if (spill_ && chunks_ > resident_cap_) {
    const int64_t spilled = chunks_ - resident_cap_;
    u.host_pages = std::min(spilled, spill_->host_pages());
    u.disk_pages = spilled - u.host_pages;
    u.host_bytes = static_cast<size_t>(u.host_pages) * spill_->page_bytes();
    u.disk_bytes = static_cast<size_t>(u.disk_pages) * spill_->page_bytes();
    u.cache_bytes = spill_->cache_bytes();
    u.stats = spill_->stats();
  }
  return u;
}

FetchedPages ChunkMemory::fetch(std::vector<int32_t> chunks) const {
  HSA_CHECK(k_.defined() && k_.dim(0) == 1, "ChunkMemory::fetch: needs a memory of batch 1 with chunks, got {}",
            k_.defined() ? shape_str(k_.shape()) : "none");
  FetchedPages f;
  Shape shape = k_.shape();
  shape[1] = static_cast<int64_t>(chunks.size());
  f.k = Tensor::empty(shape, k_.dtype(), k_.device());
  f.v = Tensor::empty(shape, v_.dtype(), v_.device());
  // Bytes of one chunk's keys (from the shape: a zero budget leaves the buffers empty).
  const size_t half = static_cast<size_t>(k_.dim(2) * k_.dim(3) * k_.dim(4)) * dtype_size(k_.dtype());
  const Device device = k_.device();
  side_copies_begin(device);
  char* kd = static_cast<char*>(f.k.raw_data());
  char* vd = static_cast<char*>(f.v.raw_data());
  const char* ks = static_cast<const char*>(k_.raw_data());
  const char* vs = static_cast<const char*>(v_.raw_data());
  // Resident pages join the spilled ones' gather: one kernel for the whole fetch on cuda.
  PageGather gather;
  gather.bytes = half;
  std::vector<SpilledPages::Request> spilled;
  for (size_t u = 0; u < chunks.size(); ++u) {
    const int64_t c = chunks[u];
    HSA_CHECK(c >= 0 && c < chunks_, "ChunkMemory::fetch: chunk {} of {}", c, chunks_);
    if (c < resident_cap_) {
      gather.add(kd + u * half, ks + c * half);
      gather.add(vd + u * half, vs + c * half);
    } else {
      spilled.push_back({c - resident_cap_, kd + u * half, vd + u * half});
    }
  }
  if (spilled.empty()) {
    side_gather(device, gather);
  } else {
    spill_->fetch(spilled, gather);
  }
  f.copied = side_copies_end(device);
  f.chunks = std::move(chunks);
  return f;
}

namespace {
// A buffer like `like` (axis 1 = chunks) with room for `needed` chunks (at most `cap`) holding the first `used`
// of `buffer`.
Tensor regrow(const Tensor& buffer, const Tensor& like, int64_t used, int64_t needed, int64_t cap) {
  Shape shape = like.shape();
  shape[1] = std::min(std::max<int64_t>(needed, buffer.defined() ? 2 * buffer.dim(1) : needed), cap);
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
  if (tiers_.enabled() && !k_.defined()) {
    HSA_CHECK(k.dim(0) == 1, "ChunkMemory: memory tiers need batch 1, got keys of shape {}", shape_str(k.shape()));
    resident_cap_ = pages_in(tiers_.device_budget, 2 * k.nbytes() / static_cast<size_t>(n));
  }
  const int64_t none = std::numeric_limits<int64_t>::max();
  const int64_t res_used = std::min(chunks_, resident_cap_), res_needed = std::min(chunks_ + n, resident_cap_);
  // Claim the tail [chunks_, chunks_ + n) of the shared buffers and pages; another copy may have written there.
  int64_t expected = chunks_;
  const bool owned = written_ && written_->compare_exchange_strong(expected, chunks_ + n);
  if (res_needed > 0 && (!owned || !k_.defined() || k_.dim(1) < res_needed)) {
    k_ = regrow(k_, k, res_used, res_needed, resident_cap_);
    v_ = regrow(v_, v, res_used, res_needed, resident_cap_);
  } else if (!k_.defined()) {  // a zero budget: an empty buffer still records the shape, dtype and device
    Shape shape = k.shape();
    shape[1] = 0;
    k_ = Tensor::empty(shape, k.dtype(), k.device());
    v_ = Tensor::empty(shape, v.dtype(), v.device());
  }
  if (!owned || !lmk_.defined() || lmk_.dim(1) < chunks_ + n) lmk_ = regrow(lmk_, lmk, chunks_, chunks_ + n, none);
  if (!owned) {
    if (spill_) {  // another copy may append to the shared pages: keep copies of ours
      auto forked = std::make_shared<SpilledPages>(tiers_, Shape{k.dim(2), k.dim(3), k.dim(4)}, k.dtype(), k.device());
      for (int64_t i = 0; i < chunks_ - resident_cap_; ++i) forked->append_copy(*spill_, i);
      spill_ = std::move(forked);
    }
    written_ = std::make_shared<std::atomic<int64_t>>(chunks_ + n);
  }
  const int64_t r = res_needed - res_used;  // chunks whose pages stay resident
  if (r > 0) {
    Tensor dk = k_.slice(1, chunks_, chunks_ + r), dv = v_.slice(1, chunks_, chunks_ + r);
    dk.copy_from(k.slice(1, 0, r));
    dv.copy_from(v.slice(1, 0, r));
  }
  for (int64_t j = r; j < n; ++j) {
    if (!spill_)
      spill_ = std::make_shared<SpilledPages>(tiers_, Shape{k.dim(2), k.dim(3), k.dim(4)}, k.dtype(), k.device());
    HSA_CHECK(spill_->size() == chunks_ + j - resident_cap_, "ChunkMemory: spilled pages hold {}, expected {}",
              spill_->size(), chunks_ + j - resident_cap_);
    spill_->append(k.select(0, 0).select(0, j), v.select(0, 0).select(0, j));
  }
  Tensor dl = lmk_.slice(1, chunks_, chunks_ + n);
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
  OptionalNorm kn = optional_rmsnorm(ctx, kv.k_raw, "k_norm.weight", c.hsa_qk_norm);
  kv.k = kn.y;
  kv.k_rstd = kn.rstd;
  return kv;
}

// The backward of project_kv from dk, dv [B, n, H, D]: adds the parameter gradients, and the gradient into x to dx
// (the k part first, then the v part; dx starts as the k part when undefined).
void project_kv_backward(const LayerContext& ctx, const Tensor& x, const Tensor& k_raw, const Tensor& k_rstd,
                         Tensor dk, const Tensor& dv, TensorMap& param_grads, Tensor& dx) {
  const ModelConfig& c = ctx.config;
  const int64_t B = x.dim(0), n = x.dim(1), HD = c.num_key_value_heads * c.head_dim;
  dk = optional_rmsnorm_backward(ctx, dk, k_raw, k_rstd, "k_norm.weight", c.hsa_qk_norm, param_grads);
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

// The landmarks [B, C, H, dr/H] of C chunks from their pooled states [B, C, dm]: landmark_proj, then with
// hsa_retrieval_norm an RMSNorm per retrieval head (landmark_norm), which with the query's norm (hsa_layer.cpp)
// bounds the retrieval scores. raw and rstd are what the backward needs.
struct LandmarkProjection {
  Tensor lmk, raw, rstd;
};

LandmarkProjection project_landmarks(const LayerContext& ctx, const Tensor& pooled) {
  const ModelConfig& c = ctx.config;
  const int64_t B = pooled.dim(0), C = pooled.dim(1), H = c.num_key_value_heads;
  LandmarkProjection lp;
  lp.raw = ops::linear_forward(pooled, ctx.param("landmark_proj.weight")).view({B, C, H, c.retrieval_dim / H});
  OptionalNorm ln = optional_rmsnorm(ctx, lp.raw, "landmark_norm.weight", c.hsa_retrieval_norm);
  lp.lmk = ln.y;
  lp.rstd = ln.rstd;
  return lp;
}

// The backward of project_landmarks: the gradient into the pooled states [B, C, dm] from that of the landmarks.
Tensor project_landmarks_backward(const LayerContext& ctx, const MemoryBuildCache& cache, const Tensor& dlandmarks,
                                  TensorMap& param_grads) {
  const ModelConfig& c = ctx.config;
  const int64_t B = cache.pooled.dim(0), C = cache.pooled.dim(1);
  const Tensor dlmk = optional_rmsnorm_backward(ctx, dlandmarks.contiguous(), cache.lmk_raw, cache.lmk_rstd,
                                                "landmark_norm.weight", c.hsa_retrieval_norm, param_grads);
  auto lg = ops::linear_backward(dlmk.contiguous().view({B, C, c.retrieval_dim}), cache.pooled,
                                 ctx.param("landmark_proj.weight"));
  accumulate_grad(param_grads, ctx.name("landmark_proj.weight"), lg.dw);
  return lg.dx;
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
    // The landmark's input: the [CLS] output, or with "mean" the mean of the chunk's token outputs.
    const Tensor cls_out = c.chunk_encoder_landmark == "mean" ? ops::chunk_mean_forward(tokens, S)
                                                              : ops::slice_copy(y, 1, S, S + 1).view({B, chunks, dm});
    const KvProjection kv = project_kv(ctx, tokens);
    auto lmk_norm = ops::rmsnorm_forward(cls_out, ctx.param("lmk_norm.weight"), c.rms_norm_eps);
    const LandmarkProjection lp = project_landmarks(ctx, lmk_norm.y);
    state.memory.append(kv.k.view({B, chunks, S, H, D}), kv.v.view({B, chunks, S, H, D}), lp.lmk);
    if (cache) {
      cache->tokens = tokens, cache->k_raw = kv.k_raw, cache->k_rstd = kv.k_rstd;
      cache->cls_out = cls_out, cache->cls_rstd = lmk_norm.rstd, cache->pooled = lmk_norm.y;
      cache->lmk_raw = lp.raw, cache->lmk_rstd = lp.rstd;
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
  Tensor dpooled = project_landmarks_backward(ctx, cache, grads.dlandmarks, param_grads);
  auto ng = ops::rmsnorm_backward(dpooled, cache.cls_out, ctx.param("lmk_norm.weight"), cache.cls_rstd);
  accumulate_grad(param_grads, ctx.name("lmk_norm.weight"), ng.dweight);
  // With "mean" the landmark's gradient is spread over the chunk's token outputs and none reaches [CLS]'s output.
  const bool mean = c.chunk_encoder_landmark == "mean";
  Tensor dtokens = mean ? ops::chunk_mean_backward(ng.dx, C * S, S) : Tensor();
  Tensor dcls_out = mean ? Tensor::zeros(ng.dx.shape(), ng.dx.dtype(), ng.dx.device()) : ng.dx;
  project_kv_backward(ctx, cache.tokens, cache.k_raw, cache.k_rstd, grads.dmem_k.contiguous().view({B, C * S, H, D}),
                      grads.dmem_v.contiguous().view({B, C * S, H, D}), param_grads, dtokens);
  Tensor dy = ops::concat({dtokens.view({N, S, dm}), dcls_out.view({N, 1, dm})}, 1);
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
    const LandmarkProjection lp = project_landmarks(ctx, pooled);
    state.memory.append(ops::slice_copy(all_k, 1, 0, chunks * S).view({B, chunks, S, H, D}),
                        ops::slice_copy(all_v, 1, 0, chunks * S).view({B, chunks, S, H, D}), lp.lmk);
    if (cache) {
      cache->pooled = pooled;
      cache->lmk_raw = lp.raw, cache->lmk_rstd = lp.rstd;
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
  // Landmarks: lmk = W_lmk · mean_j hn[cS + j] (then landmark_norm).
  Tensor dhn = ops::chunk_mean_backward(project_landmarks_backward(ctx, cache, grads.dlandmarks, param_grads), L, S);
  // Keys and values: rows of the complete chunks; the tail tokens feed no chunk yet.
  Tensor dk = ops::pad_slice(grads.dmem_k.contiguous().view({B, C * S, H, D}), {B, L, H, D}, 1, 0);
  Tensor dv = ops::pad_slice(grads.dmem_v.contiguous().view({B, C * S, H, D}), {B, L, H, D}, 1, 0);
  project_kv_backward(ctx, cache.hn, cache.k_raw, cache.k_rstd, dk, dv, param_grads, dhn);
  auto ng = ops::rmsnorm_backward(dhn, cache.h, ctx.param("norm.weight"), cache.hn_rstd);
  accumulate_grad(param_grads, ctx.name("norm.weight"), ng.dweight);
  return ng.dx;
}

}  // namespace hsa
