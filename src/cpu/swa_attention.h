// CPU causal sliding-window attention with GQA, forward and backward.
//   q, out, dout, dq [B, Lq, HQ, D]; k, v, dk, dv [B, Lk, H, D]; lse [B, Lq, HQ]; all contiguous.
// Query row i (absolute position q_start + i) of head h sees key row j (position k_start + j) of KV head
// h / (HQ / H) iff 0 <= (q_start + i) - (k_start + j) < window.
#pragma once
#include "kernel/shapes.h"

#include <cstdint>

namespace hsa::cpu {

// out = softmax(scale * q k^T + mask) v; lse = log sum exp of the visible scaled scores (-inf, and out = 0, for a
// row that sees no key).
template <class T>
void swa_forward(const T* q, const T* k, const T* v, T* out, T* lse, const SwaDims& d, double scale);

// P = exp(scale * q k^T - lse); dv = P^T dout; dS = P * (dout v^T - rowsum(dout * out));
// dq = scale * dS k; dk = scale * dS^T q. Every output is fully written (keys no query sees get zeros).
template <class T>
void swa_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse, T* dq, T* dk, T* dv,
                  const SwaDims& d, double scale);

}  // namespace hsa::cpu
