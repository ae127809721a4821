// Full (non-causal) attention inside independent blocks: the chunk encoder's attention, where each block is one
// chunk's tokens plus its [CLS] row and nothing attends across chunks (docs/architecture.md, chunk encoder).
//   q, k, v, out, dout, dq, dk, dv [N, T, H, D]; lse [N, T, H].
// Row i of block n, head h: out[n, i, h] = sum_j softmax_j(scale * q[n, i, h] . k[n, j, h]) v[n, j, h], j over
// all T rows of block n. The block is axis 1 itself, so the op needs no block-size argument: callers view
// [B, C*T, ...] as [B*C, T, ...].
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

struct BlockAttentionOut {
  Tensor out;  // like q
  Tensor lse;  // [N, T, H], compute dtype (f32 for bf16 inputs): log-sum-exp of the scaled scores
};
BlockAttentionOut block_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

struct BlockAttentionGrads {
  Tensor dq, dk, dv;  // like q, k, v
};
// Recomputes the probabilities from fwd.lse; fwd.out is needed for rowsum(dout * out).
BlockAttentionGrads block_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                             const BlockAttentionOut& fwd, double scale);

}  // namespace hsa::ops
