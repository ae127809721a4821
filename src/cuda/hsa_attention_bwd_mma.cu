#include "cuda/hsa_attention.h"

#include "cuda/hsa_decode.h"
#include "cuda/hsa_support.cuh"
#include "cuda/mma_sync.cuh"
#include "cuda/tile_mm.cuh"

#include <mma.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace hsa::cuda {

namespace {

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
struct FwdArgs {
  const T *q, *k, *v;
  const int32_t *flat, *begin;
  const int32_t* block_item;  // the split plan: unit = entries, per_block = ept * tiles_per_block
  const float* weights;
  T* part;  // [entries, G, D]
  float* lse;
  Dims d;
  int tiles_per_block;
  unsigned o_k, o_v, o_p, o_q, o_sc, o_o;  // byte offsets into the dynamic shared memory
};

// Block = (item = (b, r, c), split), from the split plan: tiles [split * tiles_per_block, ...) of the item's
// entries; splitting keeps a popular chunk (chunk 0 is visible to every token) from serialising the tail.
template <class T>
__global__ void __launch_bounds__(kThreads) hsa_fwd_kernel(FwdArgs<T> a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int64_t item = a.block_item[blockIdx.x];
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int tiles = (e_end - e_begin + d.ept - 1) / d.ept;
  const int64_t split =
      int64_t(blockIdx.x) - plan_first_block(e_begin, item, 1, int64_t(d.ept) * a.tiles_per_block);
  if (split * a.tiles_per_block >= tiles) return;  // past the item's last split
  const int tile0 = int(split) * a.tiles_per_block, tile1 = min(tiles, tile0 + a.tiles_per_block);
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  T* Ks = reinterpret_cast<T*>(smem + a.o_k);
  T* Vs = reinterpret_cast<T*>(smem + a.o_v);
  T* Ps = reinterpret_cast<T*>(smem + a.o_p);
  T* Qs = reinterpret_cast<T*>(smem + a.o_q);
  float* Sc = reinterpret_cast<float*>(smem + a.o_sc);
  float* Os = reinterpret_cast<float*>(smem + a.o_o);  // aliases Qs and Sc (dead by then)
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * d.D;
  load_rows(a.k + chunk_off, d.H * d.D, Ks, d.ldd, int(d.S), int(d.D));
  load_rows(a.v + chunk_off, d.H * d.D, Vs, d.ldd, int(d.S), int(d.D));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int tile = tile0; tile < tile1; ++tile) {
    const int e0 = e_begin + tile * d.ept, m = min(d.ept, e_end - e0) * int(d.G);
    gather_tile(a.q, a.flat, e0, m, b, r, d, Qs);
    __syncthreads();
    tile_mm_any<false, true>(Sc, d.lfs, Qs, d.ldd, Ks, d.ldd, d.rows, int(d.S), int(d.D), false);  // Q K^T
    __syncthreads();
    for (int row = warp; row < d.rows; row += kWarps) {
      T* prow = Ps + row * d.lds;
      if (row >= m) {
        for (int j = lane; j < d.S; j += 32) prow[j] = from_f32<T>(0.0f);
        continue;
      }
      const int64_t f = a.flat[e0 + row / d.G], g = row % d.G, i = f % d.K, t = (f / (d.H * d.K)) % d.L;
      float s[2], mx = -INFINITY;
      for (int u = 0; u < 2; ++u) {
        const int j = lane + 32 * u;
        s[u] = j < d.S ? Sc[row * d.lfs + j] * d.scale : -INFINITY;
        mx = fmaxf(mx, s[u]);
      }
      mx = warp_max(mx);
      float sum = 0;
      for (int u = 0; u < 2; ++u) {
        s[u] = lane + 32 * u < d.S ? expf(s[u] - mx) : 0.0f;
        sum += s[u];
      }
      sum = warp_sum(sum);
      // The retrieval weight folds into the normalisation: P V is then w_i * o_i.
      const float factor = a.weights[f] / sum;
      for (int u = 0; u < 2; ++u)
        if (lane + 32 * u < d.S) prow[lane + 32 * u] = from_f32<T>(s[u] * factor);
      if (lane == 0) a.lse[((b * d.L + t) * d.HQ + r * d.G + g) * d.K + i] = mx + logf(sum);
    }
    __syncthreads();
    tile_mm_any<false, false>(Os, d.lfd, Ps, d.lds, Vs, d.ldd, d.rows, int(d.D), int(d.S), false);  // (w P) V
    __syncthreads();
    // Row `row` of the tile is entry e0 + row / G, head row % G: scratch row e0 * G + row.
    T* dst = a.part + int64_t(e0) * d.G * d.D;
    for (int idx = threadIdx.x; idx < m * d.D; idx += kThreads)
      dst[idx] = from_f32<T>(Os[(idx / d.D) * d.lfd + idx % d.D]);
    __syncthreads();
  }
}

// ---- bf16 forward in registers (FlashAttention-2 style): mma.sync m16n8k16 + ldmatrix ----
// Why two forward kernels: hsa_fwd_kernel above is generic in T and keeps f32 on CUDA cores (full f32 precision
// for the 1e-5 parity); it also remains the bf16 fallback for any shape the register kernel below does not take
// (fast_fwd_fits). For bf16 the register kernel replaces its block-wide GEMMs through shared memory and its many
// __syncthreads: every warp owns 16 query rows and keeps scores, probabilities and outputs in registers.
//
// Rows of an item: row R of item (b, r, c) is entry begin[item] + R / G, head g = R % G, so its part row is
// begin[item] * G + R and a 16-row tile of rows is 16 contiguous part rows. Every row is independent (softmax,
// lse and weight are per row), so a tile may hold several entries (G < 16), one entry's 16-head slice (G >= 16)
// or straddle entries (G = 3, 6, ...): any G works.
//
// Fragment layouts: cuda/mma_sync.cuh. Two C tiles n8 (keys 16j..16j+15) of Q K^T are the A fragment of k-step j
// of P V: no shuffles.
constexpr int kMmaWarps = 8, kMmaThreads = kMmaWarps * 32, kMmaMaxS = 64;

struct MmaFwdArgs {
  const __nv_bfloat16 *q, *k, *v;
  const int32_t *flat, *begin;
  const int32_t* block_item;  // the split plan: unit = G query rows per entry, per_block = 16 * tiles_per_block
  const float* weights;
  __nv_bfloat16* part;  // [entries, G, D]
  float* lse;
  Dims d;
  int tiles_per_block;  // 16-row tiles
};

// Shared memory: K and V [S, D + 8] and per warp two Q buffers [16, D + 8] (the current tile and the prefetched
// next one; the current one stages the bf16 outputs for coalesced stores). Rows of D + 8 elements are an odd
// number of 16-byte units apart, so the 8 row addresses of every ldmatrix phase hit distinct banks.
inline size_t mma_fwd_smem(int64_t S, int64_t D) { return size_t(2 * S + 2 * kMmaWarps * 16) * (D + 8) * 2; }

