// Shared pieces of the CUDA chunk attention (not a public header; see hsa_attention.h for the operation): the
// dims and tile shapes every code path uses, the row loads of the shared-memory kernels, and the launchers of the
// code paths, one file each:
//   hsa_attention.cu          entry points, routing, path choice, the slot reduction (reduce_slots_kernel)
//   hsa_attention_fwd.cu      generic forward (hsa_fwd_kernel): f32, and bf16 shapes the register kernel skips
//   hsa_attention_fwd_mma.cu  bf16 forward in registers (hsa_fwd_mma_kernel)
//   hsa_attention_bwd.cu      generic backward (hsa_bwd_kernel)
//   hsa_attention_bwd_mma.cu  bf16 backward in registers (hsa_bwd_mma_kernel, bwd_mma_finish_kernel)
#pragma once
#include "cuda/hsa_attention.h"
#include "cuda/hsa_support.cuh"
#include "cuda/tile_mm.cuh"

#include <cuda_bf16.h>

#include <cstdint>

namespace hsa::cuda::hsa_attn {

using namespace detail;

constexpr int kThreads = kTileThreads, kWarps = kThreads / 32;

// Tile of query rows per step: 64 for bf16 (tensor cores, 4 row tiles of 16), 32 for f32 (the f32 buffers are
// twice as large and the whole backward must fit the 227 KB of shared memory at S = 64, D = 128).
template <class T> constexpr int tile_rows() { return sizeof(T) == 2 ? 64 : 32; }
// rows x D elements from global rows `stride` elements apart into shared memory rows ld apart (16-byte vectors).
template <class T>
__device__ void load_rows(const T* __restrict src, int64_t stride, T* dst, int ld, int rows, int D) {
  const int vpr = D * int(sizeof(T)) / 16;
  for (int idx = threadIdx.x; idx < rows * vpr; idx += kThreads) {
    const int row = idx / vpr, v = idx % vpr;
    reinterpret_cast<uint4*>(dst + row * ld)[v] = reinterpret_cast<const uint4*>(src + row * stride)[v];
  }
}

constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

struct Dims {
  int64_t L, HQ, H, G, D, S, K, C;
  float scale;
  int rows, ept;           // tile rows R (multiple of 16) and whole entries per tile (R / G)
  int ldd, lds, lfs, lfd;  // leading dims: T buffers of width D, S; f32 buffers of width S, D
};

// Gathers the G query rows of each entry of a tile (q or dout) into dst [R, D]; rows past m are zeroed.
template <class T>
__device__ void gather_tile(const T* __restrict src, const int32_t* __restrict flat, int e0, int m, int64_t b,
                            int64_t r, const Dims& d, T* dst) {
  const int vpr = int(d.D) * int(sizeof(T)) / 16;
  for (int idx = threadIdx.x; idx < d.rows * vpr; idx += kThreads) {
    const int row = idx / vpr, v = idx % vpr;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (row < m) {
      const int64_t f = flat[e0 + row / d.G], t = (f / (d.H * d.K)) % d.L;
      val = reinterpret_cast<const uint4*>(src + ((b * d.L + t) * d.HQ + r * d.G + row % d.G) * d.D)[v];
    }
    reinterpret_cast<uint4*>(dst + row * d.ldd)[v] = val;
  }
}

template <class T>
Dims make_dims(const HsaDims& hd, double scale) {
  Dims d{hd.len, hd.q_heads, hd.kv_heads, hd.group(), hd.head_dim, hd.chunk_size, hd.topk, hd.chunks, float(scale)};
  d.rows = tile_rows<T>();
  d.ept = int(d.rows / d.G);
  d.ldd = int(d.D) + pad<T>();
  d.lds = int(d.S) + pad<T>();
  d.lfs = int(d.S) + 4;
  d.lfd = int(d.D) + 4;
  return d;
}

// Carves 128-byte aligned regions.
struct Carver {
  unsigned used = 0;
  unsigned take(size_t bytes) {
    unsigned at = used;
    used += unsigned((bytes + 127) / 128 * 128);
    return at;
  }
};

// ---- the code paths (each in its own file) ----
// Every launcher writes one partial row per entry (scratch row e * G + g of `part` / `dq_part`, [entries, G, D])
// for reduce_slots to sum; `rt` has rt.items > 0 where noted.

// Generic forward: the shared memory hsa_fwd_kernel<T> needs, and the launch.
template <class T> size_t fwd_smem_bytes(const Dims& d);
template <class T>
void forward_generic(const T* q, const T* mem_k, const T* mem_v, const float* weights, const Dims& d,
                     const Routing& rt, T* part, float* lse);

// bf16 forward in registers: whether it takes these dims, and the launch.
bool mma_fwd_fits(const Dims& d);
void forward_mma(const __nv_bfloat16* q, const __nv_bfloat16* mem_k, const __nv_bfloat16* mem_v,
                 const float* weights, const Dims& d, const Routing& rt, __nv_bfloat16* part, float* lse);

// Generic backward: the shared memory hsa_bwd_kernel<T> needs, and the launch (rt.items > 0).
template <class T> size_t bwd_smem_bytes(const Dims& d);
template <class T>
void backward_generic(const T* dout, const T* q, const T* mem_k, const T* mem_v, const float* weights,
                      const float* lse, const Dims& d, const Routing& rt, T* dq_part, T* dmem_k, T* dmem_v,
                      float* dweights);

// bf16 backward in registers: whether it takes these dims, and the launch (rt.items > 0).
bool mma_bwd_supported(const Dims& d);
void backward_mma(const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* mem_k,
                  const __nv_bfloat16* mem_v, const float* weights, const float* lse, const Dims& d,
                  const Routing& rt, __nv_bfloat16* dq_part, __nv_bfloat16* dmem_k, __nv_bfloat16* dmem_v,
                  float* dweights);

}  // namespace hsa::cuda::hsa_attn
