// The sliding-window attention branch of a block (docs/architecture.md §2.3): RMSNorm, q/k/v projections, per-head
// qk-norm, RoPE, causal window attention with GQA, output projection. Returns the branch, not x + branch.
#pragma once
#include "model/layer_context.h"
#include "model/qkv_projection.h"
#include "ops/swa_attention.h"

namespace hsa {

// Keys and values of the most recent positions (at most window - 1), for incremental decoding.
struct KvHistory {
  Tensor k, v;        // [B, m, H, D], RoPE already applied to k
  int64_t start = 0;  // absolute position of row 0
  size_t bytes() const { return k.defined() ? k.nbytes() + v.nbytes() : 0; }
};

struct AttentionCache {
  QkvCache qkv;
  Tensor q, k, v, attn_flat;
  ops::SwaOut attn;
  ops::SwaParams params;
};

// x [B, n, dm] holds positions pos0 .. pos0+n-1. With `history`, attends to the stored keys too and updates it.
Tensor attention_forward(const LayerContext& ctx, int64_t window, const Tensor& x, int64_t pos0, KvHistory* history,
                         AttentionCache* cache);
Tensor attention_backward(const LayerContext& ctx, const AttentionCache& cache, const Tensor& dy, TensorMap& grads);

}  // namespace hsa