// Block = (item = (b, r, c), split), from the split plan: 16-row tiles [split * tiles_per_block, ...) of the item's
// rows, taken by the warps round-robin with no block barrier after the K/V load.
template <int D>
__global__ void __launch_bounds__(kMmaThreads, D <= 128 ? 2 : 1) hsa_fwd_mma_kernel(MmaFwdArgs a) {
  using bf16 = __nv_bfloat16;
  constexpr int LD = D + 8, VPR = D / 8, KS = D / 16;  // padded row, 16-byte vectors per row, k-steps of Q K^T
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int S = int(d.S);
  const int64_t G = d.G, item = a.block_item[blockIdx.x];
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int64_t nrows = int64_t(e_end - e_begin) * G;
  const int tiles = int((nrows + 15) / 16);
  const int64_t split = int64_t(blockIdx.x) - plan_first_block(e_begin, item, G, 16 * a.tiles_per_block);
  if (split * a.tiles_per_block >= tiles) return;  // past the item's last split
  const int tile0 = int(split) * a.tiles_per_block, tile1 = min(tiles, tile0 + a.tiles_per_block);
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  // Per-row index math in 32 bits (routing checked that every flat index and row count fits): 64-bit division
  // is a long software sequence, and it ran several times per row of every tile.
  const int Gi = int(G), HK = int(d.H * d.K), Ki = int(d.K), Li = int(d.L);
  const float scale_log2 = d.scale * kLog2e;  // softmax in the log2 domain: one ex2 per score
  bf16* Ks = reinterpret_cast<bf16*>(smem);
  bf16* Vs = Ks + S * LD;
  bf16* Qw = Vs + S * LD + warp * 2 * 16 * LD;  // this warp's two [16, LD] buffers

  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * D, kv_stride = d.H * D;
  for (int idx = threadIdx.x; idx < S * VPR; idx += kMmaThreads) {
    const int j = idx / VPR, x = (idx % VPR) * 8;
    cp_async_16(Ks + j * LD + x, a.k + chunk_off + j * kv_stride + x);
    cp_async_16(Vs + j * LD + x, a.v + chunk_off + j * kv_stride + x);
  }
  // Q rows of tile `tile` into dst [16, LD] (cp.async; rows past the item's end are zeroed). Warp-uniform.
  auto load_q = [&](int tile, bf16* dst) {
    const int R = tile * 16 + (lane & 15);  // lanes l and l + 16 resolve row l
    int64_t src = -1;
    if (R < nrows) {
      const int f = a.flat[e_begin + R / Gi], t = (f / HK) % Li;
      src = ((b * d.L + t) * d.HQ + r * G + R % Gi) * D;
    }
#pragma unroll
    for (int it = 0; it < 16 * VPR / 32; ++it) {  // 16 * VPR = 2 D: a multiple of 32
      const int idx = lane + 32 * it, row = idx / VPR, x = (idx % VPR) * 8;
      const int64_t s = __shfl_sync(0xffffffffu, src, row);
      bf16* p = dst + row * LD + x;
      if (s >= 0)
        cp_async_16(p, a.q + s + x);
      else
        *reinterpret_cast<uint4*>(p) = make_uint4(0, 0, 0, 0);
    }
  };
  int tile = tile0 + warp;
  if (tile < tile1) load_q(tile, Qw);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();  // K, V (and each warp's first Q tile) in place: the block's only barrier
  if (tile >= tile1) return;

  // Lane addresses of the ldmatrix row each lane feeds (bytes, shared window).
  const uint32_t k_lane = smem_addr(Ks + ((lane / 16) * 8 + (lane % 8)) * LD + ((lane / 8) % 2) * 8);
  const uint32_t v_lane = smem_addr(Vs + (((lane / 8) % 2) * 8 + (lane % 8)) * LD + (lane / 16) * 8);
  const int ns16 = S / 16;
  for (int buf = 0; tile < tile1; tile += kMmaWarps, buf ^= 1) {
    bf16* Q = Qw + buf * 16 * LD;
    if (tile + kMmaWarps < tile1) load_q(tile + kMmaWarps, Qw + (buf ^ 1) * 16 * LD);
    cp_async_commit();  // possibly empty: keeps one group per iteration
    cp_async_wait<1>();  // this tile's Q (committed one iteration earlier) has landed
    __syncwarp();

    // S = Q K^T: [16, S] in n8 tiles of keys.
    float sc[kMmaMaxS / 8][4];
#pragma unroll
    for (int n = 0; n < kMmaMaxS / 8; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
    const uint32_t q_lane = smem_addr(Q + (lane % 16) * LD + (lane / 16) * 8);
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      uint32_t qa[4];
      ldmatrix_x4(qa, q_lane + ks * 32);
#pragma unroll
      for (int p = 0; p < kMmaMaxS / 16; ++p) {
        if (p >= ns16) break;
        uint32_t kb[4];  // keys 16p..16p+7 d lo, d hi; keys 16p+8.. d lo, d hi
        ldmatrix_x4(kb, k_lane + (p * 16 * LD + ks * 16) * 2);
        mma_bf16_16816(sc[2 * p], qa, kb[0], kb[1]);
        mma_bf16_16816(sc[2 * p + 1], qa, kb[2], kb[3]);
      }
    }
    // Softmax per row in the log2 domain (scores times scale * log2 e; lse converted back to natural log): this
    // lane holds rows gid (h = 0) and gid + 8 (h = 1); a row's S values live in the 4 lanes of its quad.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kMmaMaxS / 8; ++n) {
      if (n >= 2 * ns16) break;
#pragma unroll
      for (int u = 0; u < 4; ++u) sc[n][u] *= scale_log2;
      mx[0] = fmaxf(mx[0], fmaxf(sc[n][0], sc[n][1]));
      mx[1] = fmaxf(mx[1], fmaxf(sc[n][2], sc[n][3]));
    }
    float sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    }
#pragma unroll
    for (int n = 0; n < kMmaMaxS / 8; ++n) {
      if (n >= 2 * ns16) break;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        sc[n][u] = exp2f(sc[n][u] - mx[u / 2]);
        sum[u / 2] += sc[n][u];
      }
    }
    float factor[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 1);
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 2);
      const int R = tile * 16 + gid + 8 * h;
      factor[h] = 0.0f;  // rows past the item's end: computed on zeros, never stored
      if (R < nrows) {
        const int f = a.flat[e_begin + R / Gi], g = R % Gi, i = f % Ki, t = (f / HK) % Li;
        // The retrieval weight folds into the normalisation: P V is then w_i * o_i.
        factor[h] = a.weights[f] / sum[h];
        if (tig == 0) a.lse[((b * d.L + t) * d.HQ + r * G + g) * d.K + i] = (mx[h] + log2f(sum[h])) * kLn2;
      }
    }
    // P (bf16, weighted) as the A fragments of P V, k-step j = keys 16j..16j+15 = C tiles 2j, 2j + 1.
    uint32_t pa[kMmaMaxS / 16][4];
#pragma unroll
    for (int j = 0; j < kMmaMaxS / 16; ++j) {
      if (j >= ns16) break;
      pa[j][0] = pack_bf16x2(sc[2 * j][0] * factor[0], sc[2 * j][1] * factor[0]);
      pa[j][1] = pack_bf16x2(sc[2 * j][2] * factor[1], sc[2 * j][3] * factor[1]);
      pa[j][2] = pack_bf16x2(sc[2 * j + 1][0] * factor[0], sc[2 * j + 1][1] * factor[0]);
      pa[j][3] = pack_bf16x2(sc[2 * j + 1][2] * factor[1], sc[2 * j + 1][3] * factor[1]);
    }
    // O = (w P) V: [16, D] in n8 tiles of d.
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
#pragma unroll
    for (int j = 0; j < kMmaMaxS / 16; ++j) {
      if (j >= ns16) break;
#pragma unroll
      for (int p = 0; p < D / 16; ++p) {
        uint32_t vb[4];  // keys 16j..16j+7, 16j+8.. of d 16p..16p+7; the same of d 16p+8..
        ldmatrix_x4_trans(vb, v_lane + (j * 16 * LD + p * 16) * 2);
        mma_bf16_16816(o[2 * p], pa[j], vb[0], vb[1]);
        mma_bf16_16816(o[2 * p + 1], pa[j], vb[2], vb[3]);
      }
    }
    // Outputs through the (now dead) Q buffer, then 16-byte stores of the tile's contiguous part rows.
    __syncwarp();
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<uint32_t*>(Q + gid * LD + n * 8 + 2 * tig) = pack_bf16x2(o[n][0], o[n][1]);
      *reinterpret_cast<uint32_t*>(Q + (gid + 8) * LD + n * 8 + 2 * tig) = pack_bf16x2(o[n][2], o[n][3]);
    }
    __syncwarp();
    const int64_t left = nrows - int64_t(tile) * 16;
    const int valid = left < 16 ? int(left) : 16;
    bf16* dst = a.part + (int64_t(e_begin) * G + int64_t(tile) * 16) * D;
    for (int idx = lane; idx < valid * VPR; idx += 32) {
      const int row = idx / VPR, x = (idx % VPR) * 8;
      *reinterpret_cast<uint4*>(dst + row * D + x) = *reinterpret_cast<const uint4*>(Q + row * LD + x);
    }
    __syncwarp();  // the buffer is the next prefetch's target
  }
}

