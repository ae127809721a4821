// HSA chunk attention (docs/architecture.md §2.5 steps 4-5): each token attends to the chunks its retrieval step selected,
// with a separate softmax over the S keys of each chunk, and mixes the per-chunk results with the chunk weights.
//   q [B, L, HQ, D]; mem_k, mem_v [B, C, S, H, D]; indices i32 [B, L, H, K] (-1 = empty slot);
//   weights [B, L, H, K]; out [B, L, HQ, D]; lse [B, L, HQ, K].
// Query head h reads KV / retrieval head r = h / (HQ / H):
//   o[t, h] = sum_{i: c_i = I[t,r,i] >= 0} w[t,r,i] * softmax_j(scale * q[t,h] . mem_k[c_i, j, r]) mem_v[c_i, j, r]
// A token with no selected chunk gets zeros. The chunk indices come from the caller (the retrieval op): they must
// lie in [-1, C); causality is the caller's business and is not checked here. A chunk may appear in several slots
// of one token (each slot then counts on its own).
// Gradients flow into q, mem_k, mem_v and the weights (the retrieval is learned through them); not into indices.
// dtypes: q, mem_k, mem_v one floating dtype (f32, bf16 computed in f32, f64); weights any floating dtype.
#pragma once
#include "ops/hsa_routing.h"

#include <hsa/tensor.h>

namespace hsa::ops {

struct HsaOut {
  Tensor out;  // [B, L, HQ, D], dtype of q
  Tensor lse;  // [B, L, HQ, K], compute dtype: per (token, head, slot) log-sum-exp over the chunk's S scaled scores;
               // -inf for empty slots. Kept for the backward pass.
};
// routing: when given, receives the chunk routing this call built from `indices` (ops/hsa_routing.h; empty on the
// CPU and on the CUDA decode path), for the backwards of the same indices. Leave it out where no backward follows
// (inference): the routing's memory is then freed at once.
HsaOut hsa_attention_forward(const Tensor& q, const Tensor& mem_k, const Tensor& mem_v, const Tensor& indices,
                             const Tensor& weights, double scale, HsaRouting* routing = nullptr);

struct HsaGrads {
  Tensor dq;        // like q
  Tensor dmem_k;    // like mem_k (zero for chunks no token selected)
  Tensor dmem_v;    // like mem_v
  Tensor dweights;  // like weights (zero for empty slots)
};
// fwd: the result of hsa_attention_forward on the same inputs (only fwd.lse is read). routing: what that forward
// handed back for these very `indices` (the same tensor; the CUDA path then skips its sort, with bit-identical
// results), or empty to build one; the CPU ignores it.
HsaGrads hsa_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& mem_k, const Tensor& mem_v,
                                const Tensor& indices, const Tensor& weights, const HsaOut& fwd, double scale,
                                const HsaRouting& routing = {});

}  // namespace hsa::ops
