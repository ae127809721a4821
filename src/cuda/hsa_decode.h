// The decode path of the CUDA HSA chunk attention: a few query tokens (generation, B*L <= kDecodeTokens) against
// the chunk memory. The general kernels group entries by chunk (a radix sort, a per-entry scratch and a reduction)
// to read each chunk's K/V once for many tokens; with one token there is nothing to share, so here one block per
// (b, t, KV head, slot) stages its chunk's K/V in shared memory once for the G query heads and writes the slot's
// weighted output, and a second kernel sums the slots in order: no sort, no per-entry routing. Same semantics as hsa_attention_forward
// (cuda/hsa_attention.h), which dispatches here.
#pragma once
#include "cuda/hsa_attention.h"

namespace hsa::cuda {

constexpr int64_t kDecodeTokens = 16;

// Whether hsa_attention_forward takes the decode path for these dims.
inline bool use_decode_path(const HsaDims& d) { return d.batch * d.len <= kDecodeTokens; }

// Writes out and lse (every element). Bad indices as in hsa_attention_forward: skipped, the lowest reported through
// the deferred input-error record; nothing waits for the device.
void hsa_decode_forward(DType dtype, const void* q, const void* mem_k, const void* mem_v, const int32_t* indices,
                        const float* weights, double scale, const HsaDims& d, void* out, float* lse);

}  // namespace hsa::cuda