template <class T>
struct BwdArgs {
  const T *q, *k, *v, *dout;
  const int32_t *flat, *begin;
  const float *weights, *lse;
  T *dq_part, *dk, *dv;
  float* dweights;
  Dims d;
  unsigned o_k, o_v, o_dk, o_dv, o_q, o_do, o_sc, o_dp, o_dq, o_wp, o_ds, o_dot;
};

// Block = item (b, r, c): it owns dK, dV of its chunk (f32 in shared memory across all its tiles).
template <class T>
__global__ void __launch_bounds__(kThreads) hsa_bwd_kernel(BwdArgs<T> a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int64_t item = blockIdx.x;
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * d.D;
  const int S = int(d.S), D = int(d.D);
  if (e_begin == e_end) {  // no token chose this chunk
    for (int idx = threadIdx.x; idx < S * D; idx += kThreads) {
      a.dk[chunk_off + (idx / D) * d.H * D + idx % D] = from_f32<T>(0.0f);
      a.dv[chunk_off + (idx / D) * d.H * D + idx % D] = from_f32<T>(0.0f);
    }
    return;
  }
  T* Ks = reinterpret_cast<T*>(smem + a.o_k);
  T* Vs = reinterpret_cast<T*>(smem + a.o_v);
  float* dKs = reinterpret_cast<float*>(smem + a.o_dk);
  float* dVs = reinterpret_cast<float*>(smem + a.o_dv);
  T* Qs = reinterpret_cast<T*>(smem + a.o_q);
  T* dOs = reinterpret_cast<T*>(smem + a.o_do);
  float* Sc = reinterpret_cast<float*>(smem + a.o_sc);
  float* dP = reinterpret_cast<float*>(smem + a.o_dp);
  float* dQs = reinterpret_cast<float*>(smem + a.o_dq);  // aliases Sc and dP (dead by then)
  T* wPs = reinterpret_cast<T*>(smem + a.o_wp);
  T* dSs = reinterpret_cast<T*>(smem + a.o_ds);
  float* rowdot = reinterpret_cast<float*>(smem + a.o_dot);
  load_rows(a.k + chunk_off, d.H * D, Ks, d.ldd, S, D);
  load_rows(a.v + chunk_off, d.H * D, Vs, d.ldd, S, D);
  for (int idx = threadIdx.x; idx < S * d.lfd; idx += kThreads) dKs[idx] = dVs[idx] = 0.0f;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int e0 = e_begin; e0 < e_end; e0 += d.ept) {
    const int ne = min(d.ept, e_end - e0), m = ne * int(d.G);
    gather_tile(a.q, a.flat, e0, m, b, r, d, Qs);
    gather_tile(a.dout, a.flat, e0, m, b, r, d, dOs);
    __syncthreads();
    tile_mm_any<false, true>(Sc, d.lfs, Qs, d.ldd, Ks, d.ldd, d.rows, S, D, false);   // Q K^T
    tile_mm_any<false, true>(dP, d.lfs, dOs, d.ldd, Vs, d.ldd, d.rows, S, D, false);  // dout V^T
    __syncthreads();
    for (int row = warp; row < d.rows; row += kWarps) {
      T *wp = wPs + row * d.lds, *ds = dSs + row * d.lds;
      if (row >= m) {
        for (int j = lane; j < S; j += 32) wp[j] = ds[j] = from_f32<T>(0.0f);
        continue;
      }
      const int64_t f = a.flat[e0 + row / d.G], g = row % d.G, i = f % d.K, t = (f / (d.H * d.K)) % d.L;
      const float lse = a.lse[((b * d.L + t) * d.HQ + r * d.G + g) * d.K + i], w = a.weights[f];
      float p[2], dpv[2], dot = 0;
      for (int u = 0; u < 2; ++u) {
        const int j = lane + 32 * u;
        p[u] = j < S ? expf(Sc[row * d.lfs + j] * d.scale - lse) : 0.0f;
        dpv[u] = j < S ? dP[row * d.lfs + j] : 0.0f;
        dot += p[u] * dpv[u];
      }
      dot = warp_sum(dot);  // <dout, o_i> for this head
      for (int u = 0; u < 2; ++u) {
        const int j = lane + 32 * u;
        if (j >= S) continue;
        const float wpj = w * p[u];
        wp[j] = from_f32<T>(wpj);
        ds[j] = from_f32<T>(wpj * (dpv[u] - dot) * d.scale);  // gradient at the raw score q . k_j
      }
      if (lane == 0) rowdot[row] = dot;
    }
    __syncthreads();
    if (threadIdx.x < ne) {  // dweights: the entry's G heads, in head order
      float dw = 0;
      for (int g = 0; g < d.G; ++g) dw += rowdot[threadIdx.x * d.G + g];
      a.dweights[a.flat[e0 + threadIdx.x]] = dw;
    }
    tile_mm_any<false, false>(dQs, d.lfd, dSs, d.lds, Ks, d.ldd, d.rows, D, S, false);  // dQ = dS K
    tile_mm_any<true, false>(dVs, d.lfd, wPs, d.lds, dOs, d.ldd, S, D, d.rows, true);  // dV += (wP)^T dout
    tile_mm_any<true, false>(dKs, d.lfd, dSs, d.lds, Qs, d.ldd, S, D, d.rows, true);   // dK += dS^T Q
    __syncthreads();
    T* dst = a.dq_part + int64_t(e0) * d.G * D;
    for (int idx = threadIdx.x; idx < m * D; idx += kThreads) dst[idx] = from_f32<T>(dQs[(idx / D) * d.lfd + idx % D]);
    __syncthreads();
  }
  for (int idx = threadIdx.x; idx < S * D; idx += kThreads) {
    const int j = idx / D, x = idx % D;
    a.dk[chunk_off + j * d.H * D + x] = from_f32<T>(dKs[j * d.lfd + x]);
    a.dv[chunk_off + j * d.H * D + x] = from_f32<T>(dVs[j * d.lfd + x]);
  }
}

