// CPU full (non-causal) attention inside independent blocks, forward and backward: the chunk encoder's attention.
//   q, k, v, out, dout, dq, dk, dv [N, T, H, D]; lse [N, T, H]; all contiguous.
// Row i of block n, head h, attends to every row j of the same block and head:
//   out[n, i, h] = sum_j softmax_j(scale * q[n, i, h] . k[n, j, h]) v[n, j, h].
#pragma once
#include "kernel/shapes.h"

#include <cstdint>

namespace hsa::cpu {

// lse = log sum_j exp(scale * q . k_j), kept so the backward can recompute the probabilities.
template <class T>
void block_attention_forward(const T* q, const T* k, const T* v, T* out, T* lse, const BlockAttentionDims& d,
                             double scale);

// P = exp(scale q k^T - lse); dv = P^T dout; dS = P * (dout v^T - rowsum(dout * out)); dq = scale dS k;
// dk = scale dS^T q.
template <class T>
void block_attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse, T* dq,
                              T* dk, T* dv, const BlockAttentionDims& d, double scale);

}  // namespace hsa::cpu
