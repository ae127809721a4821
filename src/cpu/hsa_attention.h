// CPU HSA chunk-attention kernels (docs/architecture.md §2.5 steps 4-5): every token attends, per selected chunk, over that
// chunk's S keys with its own softmax, and mixes the per-chunk results with the retrieval weights.
//   q, out, dout, dq [B, L, HQ, D]; mem_k, mem_v, dmem_k, dmem_v [B, C, S, H, D];
//   indices i32 [B, L, H, K] (-1 = empty slot; values in [-1, C), checked by the op); weights, dweights [B, L, H, K];
//   lse [B, L, HQ, K] (log-sum-exp of the scaled scores over the chunk's S keys; -inf for empty slots).
// Query head h reads KV / retrieval head r = h / G, G = HQ / H.
//   o[t, h] = sum_i w[t, r, i] * softmax_j(scale * q[t, h] . k[I[t, r, i], j, r]) v[I[t, r, i], j, r]
//
// The work unit is an *entry*, one (token, retrieval head, slot) triple. Entries are grouped by the chunk they
// selected (chunk-major, like tokens grouped by expert in MoE): for one chunk c the G query rows of every entry
// that chose it form a dense block Q [n*G, D], and K_c, V_c [S, D] serve all of them at once. Scores and outputs
// are then small GEMMs through cpu::gemm instead of n*G matrix-vector products that would each stream the chunk
// again. Softmax is per row (one query head, one chunk), between the GEMMs.
// - Forward: work item = (b, r, block of tokens), entries grouped by chunk inside the block. The item owns its
//   tokens' output rows and adds w_i * o_i into them directly; no per-entry buffer (see the .cpp for why).
// - Backward: work item = (b, r, chunk), so dmem_k / dmem_v of a chunk have exactly one writer. dq gathers
//   contributions from K chunks per token: per-entry [G, D] results, summed per token in slot order afterwards.
// Both orders are fixed by the shapes, so results do not depend on the thread count.
#pragma once
#include "kernel/shapes.h"

#include <cstdint>

namespace hsa::cpu {

// Writes out and lse (every element).
template <class T>
void hsa_attention_forward(const T* q, const T* mem_k, const T* mem_v, const int32_t* indices, const T* weights,
                           double scale, const HsaDims& d, T* out, T* lse);

// Recomputes the probabilities from lse (no per-slot outputs are kept by the forward) and overwrites dq, dmem_k,
// dmem_v and dweights (zero for empty slots and for chunks no token selected).
//   dw[t, r, i] = sum_{h in group r} <dout[t, h], o_i[t, h]>, o_i the per-chunk output before weighting.
template <class T>
void hsa_attention_backward(const T* dout, const T* q, const T* mem_k, const T* mem_v, const int32_t* indices,
                            const T* weights, const T* lse, double scale, const HsaDims& d, T* dq, T* dmem_k,
                            T* dmem_v, T* dweights);

}  // namespace hsa::cpu