// ---- bf16 backward on mma.sync (FlashAttention-2 style) ----
// Why two backward kernels: hsa_bwd_kernel above is the general one (f32 on CUDA cores, which the f32 parity of
// 1e-5 needs, and bf16 for shapes the fast kernel does not take); hsa_bwd_mma_kernel is the bf16 fast path for
// D in {16, 32, 64, 128}, S a multiple of 16 up to 64: no f32 round trips through shared memory, dK/dV live in
// registers, a popular chunk is split over several blocks.
//
// Block = (item, split): tiles [split * tiles_per_block, ...) of the item's entries (tile = kMmaRows query rows =
// ept entries of G heads, row = entry * G + head as in gather_tile). Warp w owns keys [16w, 16w + 16) of the chunk
// (S / 16 warps) and, per tile:
//   S^T = K_w Q^T, dP^T = V_w dO^T (16 x R, f32 in registers); P^T = exp(scale S^T - lse) with the forward's lse;
//   rowdot[row] = sum_j P dP over all S keys (each warp's 16 keys, then a fixed-order sum of the warps' partials
//   through shared memory) = <dout, o_i>; wP = w P, dS = w P (dP - rowdot) scale;
//   dV_w += (wP)^T dO, dK_w += dS^T Q (16 x D f32 accumulators per warp, in registers across all tiles);
//   dS^T goes to shared memory, then dQ = dS K for 16 query rows per warp (all S keys) -> dq_part (bf16);
//   dweights[f] = sum over the entry's G heads (head order) of rowdot.
// An unsplit item writes dK/dV directly; the splits of a split item write f32 partials [part, {K, V}, S, D] that
// bwd_mma_finish_kernel sums in split order (deterministic); it also zeros the items that no token chose. Blocks
// come from a split plan (unit = entries, per_block = ept * tiles_per_block); the partial slots of item i are
// [part_base(i), part_base(i) + nsplit), see backward_mma.
constexpr int kMmaRows = 64;                 // query rows per tile (= tile_rows<bf16>())

struct MmaBwdArgs {
  const __nv_bfloat16 *q, *k, *v, *dout;
  const int32_t *flat, *begin;
  const float *weights, *lse;
  const int32_t* block_item;  // the split plan
  __nv_bfloat16 *dq_part, *dk, *dv;
  float* dkv_part;  // [parts, 2, S, D]: f32 dK, dV partials of the splits of split items
  float* dweights;
  Dims d;
  int tiles_per_block;
  int part_mul, part_add;  // part_base: (2, 0) or (1, 1), see backward_mma
  float scale_log2;        // scale * log2(e)
};

// The first f32 dK/dV partial slot of item i (used only when the item is split). (part_mul, part_add) = (1, 1)
// is the item's first block number, so slots <= blocks of the plan; (2, 0) gives slots [floor(2 a / P), ...) with
// a = begin[i], P = per_block: an item of n > P entries has ceil(n / P) <= floor(2 n / P) splits, so the items'
// ranges are disjoint, all below floor(2 slots / P).
__device__ __forceinline__ int64_t part_base(int64_t begin_i, int64_t item, int64_t per_block, int part_mul,
                                             int part_add) {
  return begin_i * part_mul / per_block + part_add * item;
}

// Dynamic shared memory of hsa_bwd_mma_kernel: K, V [S, D + 8], Q, dO [R, D + 8], dS^T [S, R + 8] (bf16; the 8
// pad elements make the ldmatrix row addresses of 8 consecutive rows hit distinct banks), then f32 rowdot
// partials [4, R], lse * log2(e) and weights per row [2 buffers, R] each.
size_t mma_bwd_smem(int64_t D, int64_t S) {
  const int64_t R = kMmaRows, LD = D + 8, LR = R + 8;
  return size_t(2 * S * LD + 2 * R * LD + S * LR) * 2 + size_t(8 * R) * 4;
}

bool mma_bwd_supported(const Dims& d) {
  return (d.D == 16 || d.D == 32 || d.D == 64 || d.D == 128) && d.S % 16 == 0 && d.S >= 16 && d.S <= 64 &&
         d.rows == kMmaRows && d.ept >= 1;
}

template <int D>
__global__ void __launch_bounds__(128, 2) hsa_bwd_mma_kernel(MmaBwdArgs a) {
  constexpr int R = kMmaRows, LD = D + 8, LR = R + 8, NT = D / 8, VPR = D / 8;
  constexpr int DQC = D < 64 ? D : 64;  // dQ columns per pass (keeps the dQ accumulators at 32 registers)
  using bf16 = __nv_bfloat16;
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int S = int(d.S), NW = S / 16, nthreads = NW * 32, G = int(d.G), ept = d.ept;
  const int HK = int(d.H * d.K), Kslots = int(d.K), L = int(d.L);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, grp = lane / 4, tig = lane % 4;
  const int item = a.block_item[blockIdx.x];
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int per_block = ept * a.tiles_per_block, nsplit = (e_end - e_begin + per_block - 1) / per_block;
  const int64_t split64 = int64_t(blockIdx.x) - plan_first_block(e_begin, item, 1, per_block);
  if (split64 >= nsplit) return;  // past the item's last split (or an item no token chose)
  const int split = int(split64);
  const int tiles = (e_end - e_begin + ept - 1) / ept;
  const int tile0 = split * a.tiles_per_block, tile1 = min(tiles, tile0 + a.tiles_per_block);
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * D;
  bf16* Ks = reinterpret_cast<bf16*>(smem);
  bf16* Vs = Ks + S * LD;
  bf16* Qs = Vs + S * LD;
  bf16* dOs = Qs + R * LD;
  bf16* dST = dOs + R * LD;                              // [S, LR]: dS transposed (key-major)
  float* dotp = reinterpret_cast<float*>(dST + S * LR);  // [4, R]: rowdot partial of warp w
  float* lse2 = dotp + 4 * R;                            // [2, R]: lse * log2(e) (+inf for padding rows)
  float* wrow = lse2 + 2 * R;                            // [2, R]: retrieval weight (0 for padding rows)

  for (int idx = tid; idx < S * VPR; idx += nthreads) {
    const int j = idx / VPR, x = (idx % VPR) * 8;
    cp_async_16(Ks + j * LD + x, a.k + chunk_off + int64_t(j) * d.H * D + x);
    cp_async_16(Vs + j * LD + x, a.v + chunk_off + int64_t(j) * d.H * D + x);
  }
  // Gathers tile `tile` (q and dout rows, cp.async; zeros past the last entry) and its per-row lse and weight.
  auto stage = [&](int tile) {
    const int e0 = e_begin + tile * ept, m = min(ept, e_end - e0) * G;
    for (int idx = tid; idx < R * VPR; idx += nthreads) {
      const int row = idx / VPR, x = (idx % VPR) * 8;
      bf16 *qd = Qs + row * LD + x, *od = dOs + row * LD + x;
      if (row < m) {
        const int f = a.flat[e0 + row / G], t = (f / HK) % L;
        const int64_t off = ((b * L + t) * d.HQ + r * G + row % G) * D + x;
        cp_async_16(qd, a.q + off);
        cp_async_16(od, a.dout + off);
      } else {
        *reinterpret_cast<uint4*>(qd) = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(od) = make_uint4(0, 0, 0, 0);
      }
    }
    float *l2 = lse2 + (tile & 1) * R, *wr = wrow + (tile & 1) * R;
    for (int row = tid; row < R; row += nthreads) {
      float lv = INFINITY, wv = 0.0f;
      if (row < m) {
        const int f = a.flat[e0 + row / G], t = (f / HK) % L, i = f % Kslots;
        lv = a.lse[((b * L + t) * d.HQ + r * G + row % G) * Kslots + i] * kLog2e;
        wv = a.weights[f];
      }
      l2[row] = lv;
      wr[row] = wv;
    }
    cp_async_commit();
  };
  stage(tile0);

  float acc_dk[NT][4], acc_dv[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int u = 0; u < 4; ++u) acc_dk[j][u] = acc_dv[j][u] = 0.0f;
  const int key0 = warp * 16;
  // ldmatrix lane roles (see mma_sync.cuh): lane l addresses row (l & 7) of matrix l / 8.
  const int lrow = lane & 7, lhi = (lane >> 4) & 1, lmid = (lane >> 3) & 1;

  for (int tile = tile0; tile < tile1; ++tile) {
    const int e0 = e_begin + tile * ept, ne = min(ept, e_end - e0), m = ne * G;
    cp_async_wait<0>();
    __syncthreads();  // the tile (and at the start K, V) is in shared memory; the previous dQ pass is done

    // S^T = K_w Q^T and dP^T = V_w dO^T: 16 keys x R rows, R / 8 n-tiles of 16 x 8.
    float sc[R / 8][4], dp[R / 8][4];
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int u = 0; u < 4; ++u) sc[j][u] = dp[j][u] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t ak[4], av[4];
      // A (row-major, keys x d): matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) -> a[0..3].
      const int arow = key0 + lrow + lmid * 8, acol = ks * 16 + lhi * 8;
      ldmatrix_x4(ak, Ks + arow * LD + acol);
      ldmatrix_x4(av, Vs + arow * LD + acol);
#pragma unroll
      for (int p = 0; p < R / 16; ++p) {
        // B (col, k = d, n = query row): rows of Q are n; matrices (n 0-7, k 0-7), (n 0-7, k 8-15),
        // (n 8-15, k 0-7), (n 8-15, k 8-15) -> b[0], b[1] of n-tile 2p, b[0], b[1] of n-tile 2p + 1.
        const int brow = p * 16 + lrow + lhi * 8, bcol = ks * 16 + lmid * 8;
        uint32_t bq[4], bo[4];
        ldmatrix_x4(bq, Qs + brow * LD + bcol);
        ldmatrix_x4(bo, dOs + brow * LD + bcol);
        mma_bf16_16816(sc[2 * p], ak, bq[0], bq[1]);
        mma_bf16_16816(sc[2 * p + 1], ak, bq[2], bq[3]);
        mma_bf16_16816(dp[2 * p], av, bo[0], bo[1]);
        mma_bf16_16816(dp[2 * p + 1], av, bo[2], bo[3]);
      }
    }

    // P^T and this warp's part of rowdot. Element (j, u): key key0 + grp + 8 (u >= 2), row 8j + 2 tig + (u & 1).
    const float* l2 = lse2 + (tile & 1) * R;
    const float* wr = wrow + (tile & 1) * R;
    float part[R / 8][2];
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float l = l2[j * 8 + tig * 2 + h];
        sc[j][h] = exp2f(fmaf(sc[j][h], a.scale_log2, -l));
        sc[j][h + 2] = exp2f(fmaf(sc[j][h + 2], a.scale_log2, -l));
        part[j][h] = sc[j][h] * dp[j][h] + sc[j][h + 2] * dp[j][h + 2];
      }
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float x = part[j][h];
        x += __shfl_xor_sync(0xffffffffu, x, 4);
        x += __shfl_xor_sync(0xffffffffu, x, 8);
        x += __shfl_xor_sync(0xffffffffu, x, 16);
        if (grp == 0) dotp[warp * R + j * 8 + tig * 2 + h] = x;
      }
    __syncthreads();  // all rowdot partials are in

    // wP = w P (for dV) and dS = w P (dP - rowdot) scale, packed as the A fragments of the 16 x 16 blocks
    // (k = query rows 16kk..16kk+15); dS^T also to shared memory for dQ.
    uint32_t pa[R / 16][4], sa[R / 16][4];
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = j * 8 + tig * 2 + h;
        float dot = 0.0f;
        for (int w2 = 0; w2 < NW; ++w2) dot += dotp[w2 * R + row];
        const float wv = wr[row];
