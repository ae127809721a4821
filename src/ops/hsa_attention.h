// HSA chunk attention (ARCHITECTURE §1.4 steps 4-5): every query head attends inside each chunk its KV head
// selected, softmax over that chunk's S keys alone, and the per-chunk results are mixed by the chunk weights.
//   q [B, L, HQ, D]; mem_k, mem_v [B, C, S, H, D]; indices i32 [B, L, H, K] (-1: empty slot); weights [B, L, H, K]
//   out[b, t, h] = sum_i weights[b, t, r, i] * softmax_j(scale q[b,t,h] . mem_k[b, c_i, j, r]) mem_v[b, c_i, j, r]
// with r = h / (HQ / H) and c_i = indices[b, t, r, i].
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

struct HsaOut {
  Tensor out;  // [B, L, HQ, D]
  Tensor lse;  // [B, L, HQ, K] log-sum-exp of each chunk's scaled scores; -inf in empty slots
};
HsaOut hsa_attention_forward(const Tensor& q, const Tensor& mem_k, const Tensor& mem_v, const Tensor& indices,
                             const Tensor& weights, double scale);

struct HsaGrads {
  Tensor dq, dmem_k, dmem_v, dweights;
};
HsaGrads hsa_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& mem_k, const Tensor& mem_v,
                                const Tensor& indices, const Tensor& weights, const HsaOut& fwd, double scale);

}  // namespace hsa::ops
