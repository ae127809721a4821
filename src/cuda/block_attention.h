// CUDA full attention inside independent blocks (the chunk encoder), forward and backward.
//   q, k, v, out, dout, dq, dk, dv [N, T, H, D]; lse [N, T, H] (f32); all contiguous, on the device.
//   T = float or hsa::bf16 (bf16 storage, f32 accumulation).
// Semantics are those of cpu/block_attention.h (BlockAttentionDims in kernel/shapes.h). One thread block per
// (block n, head h) keeps that block's keys and values in shared memory (blocks are short: a chunk plus its [CLS]
// row), so T * D is bounded; see block_attention_supported. Kernels run asynchronously on the default stream.
#pragma once
#include "kernel/shapes.h"

#include <string>

namespace hsa::cuda {

// Whether the kernels handle these dims (shared memory holds the block's rows).
bool block_attention_supported(const BlockAttentionDims& d);
std::string block_attention_limits();  // the bound, in words, for error messages

template <class T>
void block_attention_forward(const T* q, const T* k, const T* v, T* out, float* lse, const BlockAttentionDims& d,
                             double scale);

// dq, dk, dv are fully written.
template <class T>
void block_attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, T* dq,
                              T* dk, T* dv, const BlockAttentionDims& d, double scale);

}  // namespace hsa::cuda