#pragma unroll
        for (int u = h; u < 4; u += 2) {
          const float wp = wv * sc[j][u];
          sc[j][u] = wp;
          dp[j][u] = wp * (dp[j][u] - dot) * d.scale;
        }
      }
#pragma unroll
    for (int kk = 0; kk < R / 16; ++kk) {
      pa[kk][0] = pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]);
      pa[kk][1] = pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]);
      pa[kk][2] = pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
      pa[kk][3] = pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
      sa[kk][0] = pack_bf16x2(dp[2 * kk][0], dp[2 * kk][1]);
      sa[kk][1] = pack_bf16x2(dp[2 * kk][2], dp[2 * kk][3]);
      sa[kk][2] = pack_bf16x2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
      sa[kk][3] = pack_bf16x2(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
      bf16* s0 = dST + (key0 + grp) * LR + kk * 16 + tig * 2;
      *reinterpret_cast<uint32_t*>(s0) = sa[kk][0];
      *reinterpret_cast<uint32_t*>(s0 + 8 * LR) = sa[kk][1];
      *reinterpret_cast<uint32_t*>(s0 + 8) = sa[kk][2];
      *reinterpret_cast<uint32_t*>(s0 + 8 * LR + 8) = sa[kk][3];
    }
    for (int e = tid; e < ne; e += nthreads) {  // dweights: the entry's G heads, in head order
      float dw = 0.0f;
      for (int g = 0; g < G; ++g) {
        float dot = 0.0f;
        for (int w2 = 0; w2 < NW; ++w2) dot += dotp[w2 * R + e * G + g];
        dw += dot;
      }
      a.dweights[a.flat[e0 + e]] = dw;
    }

    // dV_w += (wP)^T dO, dK_w += dS^T Q. B (k = query row, n = d) from row-major dO / Q with .trans: matrices
    // (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15) -> n-tiles 2q, 2q + 1.
#pragma unroll
    for (int kk = 0; kk < R / 16; ++kk)
