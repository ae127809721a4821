// Shared pieces of the CUDA sliding-window attention (not a public header; see swa_attention.h for shapes and
// semantics): dims, masks, tile loads and the launchers of the code paths, one file each:
//   swa_attention.cu          entry points, the delta kernel (swa_delta_kernel), path choice
//   swa_attention_fwd.cu      WMMA forward (swa_forward_kernel): f32, and bf16 shapes the register kernels skip
//   swa_attention_bwd.cu      WMMA backward (swa_dq_kernel, swa_dkv_kernel)
//   swa_attention_fwd_mma.cu  bf16 register forward (swa_fwd_mma_kernel); helpers in swa_attention_mma.cuh
//   swa_attention_bwd_mma.cu  bf16 register backward (swa_dq_mma_kernel, swa_dkv_mma_kernel)
//   q, out, dout, dq [B, Lq, HQ, D]; k, v, dk, dv [B, Lk, H, D]; lse, delta [B, Lq, HQ] f32.
//
// Versions: 1 and 2 (the WMMA kernels; 2 blocks the WMMA fragments per warp) are the f32 path and the bf16
// fallback; version 3, the bf16 register kernels (mma.sync, FlashAttention-2 style), is the bf16 path
// (timings of both: docs/benchmarks.md).
//
// Design of versions 1-2 (correctness first):
// - One block of 256 threads per tile. Tiles are staged in shared memory with padded rows (16 bytes of padding:
//   keeps rows 16-byte aligned for vector loads and WMMA, and shifts banks). Rows past the end of a tensor are
//   zero-filled, so padded products are finite and masked entries are selected away, never multiplied by 0.
// - Products between shared-memory tiles go through tile_mm (cuda/tile_mm.cuh): WMMA bf16 m16n16k16 with f32
//   accumulators for bf16, plain register-blocked FMAs for f32 (TF32 would miss the 1e-5 parity with the CPU).
//   Accumulators live in shared memory between tiles because WMMA's fragment layout is opaque, and the online
//   softmax has to rescale whole rows of the output accumulator.
// - Forward: block = (query tile, query head, batch); walks the key tiles that intersect the tile's window.
//   Softmax runs in the log2 domain (exp2f) with scores pre-multiplied by scale * log2(e).
// - Backward (FA2 split, deterministic): a small kernel for delta = rowsum(dout * out); a dq kernel over query
//   tiles (recomputes S and dP); a dk/dv kernel over key tiles of one KV head that loops over the query tiles
//   seeing them and over the G query heads of the group, so GQA sums need no atomics.
#pragma once
#include "cuda/hsa_support.cuh"  // max_smem_optin, ceil_div
#include "cuda/kernel_util.cuh"
#include "cuda/tile_mm.cuh"

#include <hsa/error.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace hsa::cuda::swa_attn {

using namespace detail;
using bf16_t = __nv_bfloat16;
constexpr int kThreads = kTileThreads;  // 16 x 16 for the FMA product, 8 warps for WMMA and the softmax rows
constexpr int kWarps = kThreads / 32;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Dims {
  int batch, q_len, k_len, q_heads, kv_heads;
  long long window, rel;  // rel = q_start - k_start: query row i sits at key row i + rel
};

constexpr size_t align128(size_t n) { return (n + 127) / 128 * 128; }

// Query row i (key-row coordinates: its own position is key row i + rel) sees key row j.
__device__ __forceinline__ bool visible(const Dims& d, long long i, long long j) {
  const long long t = i + d.rel;
  return i < d.q_len && j < d.k_len && j <= t && t - j < d.window;
}

// Rows [r0, r0 + R) of a global matrix whose row r starts at g + r * stride (D elements each) into s [R][lds];
// rows >= n_rows become zeros. 16-byte vector loads: D * sizeof(T) is a multiple of 16 and so is every row start.
template <class T, int R, int D>
__device__ __forceinline__ void load_tile(T* s, int lds, const T* g, long long stride, long long r0, int n_rows) {
  constexpr int V = 16 / sizeof(T), C = D / V;
  for (int idx = threadIdx.x; idx < R * C; idx += kThreads) {
    const int r = idx / C, c = (idx % C) * V;
    int4 val = make_int4(0, 0, 0, 0);
    if (r0 + r < n_rows) val = *reinterpret_cast<const int4*>(g + (r0 + r) * stride + c);
    *reinterpret_cast<int4*>(s + r * lds + c) = val;
  }
}

template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  cudaError_t status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  HSA_CHECK(status == cudaSuccess, "swa_attention: cannot reserve {} bytes of shared memory: {}", bytes,
            cudaGetErrorString(status));
}

// Tile sizes. bf16: 64 x 64 everywhere. f32 backward uses 32-query tiles so the dk/dv kernel's shared memory
// (q, dout, k, v tiles, S, dP, P, dS, dk, dv) stays under the 227 KB a block may use on sm_90.
template <class T> struct Tiles;
template <> struct Tiles<bf16_t> {
  static constexpr int fwd_q = 64, fwd_k = 64, bwd_q = 64, bwd_k = 64;
};
template <> struct Tiles<float> {
  static constexpr int fwd_q = 64, fwd_k = 64, bwd_q = 32, bwd_k = 64;
};

// ---- the code paths (each in its own file) ----
// WMMA kernels: the f32 path and the bf16 fallback. The backward runs after the delta kernel.
template <class T, int D>
void forward_wmma(const T* q, const T* k, const T* v, T* out, float* lse, const Dims& d, double scale);
template <class T, int D>
void backward_wmma(const T* dout, const T* q, const T* k, const T* v, const float* lse, const float* delta, T* dq,
                   T* dk, T* dv, const Dims& d, double scale);

// bf16 register kernels: whether they take these dims on this device, and the launches (backward: after the delta
// kernel).
template <int D> bool forward_mma_fits(const Dims& d);
template <int D>
void forward_mma(const bf16_t* q, const bf16_t* k, const bf16_t* v, bf16_t* out, float* lse, const Dims& d,
                 double scale);
template <int D> bool backward_mma_fits(const Dims& d);
template <int D>
void backward_mma(const bf16_t* dout, const bf16_t* q, const bf16_t* k, const bf16_t* v, const float* lse,
                  const float* delta, bf16_t* dq, bf16_t* dk, bf16_t* dv, const Dims& d, double scale);

}  // namespace hsa::cuda::swa_attn
