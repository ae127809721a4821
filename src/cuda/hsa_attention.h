// CUDA HSA chunk attention (docs/architecture.md §2.5 steps 4-5), the device half of ops/hsa_attention. Semantics exactly as
// in ops/hsa_attention.h; raw device pointers, contiguous.
//   q, out, dout, dq [B, L, HQ, D] (dtype: f32 or bf16, all alike); mem_k, mem_v, dmem_k, dmem_v [B, C, S, H, D];
//   indices i32 [B, L, H, K]; weights, dweights f32 [B, L, H, K]; lse f32 [B, L, HQ, K].
// Design (docs/architecture.md §5.2 and §9): the (token, slot) entries of every (b, KV head) are grouped by the chunk they selected
// (a stable device radix sort = counting sort on the chunk key), so one thread block loads a chunk's K/V [S, D]
// into shared memory once and runs all the query rows (G per entry) that selected it through two small GEMMs.
// Forward, bf16: FlashAttention-2 register style (mma.sync m16n8k16 + ldmatrix, f32 accumulation): each warp owns
// 16 consecutive query rows of the chunk (row R = entry R / G, head R % G), stages them with cp.async (the next
// tile prefetched), and keeps scores, softmax and outputs in registers; no block barrier after the K/V load.
// Per-entry weighted outputs go to an [entries, G, D] scratch and are summed per token in slot order:
// deterministic, no atomics. Backward, bf16 with D in {16, 32, 64, 128}: the same grouping, a block per (chunk,
// split of its entry tiles); each warp owns 16 keys of the chunk and keeps their dK/dV in f32 registers across the
// block's tiles, recomputes P from the forward's lse, gets <dout, o_i> from a fixed-order sum of the warps'
// partial row dots, and computes dq for the tile's rows from dS^T in shared memory; a chunk chosen by many tokens
// is split over blocks whose f32 dK/dV partials a second kernel sums in split order (deterministic). dq goes
// through per-entry partials reduced per token in slot order, dweights = sum over the G heads of <dout, o_i>.
// f32 (full precision on CUDA cores) and the other bf16 shapes take the general kernels: block-level GEMMs through
// shared memory, one backward block per chunk, which owns dK/dV of its chunk in shared memory.
// Nothing waits for the device: a chunk's entries are cut into blocks by a split plan (cuda/hsa_support.cuh) whose
// grid is a host-known upper bound; each block looks its (chunk, split) up on the device, surplus blocks exit.
// A few query tokens (decoding) take cuda/hsa_decode.h instead of the grouping.
// Supported on CUDA: D and S multiples of 16, S <= 64, D <= 256, G = HQ / H <= 32 (f32), <= 64 (bf16).
// Without CUDA, src/cuda_stub/ defines these entry points to throw.
#pragma once
#include "cuda/hsa_support.h"
#include "kernel/shapes.h"

#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

// Throws (naming `op`) when the shapes are outside what the kernels support.
void hsa_attention_check_supported(const char* op, DType dtype, const HsaDims& d);

// Both calls only queue work on stream(): nothing waits for the device. An index outside [-1, C) is skipped (as an
// empty slot, so no kernel reads outside the memory) and the one at the lowest flat position is reported through
// the deferred input-error record (cuda/runtime.h): "hsa_attention_forward: 'indices' ...: <value> at flat index
// <f>, outside [0, C)" throws at the next cuda::synchronize() or check_input_errors(); the outputs are then
// unspecified.

// Writes out and lse (every element). With `routing`, *routing receives the chunk routing the forward built from
// `indices` (null on the decode path, which builds none), for the backwards of the same indices.
void hsa_attention_forward(DType dtype, const void* q, const void* mem_k, const void* mem_v, const int32_t* indices,
                           const float* weights, double scale, const HsaDims& d, void* out, float* lse,
                           SharedRouting* routing = nullptr);

// Overwrites dq, dmem_k, dmem_v, dweights (zeros for empty slots and for chunks no token selected). `routing`: the
// forward's routing of these same indices (the results are bit-identical to building it here; a bad index was
// reported by the forward then, and is not again), or null to build one.
void hsa_attention_backward(DType dtype, const void* dout, const void* q, const void* mem_k, const void* mem_v,
                            const int32_t* indices, const float* weights, const float* lse, double scale,
                            const HsaDims& d, void* dq, void* dmem_k, void* dmem_v, float* dweights,
                            const detail::Routing* routing = nullptr);

}  // namespace hsa::cuda