#pragma unroll
      for (int q = 0; q < D / 16; ++q) {
        const int brow = kk * 16 + lrow + lmid * 8, bcol = q * 16 + lhi * 8;
        uint32_t bo[4], bq[4];
        ldmatrix_x4_trans(bo, dOs + brow * LD + bcol);
        ldmatrix_x4_trans(bq, Qs + brow * LD + bcol);
        mma_bf16_16816(acc_dv[2 * q], pa[kk], bo[0], bo[1]);
        mma_bf16_16816(acc_dv[2 * q + 1], pa[kk], bo[2], bo[3]);
        mma_bf16_16816(acc_dk[2 * q], sa[kk], bq[0], bq[1]);
        mma_bf16_16816(acc_dk[2 * q + 1], sa[kk], bq[2], bq[3]);
      }
    __syncthreads();  // Q, dO are free for the next tile; dS^T is complete
    if (tile + 1 < tile1) stage(tile + 1);

    // dQ = dS K for query rows [16 mt, 16 mt + 16): A = dS from dS^T with .trans (matrices (m 0-7, k 0-7),
    // (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15)); B = K (k = key, n = d) like dO above.
    for (int mt = warp; mt < R / 16 && mt * 16 < m; mt += NW) {
#pragma unroll
      for (int pass = 0; pass < D / DQC; ++pass) {
        float acc[DQC / 8][4];
#pragma unroll
        for (int j = 0; j < DQC / 8; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) acc[j][u] = 0.0f;
        for (int ks = 0; ks < NW; ++ks) {
          uint32_t as[4];
          ldmatrix_x4_trans(as, dST + (ks * 16 + lrow + lhi * 8) * LR + mt * 16 + lmid * 8);
#pragma unroll
          for (int q = 0; q < DQC / 16; ++q) {
            uint32_t bk[4];
            ldmatrix_x4_trans(bk, Ks + (ks * 16 + lrow + lmid * 8) * LD + pass * DQC + q * 16 + lhi * 8);
            mma_bf16_16816(acc[2 * q], as, bk[0], bk[1]);
            mma_bf16_16816(acc[2 * q + 1], as, bk[2], bk[3]);
          }
        }
        // Row `row` of the tile is entry e0 + row / G, head row % G: scratch row e0 * G + row.
        const int row = mt * 16 + grp;
        bf16* dst = a.dq_part + (int64_t(e0) * G + row) * D + pass * DQC + tig * 2;
#pragma unroll
        for (int j = 0; j < DQC / 8; ++j) {
          if (row < m) *reinterpret_cast<uint32_t*>(dst + j * 8) = pack_bf16x2(acc[j][0], acc[j][1]);
          if (row + 8 < m) *reinterpret_cast<uint32_t*>(dst + 8 * D + j * 8) = pack_bf16x2(acc[j][2], acc[j][3]);
        }
      }
    }
  }

  // dK, dV of keys key0 + grp (+ 8), columns 8j + 2 tig (+ 1).
  const int key = key0 + grp;
  if (nsplit == 1) {
    bf16* pk = a.dk + chunk_off + int64_t(key) * d.H * D + tig * 2;
    bf16* pv = a.dv + chunk_off + int64_t(key) * d.H * D + tig * 2;
    const int64_t down = 8 * d.H * D;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      *reinterpret_cast<uint32_t*>(pk + j * 8) = pack_bf16x2(acc_dk[j][0], acc_dk[j][1]);
      *reinterpret_cast<uint32_t*>(pk + down + j * 8) = pack_bf16x2(acc_dk[j][2], acc_dk[j][3]);
      *reinterpret_cast<uint32_t*>(pv + j * 8) = pack_bf16x2(acc_dv[j][0], acc_dv[j][1]);
      *reinterpret_cast<uint32_t*>(pv + down + j * 8) = pack_bf16x2(acc_dv[j][2], acc_dv[j][3]);
    }
  } else {
    const int64_t slot = part_base(e_begin, item, per_block, a.part_mul, a.part_add) + split;
    float* pk = a.dkv_part + slot * 2 * S * D + key * D + tig * 2;
    float* pv = pk + S * D;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      *reinterpret_cast<float2*>(pk + j * 8) = make_float2(acc_dk[j][0], acc_dk[j][1]);
      *reinterpret_cast<float2*>(pk + 8 * D + j * 8) = make_float2(acc_dk[j][2], acc_dk[j][3]);
      *reinterpret_cast<float2*>(pv + j * 8) = make_float2(acc_dv[j][0], acc_dv[j][1]);
      *reinterpret_cast<float2*>(pv + 8 * D + j * 8) = make_float2(acc_dv[j][2], acc_dv[j][3]);
    }
  }
}

// Per item (blockIdx.x) and range of S * D elements: zeros when no token chose the chunk, the sum of the split
// partials in split order for a split item, nothing for an unsplit item (its block wrote dK/dV).
__global__ void bwd_mma_finish_kernel(const float* __restrict dkv_part, const int32_t* __restrict begin,
                                      int per_block, int part_mul, int part_add, Dims d, __nv_bfloat16* dk,
                                      __nv_bfloat16* dv) {
  const int64_t item = blockIdx.x, sd = d.S * d.D;
  const int n = begin[item + 1] - begin[item], ns = (n + per_block - 1) / per_block;
  const bool empty = n == 0;
  if (!empty && ns == 1) return;
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * d.D;
  for (int64_t x = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; x < sd; x += int64_t(gridDim.y) * blockDim.x) {
    float sk = 0.0f, sv = 0.0f;
    if (!empty) {
      const float* p = dkv_part + part_base(begin[item], item, per_block, part_mul, part_add) * 2 * sd + x;
#pragma unroll 8
      for (int s = 0; s < ns; ++s) {
        sk += p[2 * s * sd];
        sv += p[(2 * s + 1) * sd];
      }
    }
    const int64_t o = chunk_off + (x / d.D) * d.H * d.D + x % d.D;
    dk[o] = __float2bfloat16(sk);
    dv[o] = __float2bfloat16(sv);
  }
}

// One block per (b, t, r) row of G*D outputs: out = sum over the filled slots, in slot order, of the entry's
// partial (zeros when all slots are empty). Also writes -inf lse (forward) or 0 dweights (backward) of empty slots.
// Memory-bound (it reads every entry's partial once: 2 GB at L = 64K in the benchmark shape), so each thread
// moves 16-byte vectors: G*D is a multiple of 16 elements and `part` is pool-aligned, so only `out` is checked.
template <class T>
__global__ void reduce_slots_kernel(const T* __restrict part, const int32_t* __restrict entry_of, int64_t G,
                                    int64_t D, int64_t K, T* __restrict out, float* lse, float* dweights) {
  constexpr int V = 16 / int(sizeof(T));
  const int64_t row = blockIdx.x, gd = G * D;
  const int32_t* eo = entry_of + row * K;
  if (reinterpret_cast<uintptr_t>(out) % 16 == 0) {
    for (int64_t x = int64_t(threadIdx.x) * V; x < gd; x += int64_t(blockDim.x) * V) {
      float acc[V] = {};
      for (int64_t i = 0; i < K; ++i) {
        const int32_t e = eo[i];
        if (e < 0) continue;
        const uint4 raw = *reinterpret_cast<const uint4*>(part + int64_t(e) * gd + x);
        const T* v = reinterpret_cast<const T*>(&raw);
        for (int j = 0; j < V; ++j) acc[j] += to_f32(v[j]);
      }
      uint4 packed;
      T* o = reinterpret_cast<T*>(&packed);
      for (int j = 0; j < V; ++j) o[j] = from_f32<T>(acc[j]);
      *reinterpret_cast<uint4*>(out + row * gd + x) = packed;
    }
  } else {
    for (int64_t x = threadIdx.x; x < gd; x += blockDim.x) {
      float acc = 0;
      for (int64_t i = 0; i < K; ++i) {
        const int32_t e = eo[i];
        if (e >= 0) acc += to_f32(part[int64_t(e) * gd + x]);
      }
      out[row * gd + x] = from_f32<T>(acc);
    }
  }
  for (int64_t x = threadIdx.x; x < K * G; x += blockDim.x) {
    const int64_t i = x % K, g = x / K;
    if (eo[i] >= 0) continue;
    if (lse) lse[(row * G + g) * K + i] = -INFINITY;
    if (dweights && g == 0) dweights[row * K + i] = 0.0f;
  }
}

