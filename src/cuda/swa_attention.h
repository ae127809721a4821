// CUDA causal sliding-window attention with GQA, forward and backward (flash-attention style).
//   q, out, dout, dq [B, Lq, HQ, D]; k, v, dk, dv [B, Lk, H, D]; lse, delta [B, Lq, HQ] (f32); all contiguous,
//   on the device. T = float or hsa::bf16 (bf16 storage, f32 accumulation); D in {32, 64, 128}.
// Semantics are those of ops/swa_attention.h (SwaDims in kernel/shapes.h): query row i (position q_start + i) of
// head h sees key row j (position k_start + j) of KV head h / (HQ / H) iff 0 <= (q_start + i) - (k_start + j) <
// window; a row that sees no key gets out = 0 and lse = -inf. Kernels run asynchronously on the default stream.
#pragma once
#include "kernel/shapes.h"

namespace hsa::cuda {

// Tiles of queries against only the key tiles inside their window, online softmax.
template <class T>
void swa_forward(const T* q, const T* k, const T* v, T* out, float* lse, const SwaDims& d, double scale);

// Recomputes P = exp(scale q k^T - lse); delta (workspace, [B, Lq, HQ]) = rowsum(dout * out);
// dS = P (dout v^T - delta); dq = scale dS k (one kernel over query tiles); dk = scale dS^T q, dv = P^T dout
// (one kernel over key tiles, summing the G query heads of each KV head: deterministic, no atomics).
// Every output element is written (zeros for keys no query sees).
template <class T>
void swa_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, float* delta,
                  T* dq, T* dk, T* dv, const SwaDims& d, double scale);

}  // namespace hsa::cuda
