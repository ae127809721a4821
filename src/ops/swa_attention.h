// Causal sliding-window attention with grouped-query heads (docs/architecture.md §2.3).
//   q, out, dout, dq [B, Lq, HQ, D]; k, v, dk, dv [B, Lk, H, D]; lse [B, Lq, HQ].
// Query row i has absolute position q_start + i, key row j has k_start + j (decode: the keys are a cache of
// recent positions). Query head h reads KV head h / (HQ / H). Query t sees key s iff s <= t and t - s < window;
// out[t] = sum_s softmax_s(scale * q[t].k[s]) v[s]. A query that sees no key outputs zeros (lse = -inf).
#pragma once
#include <hsa/tensor.h>

#include <cstdint>

namespace hsa::ops {

struct SwaParams {
  int64_t window;       // keys s with q_pos - window < s <= q_pos are visible; >= 1
  double scale;         // usually 1/sqrt(D)
  int64_t q_start = 0;  // absolute position of query row 0
  int64_t k_start = 0;  // absolute position of key row 0
};

struct SwaOut {
  Tensor out;  // [B, Lq, HQ, D], dtype of q
  Tensor lse;  // [B, Lq, HQ], compute dtype (f32 for bf16 inputs): log-sum-exp of the scaled scores
};
SwaOut swa_forward(const Tensor& q, const Tensor& k, const Tensor& v, const SwaParams& p);

struct SwaGrads {
  Tensor dq;  // like q
  Tensor dk;  // like k
  Tensor dv;  // like v
};
// Recomputes the probabilities from fwd.lse (flash-attention style); fwd.out is needed for rowsum(dout * out).
SwaGrads swa_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const SwaOut& fwd,
                      const SwaParams& p);

}  // namespace hsa::ops