// One block per output row, as many threads as the row has 16-byte vectors (a warp at least, 256 at most).
template <class T>
void reduce_slots(const T* part, const int32_t* entry_of, int64_t rows, const Dims& d, T* out, float* lse,
                  float* dweights) {
  const int64_t vectors = ceil_div(d.G * d.D * int64_t(sizeof(T)), int64_t(16));
  const unsigned threads = unsigned(std::clamp<int64_t>(ceil_div(vectors, int64_t(32)) * 32, 32, 256));
  reduce_slots_kernel<T><<<unsigned(rows), threads, 0, stream()>>>(part, entry_of, d.G, d.D, d.K, out, lse,
                                                                    dweights);
  check_launch("reduce_slots_kernel");
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

template <class T>
size_t fwd_layout(const Dims& d, FwdArgs<T>* a) {
  Carver cv;
  const size_t kv = size_t(d.S) * d.ldd * sizeof(T), q = size_t(d.rows) * d.ldd * sizeof(T),
               sc = size_t(d.rows) * d.lfs * 4, o = size_t(d.rows) * d.lfd * 4;
  unsigned o_k = cv.take(kv), o_v = cv.take(kv), o_p = cv.take(size_t(d.rows) * d.lds * sizeof(T));
  unsigned o_q = cv.take(q), o_sc = cv.take(sc);
  unsigned o_o = o_q;
  if (o_q + o > cv.used) cv.used = unsigned(o_q + (o + 127) / 128 * 128);
  if (a) {
    *a = FwdArgs<T>{};
    a->d = d;
    a->o_k = o_k, a->o_v = o_v, a->o_p = o_p, a->o_q = o_q, a->o_sc = o_sc, a->o_o = o_o;
  }
  return cv.used;
}

template <class T>
size_t bwd_layout(const Dims& d, BwdArgs<T>* a) {
  Carver cv;
  const size_t kv = size_t(d.S) * d.ldd * sizeof(T), acc = size_t(d.S) * d.lfd * 4,
               q = size_t(d.rows) * d.ldd * sizeof(T), sc = size_t(d.rows) * d.lfs * 4,
               p = size_t(d.rows) * d.lds * sizeof(T), dq = size_t(d.rows) * d.lfd * 4;
  unsigned o_k = cv.take(kv), o_v = cv.take(kv), o_dk = cv.take(acc), o_dv = cv.take(acc), o_q = cv.take(q),
           o_do = cv.take(q), o_wp = cv.take(p), o_ds = cv.take(p), o_dot = cv.take(size_t(d.rows) * 4);
  unsigned o_sc = cv.take(sc), o_dp = cv.take(sc), o_dq = o_sc;
  if (o_sc + dq > cv.used) cv.used = unsigned(o_sc + (dq + 127) / 128 * 128);
  if (a) {
    *a = BwdArgs<T>{};
    a->d = d;
    a->o_k = o_k, a->o_v = o_v, a->o_dk = o_dk, a->o_dv = o_dv, a->o_q = o_q, a->o_do = o_do, a->o_sc = o_sc;
    a->o_dp = o_dp, a->o_dq = o_dq, a->o_wp = o_wp, a->o_ds = o_ds, a->o_dot = o_dot;
  }
  return cv.used;
}

// Whether the bf16 register kernel takes these dims (else the bf16 forward runs hsa_fwd_kernel).
bool mma_fwd_fits(const Dims& d) {
  return d.D % 16 == 0 && d.D >= 16 && d.D <= 256 && d.S % 16 == 0 && d.S >= 16 && d.S <= kMmaMaxS &&
         int64_t(mma_fwd_smem(d.S, d.D)) <= max_smem_optin();
}

template <int D>
void launch_fwd_mma(const MmaFwdArgs& a, dim3 grid) {
  const size_t smem = mma_fwd_smem(a.d.S, D);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_fwd_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  hsa_fwd_mma_kernel<D><<<grid, kMmaThreads, smem, stream()>>>(a);
  check_launch("hsa_fwd_mma_kernel");
}

// D is a template parameter of the register kernel (it sizes the output accumulators): one instance per D that
// hsa_attention_check_supported allows.
void launch_fwd_mma_any_d(const MmaFwdArgs& a, dim3 grid) {
  switch (a.d.D) {
    case 16: return launch_fwd_mma<16>(a, grid);
    case 32: return launch_fwd_mma<32>(a, grid);
    case 48: return launch_fwd_mma<48>(a, grid);
    case 64: return launch_fwd_mma<64>(a, grid);
    case 80: return launch_fwd_mma<80>(a, grid);
    case 96: return launch_fwd_mma<96>(a, grid);
    case 112: return launch_fwd_mma<112>(a, grid);
    case 128: return launch_fwd_mma<128>(a, grid);
    case 144: return launch_fwd_mma<144>(a, grid);
    case 160: return launch_fwd_mma<160>(a, grid);
    case 176: return launch_fwd_mma<176>(a, grid);
    case 192: return launch_fwd_mma<192>(a, grid);
    case 208: return launch_fwd_mma<208>(a, grid);
    case 224: return launch_fwd_mma<224>(a, grid);
    case 240: return launch_fwd_mma<240>(a, grid);
    case 256: return launch_fwd_mma<256>(a, grid);
    default: HSA_CHECK(false, "hsa_fwd_mma_kernel: no instance for D = {}", a.d.D);
  }
}

template <class T>
void forward_impl(const T* q, const T* mem_k, const T* mem_v, const int32_t* indices, const float* weights,
                  double scale, const HsaDims& hd, T* out, float* lse, int error_code) {
  const Dims d = make_dims<T>(hd, scale);
  Routing rt = build_routing(indices, hd.batch, d.L, d.H, d.K, d.C, error_code);
  const int64_t rows = hd.batch * d.L * d.H;
  if (rows == 0) return;
  Scratch part(size_t(rt.slots) * d.G * d.D * sizeof(T));
  // About 512 query rows per block: enough to amortise the chunk's K/V load, small enough to spread a popular
  // chunk over many SMs. Grid (split plan): slots * rows per entry / rows per block + items; in the benchmark shape
  // (bf16, HQ = 16, H = 1, D = 128, S = 64, K = 8: G = 16, 512 rows = 32 entries per block) 16384 + 1024 = 17408
  // blocks at L = 64K, 262144 + 16384 = 278528 at L = 1M (a 4-byte plan entry each).
  bool done = false;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (mma_fwd_fits(d)) {
      MmaFwdArgs m{q, mem_k, mem_v, rt.flat, rt.begin, nullptr, weights, part.as<T>(), lse, d, 512 / 16};
      const SplitPlan plan = plan_splits(rt, d.G, 16 * m.tiles_per_block);
      m.block_item = plan.block_item;
      if (plan.blocks > 0) launch_fwd_mma_any_d(m, dim3(unsigned(plan.blocks)));
      done = true;
    }
  }
  if (!done) {
    FwdArgs<T> a;
    const size_t smem = fwd_layout<T>(d, &a);
    a.tiles_per_block = std::max(1, 512 / d.rows);
    const SplitPlan plan = plan_splits(rt, 1, int64_t(d.ept) * a.tiles_per_block);
    a.q = q, a.k = mem_k, a.v = mem_v, a.flat = rt.flat, a.begin = rt.begin, a.block_item = plan.block_item;
    a.weights = weights, a.part = part.as<T>(), a.lse = lse;
    if (plan.blocks > 0) {
      HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_fwd_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      hsa_fwd_kernel<T><<<unsigned(plan.blocks), kThreads, smem, stream()>>>(a);
      check_launch("hsa_fwd_kernel");
    }
  }
  reduce_slots<T>(part.as<T>(), rt.entry_of, rows, d, out, lse, nullptr);
}

template <int D>
void launch_bwd_mma(const MmaBwdArgs& a, int64_t blocks) {
  const size_t smem = mma_bwd_smem(D, a.d.S);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_bwd_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  hsa_bwd_mma_kernel<D><<<unsigned(blocks), unsigned(a.d.S / 16 * 32), smem, stream()>>>(a);
  check_launch("hsa_bwd_mma_kernel");
}

