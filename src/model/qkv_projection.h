// The input side of an attention branch, shared by the model layers' window attention and the chunk encoder's
// block attention: pre-norm RMSNorm, q/k/v projections, per-head qk-norm (config qk_norm) and RoPE from a start
// position. Parameters: attn_norm.weight, attn.{q,k,v}_proj.weight, attn.{q,k}_norm.weight (docs/architecture.md).
#pragma once
#include "model/layer_context.h"

namespace hsa {

// What qkv_backward needs from the forward.
struct QkvCache {
  Tensor x, xn, x_rstd, q_raw, k_raw, q_rstd, k_rstd;
  int64_t pos0 = 0;
};

// q [B, n, num_attention_heads, D] and k [B, n, kv_heads, D] with RoPE applied; v [B, n, kv_heads, D].
struct Qkv {
  Tensor q, k, v;
};

// x [B, n, dm] holds positions pos0 .. pos0+n-1.
Qkv qkv_forward(const LayerContext& ctx, const Tensor& x, int64_t kv_heads, int64_t pos0, QkvCache& cache);

// Gradient into x from the gradients of the returned q, k, v; adds the parameter gradients to `grads`.
Tensor qkv_backward(const LayerContext& ctx, const QkvCache& cache, const Tensor& dq, const Tensor& dk,
                    const Tensor& dv, TensorMap& grads);

}  // namespace hsa
