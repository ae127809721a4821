// Causal sliding-window attention with grouped-query heads (ARCHITECTURE §1.2).
// q [B, Lq, HQ, D]; k, v [B, Lk, H, D]; query head h reads KV head h / (HQ / H).
// Query row i sits at position q_start + i, key row j at k_start + j; key j is visible to query i when
// k_pos <= q_pos and q_pos - k_pos < window. A query that sees no key outputs zeros.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

struct SwaParams {
  int64_t window;       // >= 1
  double scale;         // usually 1/sqrt(D)
  int64_t q_start = 0;  // absolute position of query row 0
  int64_t k_start = 0;  // absolute position of key row 0 (decoding: keys come from a cache)
};

struct SwaOut {
  Tensor out;  // [B, Lq, HQ, D]
  Tensor lse;  // [B, Lq, HQ] log-sum-exp of the scaled scores (-inf when no key is visible)
};
SwaOut swa_forward(const Tensor& q, const Tensor& k, const Tensor& v, const SwaParams& p);

struct SwaGrads {
  Tensor dq, dk, dv;
};
SwaGrads swa_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const SwaOut& fwd,
                      const SwaParams& p);

}  // namespace hsa::ops