// The bf16 fast path (hsa_bwd_mma_kernel): plans the splits on the device (the grid and the partial scratch are
// host-known upper bounds, nothing waits), runs the kernel and the finishing sum. rt.items > 0.
void backward_mma(const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* mem_k,
                  const __nv_bfloat16* mem_v, const float* weights, const float* lse, const Dims& d,
                  const Routing& rt, __nv_bfloat16* dq_part, __nv_bfloat16* dmem_k, __nv_bfloat16* dmem_v,
                  float* dweights) {
  MmaBwdArgs a{};
  a.q = q, a.k = mem_k, a.v = mem_v, a.dout = dout, a.flat = rt.flat, a.begin = rt.begin, a.weights = weights;
  a.lse = lse, a.dq_part = dq_part, a.dk = dmem_k, a.dv = dmem_v, a.dweights = dweights, a.d = d;
  a.scale_log2 = d.scale * kLog2e;
  // 2048 query rows per block: the chunk's K/V load is amortised, a popular chunk still spreads over many SMs.
  a.tiles_per_block = std::max(1, 2048 / d.rows);
  const int64_t per_block = int64_t(d.ept) * a.tiles_per_block;
  const SplitPlan plan = plan_splits(rt, 1, per_block);
  a.block_item = plan.block_item;
  // f32 dK/dV partials (2 S D floats each) of split items, bounded on the host by the smaller of
  //   blocks = floor(slots / P) + items (slot = block number: part_base (1, 1)) and
  //   floor(2 slots / P) (an item of n > P entries has ceil(n / P) <= floor(2 n / P) splits: part_base (2, 0)).
  // Benchmark shape (bf16, G = 16, D = 128, S = 64, K = 8: P = 128 entries, 64 KiB per partial): at L = 64K
  // min(4096 + 1024, 8192) = 5120 partials = 320 MiB; at L = 1M min(65536 + 16384, 131072) = 81920 = 5 GiB, next
  // to the 32 GiB of the per-entry dq scratch. A workload with about P entries per chunk (causal top-8 in that
  // shape has ~512) uses nearly all of it.
  const int64_t by_block = plan.blocks, by_entries = 2 * rt.slots / per_block;
  const bool use_entries = by_entries <= by_block;
  a.part_mul = use_entries ? 2 : 1;
  a.part_add = use_entries ? 0 : 1;
  const int64_t parts = std::max<int64_t>(1, use_entries ? by_entries : by_block);
  Scratch dkv(size_t(parts) * 2 * d.S * d.D * sizeof(float));
  a.dkv_part = dkv.as<float>();
  if (plan.blocks > 0) {
    switch (d.D) {
      case 16: launch_bwd_mma<16>(a, plan.blocks); break;
      case 32: launch_bwd_mma<32>(a, plan.blocks); break;
      case 64: launch_bwd_mma<64>(a, plan.blocks); break;
      default: launch_bwd_mma<128>(a, plan.blocks); break;
    }
  }
  const unsigned ranges = unsigned(ceil_div(d.S * d.D, 256));
  bwd_mma_finish_kernel<<<dim3(unsigned(rt.items), ranges), 256, 0, stream()>>>(
      dkv.as<float>(), rt.begin, int(per_block), a.part_mul, a.part_add, d, dmem_k, dmem_v);
  check_launch("bwd_mma_finish_kernel");
}

template <class T>
void backward_impl(const T* dout, const T* q, const T* mem_k, const T* mem_v, const int32_t* indices,
                   const float* weights, const float* lse, double scale, const HsaDims& hd, T* dq, T* dmem_k,
                   T* dmem_v, float* dweights, int error_code) {
  const Dims d = make_dims<T>(hd, scale);
  Routing rt = build_routing(indices, hd.batch, d.L, d.H, d.K, d.C, error_code);
  Scratch part(size_t(rt.slots) * d.G * d.D * sizeof(T));
  if (rt.items > 0) {
    bool done = false;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      if (mma_bwd_supported(d)) {
        backward_mma(dout, q, mem_k, mem_v, weights, lse, d, rt, part.as<T>(), dmem_k, dmem_v, dweights);
        done = true;
      }
    }
    if (!done) {
      BwdArgs<T> a;
      const size_t smem = bwd_layout<T>(d, &a);
      a.q = q, a.k = mem_k, a.v = mem_v, a.dout = dout, a.flat = rt.flat, a.begin = rt.begin, a.weights = weights;
      a.lse = lse, a.dq_part = part.as<T>(), a.dk = dmem_k, a.dv = dmem_v, a.dweights = dweights;
      HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_bwd_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      hsa_bwd_kernel<T><<<unsigned(rt.items), kThreads, smem, stream()>>>(a);
      check_launch("hsa_bwd_kernel");
    }
  }
  const int64_t rows = hd.batch * d.L * d.H;
  if (rows > 0) {
    reduce_slots<T>(part.as<T>(), rt.entry_of, rows, d, dq, nullptr, dweights);
  }
}

}  // namespace

void hsa_attention_check_supported(const char* op, DType dtype, const HsaDims& hd) {
  HSA_CHECK(dtype == DType::f32 || dtype == DType::bf16, "{}: the cuda kernels take f32 or bf16, got {}", op,
            dtype_name(dtype));
  HSA_CHECK(hd.head_dim % 16 == 0 && hd.head_dim <= 256,
            "{}: the cuda kernels need a head dim D that is a multiple of 16 and <= 256, got {}", op, hd.head_dim);
  HSA_CHECK(hd.chunk_size % 16 == 0 && hd.chunk_size <= 64,
            "{}: the cuda kernels need a chunk size S that is a multiple of 16 and <= 64, got {}", op, hd.chunk_size);
  const int rows = dtype == DType::bf16 ? tile_rows<__nv_bfloat16>() : tile_rows<float>();
  HSA_CHECK(hd.group() <= rows, "{}: the cuda kernels need HQ / H <= {}, got {}", op, rows, hd.group());
  size_t smem = dtype == DType::bf16 ? std::max(fwd_layout<__nv_bfloat16>(make_dims<__nv_bfloat16>(hd, 1), nullptr),
                                                bwd_layout<__nv_bfloat16>(make_dims<__nv_bfloat16>(hd, 1), nullptr))
                                     : std::max(fwd_layout<float>(make_dims<float>(hd, 1), nullptr),
                                                bwd_layout<float>(make_dims<float>(hd, 1), nullptr));
  HSA_CHECK(int64_t(smem) <= max_smem_optin(),
            "{}: S = {}, D = {} in {} need {} bytes of shared memory per block, the device has {}", op,
            hd.chunk_size, hd.head_dim, dtype_name(dtype), smem, max_smem_optin());
}

void hsa_attention_forward(DType dtype, const void* q, const void* mem_k, const void* mem_v, const int32_t* indices,
                           const float* weights, double scale, const HsaDims& d, void* out, float* lse) {
  if (use_decode_path(d)) return hsa_decode_forward(dtype, q, mem_k, mem_v, indices, weights, scale, d, out, lse);
  static const int code = index_error_code("hsa_attention_forward", "indices");
  if (dtype == DType::bf16)
    return forward_impl(static_cast<const __nv_bfloat16*>(q), static_cast<const __nv_bfloat16*>(mem_k),
                        static_cast<const __nv_bfloat16*>(mem_v), indices, weights, scale, d,
                        static_cast<__nv_bfloat16*>(out), lse, code);
  forward_impl(static_cast<const float*>(q), static_cast<const float*>(mem_k), static_cast<const float*>(mem_v),
               indices, weights, scale, d, static_cast<float*>(out), lse, code);
}

void hsa_attention_backward(DType dtype, const void* dout, const void* q, const void* mem_k, const void* mem_v,
                            const int32_t* indices, const float* weights, const float* lse, double scale,
                            const HsaDims& d, void* dq, void* dmem_k, void* dmem_v, float* dweights) {
  using B16 = __nv_bfloat16;
  static const int code = index_error_code("hsa_attention_backward", "indices");
  if (dtype == DType::bf16)
    return backward_impl(static_cast<const B16*>(dout), static_cast<const B16*>(q), static_cast<const B16*>(mem_k),
                         static_cast<const B16*>(mem_v), indices, weights, lse, scale, d, static_cast<B16*>(dq),
                         static_cast<B16*>(dmem_k), static_cast<B16*>(dmem_v), dweights, code);
  backward_impl(static_cast<const float*>(dout), static_cast<const float*>(q), static_cast<const float*>(mem_k),
                static_cast<const float*>(mem_v), indices, weights, lse, scale, d, static_cast<float*>(dq),
                static_cast<float*>(dmem_k), static_cast<float*>(dmem_v), dweights, code);
}

}  // namespace hsa::cuda
