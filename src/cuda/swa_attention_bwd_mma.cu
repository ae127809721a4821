// CUDA sliding-window attention with GQA (see swa_attention.h for shapes and semantics).
//   q, out, dout, dq [B, Lq, HQ, D]; k, v, dk, dv [B, Lk, H, D]; lse, delta [B, Lq, HQ] f32.
//
// Versions: 1 and 2 (the WMMA kernels below; 2 blocks the WMMA fragments per warp) are the f32 path and the bf16
// fallback; version 3, the bf16 register kernels (mma.sync, FlashAttention-2 style) further down, is the bf16 path
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
#include "cuda/swa_attention.h"

#include "cuda/hsa_support.cuh"
#include "cuda/kernel_util.cuh"
#include "cuda/mma_sync.cuh"
#include "cuda/tile_mm.cuh"

#include <hsa/dtype.h>
#include <hsa/error.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace hsa::cuda {

namespace {

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

template <class T, int D, int BQ, int BK>
struct FwdLayout {
  static constexpr int LDT = D + pad<T>(), LDS = BK + 4, LDP = BK + pad<T>(), LDO = D + 4;
  static constexpr size_t q = 0;
  static constexpr size_t k = q + align128(sizeof(T) * BQ * LDT);
  static constexpr size_t v = k + align128(sizeof(T) * BK * LDT);
  static constexpr size_t s = v + align128(sizeof(T) * BK * LDT);
  static constexpr size_t p = s + align128(sizeof(float) * BQ * LDS);
  static constexpr size_t o = p + align128(sizeof(T) * BQ * LDP);
  static constexpr size_t bytes = o + align128(sizeof(float) * BQ * LDO);
};

// Grid (query tiles, HQ, B).
template <class T, int D, int BQ, int BK>
__global__ void __launch_bounds__(kThreads) swa_forward_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                               const T* __restrict__ v, T* __restrict__ out,
                                                               float* __restrict__ lse, Dims d, float scale_log2) {
  using L = FwdLayout<T, D, BQ, BK>;
  constexpr int ROWS = BQ / kWarps, COLS = BK / 32;
  extern __shared__ __align__(128) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem + L::q);
  T* ks = reinterpret_cast<T*>(smem + L::k);
  T* vs = reinterpret_cast<T*>(smem + L::v);
  float* ss = reinterpret_cast<float*>(smem + L::s);
  T* ps = reinterpret_cast<T*>(smem + L::p);
  float* os = reinterpret_cast<float*>(smem + L::o);

  const int i0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
  const int kvh = h / (d.q_heads / d.kv_heads), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long q_stride = (long long)d.q_heads * D, k_stride = (long long)d.kv_heads * D;
  const T* qg = q + ((long long)b * d.q_len * d.q_heads + h) * D;
  const T* kg = k + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const T* vg = v + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  // Keys [lo, hi) that any row of the tile may see.
  const int i1 = min(i0 + BQ, d.q_len);
  const long long lo = max(0LL, i0 + d.rel - (d.window - 1));
  const long long hi = min((long long)d.k_len, (i1 - 1) + d.rel + 1);

  load_tile<T, BQ, D>(qs, L::LDT, qg, q_stride, i0, d.q_len);
  for (int idx = threadIdx.x; idx < BQ * L::LDO; idx += kThreads) os[idx] = 0.0f;
  float m[ROWS], l[ROWS];  // running max (log2 domain) and sum of the rows this warp owns: r = warp + kWarps * t
#pragma unroll
  for (int t = 0; t < ROWS; ++t) {
    m[t] = -INFINITY;
    l[t] = 0.0f;
  }

  for (long long j0 = lo; j0 < hi; j0 += BK) {
    __syncthreads();  // the previous tile's readers of ks, vs, ps are done
    load_tile<T, BK, D>(ks, L::LDT, kg, k_stride, j0, d.k_len);
    load_tile<T, BK, D>(vs, L::LDT, vg, k_stride, j0, d.k_len);
    __syncthreads();
    tile_mm<BQ, BK, D, false, true, false>(ss, L::LDS, qs, L::LDT, ks, L::LDT);
    __syncthreads();
#pragma unroll
    for (int t = 0; t < ROWS; ++t) {
      const int r = warp + kWarps * t;
      float x[COLS], mx = -INFINITY;
#pragma unroll
      for (int u = 0; u < COLS; ++u) {
        const int c = lane + 32 * u;
        x[u] = visible(d, i0 + r, j0 + c) ? ss[r * L::LDS + c] * scale_log2 : -INFINITY;
        mx = fmaxf(mx, x[u]);
      }
      const float m_new = fmaxf(m[t], warp_max(mx));
      float corr = 1.0f, sum = 0.0f;
      if (m_new != -INFINITY) {  // otherwise nothing visible yet: p = 0, keep the state
        corr = exp2f(m[t] - m_new);  // 0 when m was -inf
#pragma unroll
        for (int u = 0; u < COLS; ++u) {
          x[u] = exp2f(x[u] - m_new);
          sum += x[u];
        }
      } else {
#pragma unroll
        for (int u = 0; u < COLS; ++u) x[u] = 0.0f;
      }
      l[t] = l[t] * corr + warp_sum(sum);
      m[t] = m_new;
#pragma unroll
      for (int u = 0; u < COLS; ++u) ps[r * L::LDP + lane + 32 * u] = from_f32<T>(x[u]);
      if (corr != 1.0f)
        for (int c = lane; c < D; c += 32) os[r * L::LDO + c] *= corr;
    }
    __syncthreads();
    tile_mm<BQ, D, BK, false, false, true>(os, L::LDO, ps, L::LDP, vs, L::LDT);
  }
  __syncthreads();
#pragma unroll
  for (int t = 0; t < ROWS; ++t) {
    const int r = warp + kWarps * t, i = i0 + r;
    if (i >= d.q_len) continue;
    const long long row = ((long long)b * d.q_len + i) * d.q_heads + h;
    const float inv = l[t] > 0.0f ? 1.0f / l[t] : 0.0f;
    for (int c = lane; c < D; c += 32) out[row * D + c] = from_f32<T>(os[r * L::LDO + c] * inv);
    if (lane == 0) lse[row] = l[t] > 0.0f ? (m[t] + log2f(l[t])) * kLn2 : -INFINITY;
  }
}

// delta[row] = sum_c dout[row, c] * out[row, c], one warp per (b, i, h) row.
template <class T, int D>
__global__ void __launch_bounds__(kThreads) swa_delta_kernel(const T* __restrict__ dout, const T* __restrict__ out,
                                                             float* __restrict__ delta, long long rows) {
  const long long row = (long long)blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  float s = 0.0f;
  for (int c = lane; c < D; c += 32) s += to_f32(dout[row * D + c]) * to_f32(out[row * D + c]);
  s = warp_sum(s);
  if (lane == 0) delta[row] = s;
}

template <class T, int D, int BQ, int BK>
struct BwdLayout {
  static constexpr int LDT = D + pad<T>(), LDS = BK + 4, LDP = BK + pad<T>(), LDO = D + 4;
  static constexpr size_t q = 0;
  static constexpr size_t dout = q + align128(sizeof(T) * BQ * LDT);
  static constexpr size_t k = dout + align128(sizeof(T) * BQ * LDT);
  static constexpr size_t v = k + align128(sizeof(T) * BK * LDT);
  static constexpr size_t s = v + align128(sizeof(T) * BK * LDT);
  static constexpr size_t dp = s + align128(sizeof(float) * BQ * LDS);
  static constexpr size_t p = dp + align128(sizeof(float) * BQ * LDS);
  static constexpr size_t ds = p + align128(sizeof(T) * BQ * LDP);
  static constexpr size_t lse = ds + align128(sizeof(T) * BQ * LDP);
  static constexpr size_t delta = lse + align128(sizeof(float) * BQ);
  static constexpr size_t acc = delta + align128(sizeof(float) * BQ);  // dq [BQ][LDO], or dk and dv [BK][LDO]
  static constexpr size_t dq_bytes = acc + align128(sizeof(float) * BQ * LDO);
  static constexpr size_t dkv_bytes = acc + 2 * align128(sizeof(float) * BK * LDO);
};

// Loads the query-side tiles of rows [i0, i0 + BQ) of head h: q, dout, lse (log2 domain), delta.
template <class T, int D, int BQ, int BK>
__device__ __forceinline__ void load_query_side(unsigned char* smem, const T* q, const T* dout, const float* lse,
                                                const float* delta, const Dims& d, int b, int h, long long i0) {
  using L = BwdLayout<T, D, BQ, BK>;
  const long long q_stride = (long long)d.q_heads * D, base = (long long)b * d.q_len * d.q_heads + h;
  load_tile<T, BQ, D>(reinterpret_cast<T*>(smem + L::q), L::LDT, q + base * D, q_stride, i0, d.q_len);
  load_tile<T, BQ, D>(reinterpret_cast<T*>(smem + L::dout), L::LDT, dout + base * D, q_stride, i0, d.q_len);
  float* ls = reinterpret_cast<float*>(smem + L::lse);
  float* dl = reinterpret_cast<float*>(smem + L::delta);
  for (int r = threadIdx.x; r < BQ; r += kThreads) {
    const long long i = i0 + r;
    const bool ok = i < d.q_len;
    ls[r] = ok ? lse[base + i * d.q_heads] * kLog2e : -INFINITY;
    dl[r] = ok ? delta[base + i * d.q_heads] : 0.0f;
  }
}

// With q, dout, k, v staged: S = q k^T and dP = dout v^T, then P = exp(S - lse) (0 where masked or where the row
// sees nothing, lse = -inf) and dS = P (dP - delta), both stored as T. Ends with a barrier.
template <class T, int D, int BQ, int BK>
__device__ __forceinline__ void probabilities(unsigned char* smem, const Dims& d, long long i0, long long j0,
                                              float scale_log2) {
  using L = BwdLayout<T, D, BQ, BK>;
  const T* qs = reinterpret_cast<const T*>(smem + L::q);
  const T* dos = reinterpret_cast<const T*>(smem + L::dout);
  const T* ks = reinterpret_cast<const T*>(smem + L::k);
  const T* vs = reinterpret_cast<const T*>(smem + L::v);
  float* ss = reinterpret_cast<float*>(smem + L::s);
  float* dps = reinterpret_cast<float*>(smem + L::dp);
  T* ps = reinterpret_cast<T*>(smem + L::p);
  T* dss = reinterpret_cast<T*>(smem + L::ds);
  const float* ls = reinterpret_cast<const float*>(smem + L::lse);
  const float* dl = reinterpret_cast<const float*>(smem + L::delta);
  tile_mm<BQ, BK, D, false, true, false>(ss, L::LDS, qs, L::LDT, ks, L::LDT);
  tile_mm<BQ, BK, D, false, true, false>(dps, L::LDS, dos, L::LDT, vs, L::LDT);
  __syncthreads();
  for (int idx = threadIdx.x; idx < BQ * BK; idx += kThreads) {
    const int r = idx / BK, c = idx % BK;
    const bool on = visible(d, i0 + r, j0 + c) && ls[r] != -INFINITY;
    const float p = on ? exp2f(ss[r * L::LDS + c] * scale_log2 - ls[r]) : 0.0f;
    ps[r * L::LDP + c] = from_f32<T>(p);
    dss[r * L::LDP + c] = from_f32<T>(p * (dps[r * L::LDS + c] - dl[r]));
  }
  __syncthreads();
}

// dq: grid (query tiles, HQ, B).
template <class T, int D, int BQ, int BK>
__global__ void __launch_bounds__(kThreads) swa_dq_kernel(const T* __restrict__ dout, const T* __restrict__ q,
                                                          const T* __restrict__ k, const T* __restrict__ v,
                                                          const float* __restrict__ lse,
                                                          const float* __restrict__ delta, T* __restrict__ dq, Dims d,
                                                          float scale, float scale_log2) {
  using L = BwdLayout<T, D, BQ, BK>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* ks = reinterpret_cast<T*>(smem + L::k);
  T* vs = reinterpret_cast<T*>(smem + L::v);
  const T* dss = reinterpret_cast<const T*>(smem + L::ds);
  float* dqs = reinterpret_cast<float*>(smem + L::acc);
  const int i0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
  const int kvh = h / (d.q_heads / d.kv_heads);
  const long long k_stride = (long long)d.kv_heads * D;
  const T* kg = k + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const T* vg = v + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const int i1 = min(i0 + BQ, d.q_len);
  const long long lo = max(0LL, i0 + d.rel - (d.window - 1));
  const long long hi = min((long long)d.k_len, (i1 - 1) + d.rel + 1);

  load_query_side<T, D, BQ, BK>(smem, q, dout, lse, delta, d, b, h, i0);
  for (int idx = threadIdx.x; idx < BQ * L::LDO; idx += kThreads) dqs[idx] = 0.0f;
  for (long long j0 = lo; j0 < hi; j0 += BK) {
    __syncthreads();
    load_tile<T, BK, D>(ks, L::LDT, kg, k_stride, j0, d.k_len);
    load_tile<T, BK, D>(vs, L::LDT, vg, k_stride, j0, d.k_len);
    __syncthreads();
    probabilities<T, D, BQ, BK>(smem, d, i0, j0, scale_log2);
    tile_mm<BQ, D, BK, false, false, true>(dqs, L::LDO, dss, L::LDP, ks, L::LDT);  // dq += dS k
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < BQ * D; idx += kThreads) {
    const int r = idx / D, c = idx % D, i = i0 + r;
    if (i < d.q_len)
      dq[(((long long)b * d.q_len + i) * d.q_heads + h) * D + c] = from_f32<T>(dqs[r * L::LDO + c] * scale);
  }
}

// dk, dv: grid (key tiles, H, B). Loops over the query tiles that see the key tile and the G heads of the group.
template <class T, int D, int BQ, int BK>
__global__ void __launch_bounds__(kThreads) swa_dkv_kernel(const T* __restrict__ dout, const T* __restrict__ q,
                                                           const T* __restrict__ k, const T* __restrict__ v,
                                                           const float* __restrict__ lse,
                                                           const float* __restrict__ delta, T* __restrict__ dk,
                                                           T* __restrict__ dv, Dims d, float scale, float scale_log2) {
  using L = BwdLayout<T, D, BQ, BK>;
  extern __shared__ __align__(128) unsigned char smem[];
  const T* qs = reinterpret_cast<const T*>(smem + L::q);
  const T* dos = reinterpret_cast<const T*>(smem + L::dout);
  T* ks = reinterpret_cast<T*>(smem + L::k);
  T* vs = reinterpret_cast<T*>(smem + L::v);
  const T* ps = reinterpret_cast<const T*>(smem + L::p);
  const T* dss = reinterpret_cast<const T*>(smem + L::ds);
  float* dks = reinterpret_cast<float*>(smem + L::acc);
  float* dvs = reinterpret_cast<float*>(smem + L::acc + align128(sizeof(float) * BK * L::LDO));
  const int j0 = blockIdx.x * BK, kvh = blockIdx.y, b = blockIdx.z;
  const int group = d.q_heads / d.kv_heads;
  const long long k_stride = (long long)d.kv_heads * D, kbase = ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const int j1 = min(j0 + BK, d.k_len);
  // Query row i sees key j iff j - rel <= i <= j - rel + window - 1.
  const long long ilo = max(0LL, j0 - d.rel);
  const long long ihi = min((long long)d.q_len, (j1 - 1) - d.rel + d.window);  // exclusive

  load_tile<T, BK, D>(ks, L::LDT, k + kbase, k_stride, j0, d.k_len);
  load_tile<T, BK, D>(vs, L::LDT, v + kbase, k_stride, j0, d.k_len);
  for (int idx = threadIdx.x; idx < BK * L::LDO; idx += kThreads) {
    dks[idx] = 0.0f;
    dvs[idx] = 0.0f;
  }
  for (long long i0 = ilo; i0 < ihi; i0 += BQ)
    for (int hh = 0; hh < group; ++hh) {
      __syncthreads();  // the previous step's readers of the query-side tiles are done
      load_query_side<T, D, BQ, BK>(smem, q, dout, lse, delta, d, b, kvh * group + hh, i0);
      __syncthreads();
      probabilities<T, D, BQ, BK>(smem, d, i0, j0, scale_log2);
      tile_mm<BK, D, BQ, true, false, true>(dvs, L::LDO, ps, L::LDP, dos, L::LDT);  // dv += P^T dout
      tile_mm<BK, D, BQ, true, false, true>(dks, L::LDO, dss, L::LDP, qs, L::LDT);  // dk += dS^T q
    }
  __syncthreads();
  for (int idx = threadIdx.x; idx < BK * D; idx += kThreads) {
    const int r = idx / D, c = idx % D, j = j0 + r;
    if (j >= d.k_len) continue;
    const long long off = kbase + (long long)j * k_stride + c;
    dk[off] = from_f32<T>(dks[r * L::LDO + c] * scale);
    dv[off] = from_f32<T>(dvs[r * L::LDO + c]);
  }
}

// ---- bf16 register kernels (FlashAttention-2 style): mma.sync m16n8k16, ldmatrix, cp.async ----
// Why two sets of kernels: the WMMA kernels above keep their accumulators in shared memory and meet at a block
// barrier for every product, which held the bf16 forward far below the tensor-core peak. They stay
// as the f32 path (exact CUDA-core products, the 1e-5 parity) and as the bf16 fallback for shapes the kernels
// below do not take (register_path). The kernels below keep scores, probabilities and accumulators in registers
// (warp-tile helpers of cuda/mma_sync.cuh); the only block barriers are the two per tile of the cp.async pipeline.
//
// Rows of a KV group: the G = HQ / H query heads of KV head kvh read the same keys, so these kernels treat them as
// one matrix of Lq * G rows, row R = token R / G of query head kvh * G + R % G (the G heads of a token are adjacent
// in memory, as in the HSA kernels). A K/V tile in shared memory then serves all G heads, and a warp's 16 rows span
// only ceil(15 / G) + 1 tokens, so its key range is hardly wider than one token's window.
//
// Forward and dq: block = 128 rows of group (b, kvh), warp w = rows [16w, 16w + 16), Q (and dO) fragments in
// registers where they fit (RowsA). Key tiles of 64, double-buffered, aligned to the end of the keys the block sees
// (for G = 1 the causal diagonal then falls on tile edges). A warp skips tiles its rows do not see and masks only
// tiles that some of its rows see in part (causal diagonal, window start, sequence ends). Online softmax in the
// log2 domain. dk/dv: block = 64 keys of (b, kvh), warp w = keys [16w, 16w + 16) with its K, V fragments (RowsA);
// it walks the rows (all G heads) that see the block's keys in tiles of 64, double-buffered, in row order, so the
// GQA sum has a fixed order (deterministic, no atomics). P and dS are recomputed in registers from lse and delta.
//
// Work at base-100m (B 4, L 4096, HQ 12, H 2, D 64, W 512): 94.4 M visible (query, key) pairs over all heads.
// Forward 4 D per pair = 24.2 GFLOP (~27 executed: a warp's 64-key tiles cover ~576 keys for 512 seen), dq 6 D =
// 36.2 GFLOP, dk/dv 8 D = 48.3 GFLOP. HBM: ~60 MB per forward (~13 us at 4.8 TB/s), ~200 MB per backward with the
// delta kernel (~42 us), so all three are bound by mma.sync throughput. K/V tiles come from L2 once per block of 128
// rows (~230 MB of L2 reads per forward or dq call, ~500 MB of Q/dO tiles per dk/dv call).
constexpr int kMmaWarps = 8, kMmaThreads = 32 * kMmaWarps;
constexpr int kRowTile = 16 * kMmaWarps, kKeyTile = 64;  // forward and dq: rows per block, keys per tile
// dk/dv: 4 warps, keys per block, rows per tile. 64 keys per block rather than 128 doubles the blocks for small
// batches (B 1, H 2, L 4K: 128 blocks) and lets a warp idle on fewer of its block's row tiles (~6% of them instead
// of ~15% at base-100m shapes), for twice the L2 reads of Q and dO; two blocks fit an SM.
constexpr int kDkvWarps = 4, kDkvThreads = 32 * kDkvWarps, kDkvKeys = 16 * kDkvWarps, kDkvRows = 64;

// Shared memory (bytes), rows of D + 8 bf16 (see mma_sync.cuh).
template <int D> struct MmaSmem {
  static constexpr size_t row = size_t(D + 8) * 2;
  static constexpr size_t fwd = (kRowTile + 4 * kKeyTile) * row;     // Q; K, V x 2 buffers
  static constexpr size_t dq = (2 * kRowTile + 4 * kKeyTile) * row;  // Q, dO; K, V x 2 buffers
  // K, V; Q, dO x 2 buffers; lse, delta (f32) and key spans (2 x i32) per row x 2 buffers.
  static constexpr size_t dkv = (2 * kDkvKeys + 4 * kDkvRows) * row + 2 * kDkvRows * 16;
};

struct Span {
  int lo, hi;  // [lo, hi)
};

__device__ __forceinline__ int clamp_to(long long x, int hi) { return int(x < 0 ? 0 : x > hi ? hi : x); }
// Keys that some token of [t0, t1] sees, keys that all of them see, and tokens that see some key of [k0, k1].
__device__ __forceinline__ Span keys_any(const Dims& d, int t0, int t1) {
  return {clamp_to(t0 + d.rel - d.window + 1, d.k_len), clamp_to(t1 + d.rel + 1, d.k_len)};
}
__device__ __forceinline__ Span keys_all(const Dims& d, int t0, int t1) {
  return {clamp_to(t1 + d.rel - d.window + 1, d.k_len), clamp_to(t0 + d.rel + 1, d.k_len)};
}
__device__ __forceinline__ Span tokens_any(const Dims& d, int k0, int k1) {
  return {clamp_to(k0 - d.rel, d.q_len), clamp_to(k1 - d.rel + d.window, d.q_len)};
}

// The Lq * G rows of group (b, kvh).
struct GroupRows {
  long long base;          // index of row 0 in [B, Lq, HQ]
  int group, skip, count;  // G, HQ - G, Lq * G
  __device__ GroupRows(const Dims& d, int b, int kvh)
      : base((long long)b * d.q_len * d.q_heads + (long long)kvh * (d.q_heads / d.kv_heads)),
        group(d.q_heads / d.kv_heads),
        skip(d.q_heads - d.q_heads / d.kv_heads),
        count(d.q_len * (d.q_heads / d.kv_heads)) {}
  __device__ int token(int r) const { return r / group; }
  // Row r's index in [B, Lq, HQ] (lse, delta; times D: q, out, dout, dq).
  __device__ long long index(int r) const { return base + r + (long long)token(r) * skip; }
};

// Where the forward and dq kernels stand: block = (row tile, kvh, b), this warp's rows and this lane's two rows.
struct QueryTile {
  GroupRows rows;
  int r0, rw;               // first row of the block, of the warp
  int tiles, keys_end;      // key tile n covers keys [keys_end - 64 (tiles - n), + 64)
  Span warp_any, warp_all;  // keys some / every valid row of the warp sees
  int lane_tok[2];          // tokens of this lane's rows rw + gid, rw + gid + 8 (rows of its C fragments)
  long long kv_off;         // element offset of (b, key 0, kvh) in k and v

  __device__ QueryTile(const Dims& d, int D) : rows(d, blockIdx.z, blockIdx.y) {
    const int warp = threadIdx.x / 32, gid = threadIdx.x % 32 / 4;
    r0 = blockIdx.x * kRowTile;
    rw = r0 + 16 * warp;
    const Span keys = keys_any(d, rows.token(r0), rows.token(min(r0 + kRowTile, rows.count) - 1));
    keys_end = keys.hi;
    tiles = keys.hi > keys.lo ? (keys.hi - keys.lo + kKeyTile - 1) / kKeyTile : 0;
    warp_any = warp_all = Span{0, 0};
    if (rw < rows.count) {
      const int t0 = rows.token(rw), t1 = rows.token(min(rw + 16, rows.count) - 1);
      warp_any = keys_any(d, t0, t1);
      warp_all = keys_all(d, t0, t1);
    }
    // Padding rows (past count) get their would-be token: they are never stored.
    for (int h = 0; h < 2; ++h) lane_tok[h] = rows.token(rw + gid + 8 * h);
    kv_off = ((long long)blockIdx.z * d.k_len * d.kv_heads + blockIdx.y) * D;
  }
  __device__ int start(int n) const { return keys_end - kKeyTile * (tiles - n); }
  __device__ bool active(int j0) const { return j0 < warp_any.hi && j0 + kKeyTile > warp_any.lo; }
  __device__ bool full(int j0) const { return warp_all.lo <= j0 && j0 + kKeyTile <= warp_all.hi; }
  __device__ bool has_rows() const { return rw < rows.count; }
  // This warp's [16][D] f32 tile (C fragments; row gid times f0, gid + 8 times f1) to its rows of dst
  // [B, Lq, HQ, D], through the staging buffer stage [16][D + 8].
  template <int D>
  __device__ void store(const float (&c)[D / 8][4], float f0, float f1, bf16_t* stage, bf16_t* dst) const {
    store_rows<D, D + 8>(c, f0, f1, stage, [&](int r) -> bf16_t* {
      const int R = rw + r;
      return R < rows.count ? dst + rows.index(R) * D : nullptr;
    });
  }
};

// Rows [r0, r0 + ROWS) of a group into dst [ROWS][D + 8]; rows at or past `end` as zeros.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_group_rows(bf16_t* dst, const bf16_t* src, const GroupRows& rows, int r0,
                                                int end) {
  cp_async_rows<ROWS, D, D + 8, THREADS>(dst, src, [&](int r) -> long long {
    const int R = r0 + r;
    return R < end ? rows.index(R) * D : -1;
  });
}

// Key tile n of the forward and dq kernels into buffer buf of kvs [2][K, V][64][D + 8]; keys outside [0, Lk) as
// zeros (the first tile may start before key 0).
template <int D>
__device__ __forceinline__ void load_key_tile(bf16_t* kvs, const bf16_t* k, const bf16_t* v, const QueryTile& qt,
                                              const Dims& d, int n, int buf) {
  constexpr int LD = D + 8;
  const int j0 = qt.start(n);
  const long long stride = (long long)d.kv_heads * D;
  auto off = [&](int r) -> long long {
    const int j = j0 + r;
    return j >= 0 && j < d.k_len ? j * stride : -1;
  };
  bf16_t* dst = kvs + buf * 2 * kKeyTile * LD;
  cp_async_rows<kKeyTile, D, LD, kMmaThreads>(dst, k + qt.kv_off, off);
  cp_async_rows<kKeyTile, D, LD, kMmaThreads>(dst + kKeyTile * LD, v + qt.kv_off, off);
}

// Sets the entries of this lane's C fragments of a [16][64] score tile at keys [j0, j0 + 64) that its rows (tokens
// lane_tok) do not see to `value`.
__device__ __forceinline__ void mask_keys(float (&s)[kKeyTile / 8][4], const Dims& d, const int (&lane_tok)[2],
                                          int j0, float value) {
  const int tig = threadIdx.x % 4;
  int lo[2], hi[2];  // relative to this lane's first column 2 tig
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const Span keys = keys_any(d, lane_tok[h], lane_tok[h]);
    lo[h] = keys.lo - j0 - 2 * tig;
    hi[h] = keys.hi - j0 - 2 * tig;
  }
#pragma unroll
  for (int n = 0; n < kKeyTile / 8; ++n)
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int c = 8 * n + (u & 1);
      if (c < lo[u / 2] || c >= hi[u / 2]) s[n][u] = value;
    }
}

// out [B, Lq, HQ, D], lse [B, Lq, HQ]; grid (ceil(Lq G / 128), H, B).
template <int D>
__global__ void __launch_bounds__(kMmaThreads, D <= 64 ? 2 : 1)
    swa_fwd_mma_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                       bf16_t* __restrict__ out, float* __restrict__ lse, Dims d, float scale_log2) {
  constexpr int LD = D + 8, NK = kKeyTile / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* Qs = reinterpret_cast<bf16_t*>(smem);  // [128][LD]
  bf16_t* KVs = Qs + kRowTile * LD;              // [2][K, V][64][LD]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const QueryTile qt(d, D);
  const GroupRows& rows = qt.rows;
  bf16_t* Qw = Qs + warp * 16 * LD;  // this warp's rows: Q, later the staged outputs

  load_group_rows<kRowTile, D, kMmaThreads>(Qs, q, rows, qt.r0, rows.count);
  cp_async_commit();
  // Q fragments in registers, except at D = 64: two blocks per SM cap the kernel at 128 registers, and with Q in
  // registers it spilled; from shared memory Q costs one ldmatrix per eight of K and V.
  RowsA<D, LD, (D != 64)> qa;
  float o[D / 8][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // l: this lane's columns only
  pipeline(
      qt.tiles, [&](int n, int buf) { load_key_tile<D>(KVs, k, v, qt, d, n, buf); },
      [&] { qa.load(smem_addr(Qw)); },
      [&](int n, int buf) {
        const int j0 = qt.start(n);
        if (!qt.active(j0)) return;
        const uint32_t ks = smem_addr(KVs + buf * 2 * kKeyTile * LD), vs = ks + kKeyTile * LD * 2;
        float sc[NK][4] = {};
        mma_abt<kKeyTile, D, LD>(sc, qa, ks);
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) sc[j][u] *= scale_log2;
        if (!qt.full(j0)) mask_keys(sc, d, qt.lane_tok, j0, -INFINITY);
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int j = 0; j < NK; ++j) {
          mx[0] = fmaxf(mx[0], fmaxf(sc[j][0], sc[j][1]));
          mx[1] = fmaxf(mx[1], fmaxf(sc[j][2], sc[j][3]));
        }
        float base[2], corr[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {  // a row's scores live in the 4 lanes of its quad
          mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
          mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
          base[h] = mx[h] == -INFINITY ? 0.0f : mx[h];  // nothing seen yet: p = 0, no -inf - -inf
          corr[h] = exp2f(m[h] - base[h]);
          m[h] = mx[h];
          l[h] *= corr[h];
        }
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            sc[j][u] = exp2f(sc[j][u] - base[u / 2]);
            l[u / 2] += sc[j][u];
          }
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          o[j][0] *= corr[0];
          o[j][1] *= corr[0];
          o[j][2] *= corr[1];
          o[j][3] *= corr[1];
        }
        uint32_t pa[kKeyTile / 16][4];
        pack_a<kKeyTile>(pa, sc);
        mma_ab<kKeyTile, D, LD>(o, pa, vs);
      });

  if (!qt.has_rows()) return;
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    inv[h] = l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
    const int r = qt.rw + gid + 8 * h;
    if (tig == 0 && r < rows.count) lse[rows.index(r)] = l[h] > 0.0f ? (m[h] + log2f(l[h])) * kLn2 : -INFINITY;
  }
  qt.store<D>(o, inv[0], inv[1], Qw, out);
}

// dq [B, Lq, HQ, D]; grid (ceil(Lq G / 128), H, B). dS = P (dP - delta), dq = scale dS K.
template <int D>
__global__ void __launch_bounds__(kMmaThreads, 1)
    swa_dq_mma_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                      const bf16_t* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ delta,
                      bf16_t* __restrict__ dq, Dims d, float scale, float scale_log2) {
  constexpr int LD = D + 8, NK = kKeyTile / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* Qs = reinterpret_cast<bf16_t*>(smem);  // [128][LD]
  bf16_t* dOs = Qs + kRowTile * LD;              // [128][LD]
  bf16_t* KVs = dOs + kRowTile * LD;             // [2][K, V][64][LD]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4;
  const QueryTile qt(d, D);
  const GroupRows& rows = qt.rows;

  load_group_rows<kRowTile, D, kMmaThreads>(Qs, q, rows, qt.r0, rows.count);
  load_group_rows<kRowTile, D, kMmaThreads>(dOs, dout, rows, qt.r0, rows.count);
  cp_async_commit();
  // This lane's rows: lse in the log2 domain and delta (0 for padding rows, whose q and dout are 0: dS = 0).
  float lse2[2], dl[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = qt.rw + gid + 8 * h;
    lse2[h] = r < rows.count ? lse[rows.index(r)] * kLog2e : 0.0f;
    dl[h] = r < rows.count ? delta[rows.index(r)] : 0.0f;
  }
  // Q and dO fragments in registers; at D = 128 they would push the kernel past 255 registers (spills), so there
  // they are read from shared memory at each use.
  RowsA<D, LD, D <= 64> qa, da;
  float acc[D / 8][4] = {};
  pipeline(
      qt.tiles, [&](int n, int buf) { load_key_tile<D>(KVs, k, v, qt, d, n, buf); },
      [&] {
        qa.load(smem_addr(Qs + warp * 16 * LD));
        da.load(smem_addr(dOs + warp * 16 * LD));
      },
      [&](int n, int buf) {
        const int j0 = qt.start(n);
        if (!qt.active(j0)) return;
        const uint32_t ks = smem_addr(KVs + buf * 2 * kKeyTile * LD), vs = ks + kKeyTile * LD * 2;
        float p[NK][4] = {}, ds[NK][4] = {};
        mma_abt<kKeyTile, D, LD>(p, qa, ks);
        mma_abt<kKeyTile, D, LD>(ds, da, vs);  // dP = dO V^T
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) p[j][u] = exp2f(fmaf(p[j][u], scale_log2, -lse2[u / 2]));
        // Masked entries are set, not multiplied: exp2 of a score against a zero-filled key may have overflowed,
        // and a row that sees nothing has lse = -inf.
        if (!qt.full(j0)) mask_keys(p, d, qt.lane_tok, j0, 0.0f);
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) ds[j][u] = p[j][u] * (ds[j][u] - dl[u / 2]);
        uint32_t sa[kKeyTile / 16][4];
        pack_a<kKeyTile>(sa, ds);
        mma_ab<kKeyTile, D, LD>(acc, sa, ks);
      });

  if (!qt.has_rows()) return;
  qt.store<D>(acc, scale, scale, Qs + warp * 16 * LD, dq);
}

// dk, dv [B, Lk, H, D]; grid (ceil(Lk / 64), H, B). dv = P^T dout and dk = scale dS^T q over the rows of all G heads.
template <int D>
__global__ void __launch_bounds__(kDkvThreads, 2)
    swa_dkv_mma_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                       const bf16_t* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ delta,
                       bf16_t* __restrict__ dk, bf16_t* __restrict__ dv, Dims d, float scale, float scale_log2) {
  constexpr int LD = D + 8, BR = kDkvRows, NR = BR / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* Ks = reinterpret_cast<bf16_t*>(smem);  // [64][LD]
  bf16_t* Vs = Ks + kDkvKeys * LD;               // [64][LD]
  bf16_t* Rs = Vs + kDkvKeys * LD;               // [2][Q, dO][64][LD]: the row tiles
  float* lse_s = reinterpret_cast<float*>(Rs + 4 * BR * LD);  // [2][64]
  float* delta_s = lse_s + 2 * BR;                            // [2][64]
  Span* span_s = reinterpret_cast<Span*>(delta_s + 2 * BR);   // [2][64]: keys each row sees
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const int j0 = blockIdx.x * kDkvKeys, kw = j0 + 16 * warp;  // the block's and this warp's first key
  const GroupRows rows(d, blockIdx.z, blockIdx.y);
  const long long kv_off = ((long long)blockIdx.z * d.k_len * d.kv_heads + blockIdx.y) * D;
  const long long kv_stride = (long long)d.kv_heads * D;

  auto key_off = [&](int r) -> long long { return j0 + r < d.k_len ? (j0 + r) * kv_stride : -1; };
  cp_async_rows<kDkvKeys, D, LD, kDkvThreads>(Ks, k + kv_off, key_off);
  cp_async_rows<kDkvKeys, D, LD, kDkvThreads>(Vs, v + kv_off, key_off);
  cp_async_commit();
  // Rows that see some key of the block: [rlo, rhi), all heads of tokens [lo, hi).
  const Span toks = tokens_any(d, j0, min(j0 + kDkvKeys, d.k_len) - 1);
  const int rlo = toks.lo * rows.group, rhi = toks.hi > toks.lo ? toks.hi * rows.group : rlo;
  const int tiles = (rhi - rlo + BR - 1) / BR;
  const Span warp_toks = kw < d.k_len ? tokens_any(d, kw, min(kw + 16, d.k_len) - 1) : Span{0, 0};

  // This warp's K and V fragments, in registers up to D = 64 (as Q and dO in the dq kernel).
  RowsA<D, LD, D <= 64> ka, va;
  float acc_dk[D / 8][4] = {}, acc_dv[D / 8][4] = {};
  pipeline(
      tiles,
      [&](int n, int buf) {
        const int r0 = rlo + n * BR;
        bf16_t* dst = Rs + buf * 2 * BR * LD;
        load_group_rows<BR, D, kDkvThreads>(dst, q, rows, r0, rhi);
        load_group_rows<BR, D, kDkvThreads>(dst + BR * LD, dout, rows, r0, rhi);
        const int i = threadIdx.x, R = r0 + i;
        if (i < BR) {
          // Padding rows: q = dout = 0 and lse = delta = 0, so P is 1 (or masked to 0), dS = 0, P dout = 0.
          if (R < rhi) {
            cp_async_4(lse_s + buf * BR + i, lse + rows.index(R));
            cp_async_4(delta_s + buf * BR + i, delta + rows.index(R));
            span_s[buf * BR + i] = keys_any(d, rows.token(R), rows.token(R));
          } else {
            lse_s[buf * BR + i] = delta_s[buf * BR + i] = 0.0f;
            span_s[buf * BR + i] = Span{0, 0};
          }
        }
      },
      [&] {
        ka.load(smem_addr(Ks + warp * 16 * LD));
        va.load(smem_addr(Vs + warp * 16 * LD));
      },
      [&](int n, int buf) {
        const int r0 = rlo + n * BR, ta = rows.token(r0), tb = rows.token(min(r0 + BR, rhi) - 1);
        if (ta >= warp_toks.hi || tb < warp_toks.lo) return;  // no row of the tile sees this warp's keys
        const Span all = keys_all(d, ta, tb);
        const bool full = all.lo <= kw && kw + 16 <= all.hi;
        const uint32_t qs = smem_addr(Rs + buf * 2 * BR * LD), dos = qs + BR * LD * 2;
        // S^T = K_w Q^T and dP^T = V_w dO^T: [16 keys][64 rows]; entry (j, u) is key kw + gid + 8 (u / 2), row
        // r0 + 8 j + 2 tig + (u & 1).
        float p[NR][4] = {}, ds[NR][4] = {};
        mma_abt<BR, D, LD>(p, ka, qs);
        mma_abt<BR, D, LD>(ds, va, dos);
        const float* ls = lse_s + buf * BR;
        const float* dls = delta_s + buf * BR;
        const Span* sp = span_s + buf * BR;
#pragma unroll
        for (int j = 0; j < NR; ++j) {
          const int c = 8 * j + 2 * tig;
          const float2 lv = *reinterpret_cast<const float2*>(ls + c), dv2 = *reinterpret_cast<const float2*>(dls + c);
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            const int h = u & 1, key = kw + gid + 8 * (u / 2);
            float x = exp2f(fmaf(p[j][u], scale_log2, -(h ? lv.y : lv.x) * kLog2e));
            if (!full && (key < sp[c + h].lo || key >= sp[c + h].hi)) x = 0.0f;
            p[j][u] = x;
            ds[j][u] = x * (ds[j][u] - (h ? dv2.y : dv2.x));
          }
        }
        uint32_t pa[BR / 16][4], sa[BR / 16][4];
        pack_a<BR>(pa, p);
        pack_a<BR>(sa, ds);
        mma_ab<BR, D, LD>(acc_dv, pa, dos);  // dV_w += P^T dO
        mma_ab<BR, D, LD>(acc_dk, sa, qs);   // dK_w += dS^T Q
      });

  // Every key of the block is written: zeros for keys that no row sees.
  bf16_t* stage = Rs + warp * 16 * LD;  // the row tiles are free after the pipeline's last barrier
  auto key_row = [&](bf16_t* base) {
    return [=](int r) -> bf16_t* { return kw + r < d.k_len ? base + kv_off + (kw + r) * kv_stride : nullptr; };
  };
  store_rows<D, LD>(acc_dk, scale, scale, stage, key_row(dk));
  store_rows<D, LD>(acc_dv, 1.0f, 1.0f, stage, key_row(dv));
}

template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  cudaError_t status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  HSA_CHECK(status == cudaSuccess, "swa_attention: cannot reserve {} bytes of shared memory: {}", bytes,
            cudaGetErrorString(status));
}

Dims device_dims(const SwaDims& s) {
  HSA_CHECK(s.q_len < (1LL << 31) && s.k_len < (1LL << 31) && s.batch < 65536 && s.q_heads < 65536,
            "swa_attention (cuda): dimensions too large (B = {}, Lq = {}, Lk = {}, HQ = {})", s.batch, s.q_len,
            s.k_len, s.q_heads);
  // A window longer than 2^40 positions is unbounded in practice; clamping keeps the tile-range sums in range.
  return {int(s.batch), int(s.q_len), int(s.k_len), int(s.q_heads), int(s.kv_heads),
          (long long)std::min<int64_t>(s.window, int64_t(1) << 40), (long long)(s.q_start - s.k_start)};
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

// Whether the register kernels take these dims: rows of a group and keys as int with room for a tile, and the
// kernel's shared memory on this device.
bool register_path(const Dims& d, size_t smem) {
  const long long rows = (long long)d.q_len * (d.q_heads / d.kv_heads);
  return rows < (1LL << 31) - kRowTile && d.k_len < (1LL << 31) - 2 * kDkvKeys &&
         smem <= size_t(max_smem_optin());
}

unsigned row_tiles(const Dims& d) {
  return unsigned(ceil_div((long long)d.q_len * (d.q_heads / d.kv_heads), kRowTile));
}

template <int D>
void forward_mma(const bf16_t* q, const bf16_t* k, const bf16_t* v, bf16_t* out, float* lse, const Dims& d,
                 double scale) {
  constexpr size_t smem = MmaSmem<D>::fwd;
  allow_smem(swa_fwd_mma_kernel<D>, smem);
  swa_fwd_mma_kernel<D><<<dim3(row_tiles(d), d.kv_heads, d.batch), kMmaThreads, smem, stream()>>>(
      q, k, v, out, lse, d, float(scale * 1.4426950408889634));
  check_launch("swa_forward (mma)");
}

// After the delta kernel.
template <int D>
void backward_mma(const bf16_t* dout, const bf16_t* q, const bf16_t* k, const bf16_t* v, const float* lse,
                  const float* delta, bf16_t* dq, bf16_t* dk, bf16_t* dv, const Dims& d, double scale) {
  const float s = float(scale), sl = float(scale * 1.4426950408889634);
  allow_smem(swa_dq_mma_kernel<D>, MmaSmem<D>::dq);
  swa_dq_mma_kernel<D><<<dim3(row_tiles(d), d.kv_heads, d.batch), kMmaThreads, MmaSmem<D>::dq, stream()>>>(
      dout, q, k, v, lse, delta, dq, d, s, sl);
  check_launch("swa_backward (dq, mma)");
  if (d.k_len == 0) return;
  allow_smem(swa_dkv_mma_kernel<D>, MmaSmem<D>::dkv);
  swa_dkv_mma_kernel<D><<<dim3(unsigned(ceil_div(d.k_len, kDkvKeys)), d.kv_heads, d.batch), kDkvThreads,
                          MmaSmem<D>::dkv, stream()>>>(dout, q, k, v, lse, delta, dk, dv, d, s, sl);
  check_launch("swa_backward (dk, dv, mma)");
}

template <class T, int D>
void forward_impl(const T* q, const T* k, const T* v, T* out, float* lse, const Dims& d, double scale) {
  if constexpr (std::is_same_v<T, bf16_t>)
    if (register_path(d, MmaSmem<D>::fwd)) return forward_mma<D>(q, k, v, out, lse, d, scale);
  constexpr int BQ = Tiles<T>::fwd_q, BK = Tiles<T>::fwd_k;
  using L = FwdLayout<T, D, BQ, BK>;
  auto kernel = swa_forward_kernel<T, D, BQ, BK>;
  allow_smem(kernel, L::bytes);
  dim3 grid((d.q_len + BQ - 1) / BQ, d.q_heads, d.batch);
  kernel<<<grid, kThreads, L::bytes, stream()>>>(q, k, v, out, lse, d, float(scale * 1.4426950408889634));
  check_launch("swa_forward");
}

template <class T, int D>
void backward_impl(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, float* delta,
                   T* dq, T* dk, T* dv, const Dims& d, double scale) {
  constexpr int BQ = Tiles<T>::bwd_q, BK = Tiles<T>::bwd_k;
  using L = BwdLayout<T, D, BQ, BK>;
  const long long rows = (long long)d.batch * d.q_len * d.q_heads;
  swa_delta_kernel<T, D><<<unsigned((rows + kWarps - 1) / kWarps), kThreads, 0, stream()>>>(dout, out, delta, rows);
  check_launch("swa_backward (delta)");
  if constexpr (std::is_same_v<T, bf16_t>)
    if (register_path(d, std::max(MmaSmem<D>::dq, MmaSmem<D>::dkv)))
      return backward_mma<D>(dout, q, k, v, lse, delta, dq, dk, dv, d, scale);
  const float s = float(scale), sl = float(scale * 1.4426950408889634);
  auto dq_kernel = swa_dq_kernel<T, D, BQ, BK>;
  allow_smem(dq_kernel, L::dq_bytes);
  dq_kernel<<<dim3((d.q_len + BQ - 1) / BQ, d.q_heads, d.batch), kThreads, L::dq_bytes, stream()>>>(
      dout, q, k, v, lse, delta, dq, d, s, sl);
  check_launch("swa_backward (dq)");
  if (d.k_len == 0) return;
  auto dkv_kernel = swa_dkv_kernel<T, D, BQ, BK>;
  allow_smem(dkv_kernel, L::dkv_bytes);
  dkv_kernel<<<dim3((d.k_len + BK - 1) / BK, d.kv_heads, d.batch), kThreads, L::dkv_bytes, stream()>>>(
      dout, q, k, v, lse, delta, dk, dv, d, s, sl);
  check_launch("swa_backward (dk, dv)");
}

}  // namespace

template <class T>
void swa_forward(const T* q, const T* k, const T* v, T* out, float* lse, const SwaDims& s, double scale) {
  if (s.batch == 0 || s.q_len == 0 || s.q_heads == 0) return;
  const Dims d = device_dims(s);
  switch (s.head_dim) {
    case 32: return forward_impl<device_t<T>, 32>(dev(q), dev(k), dev(v), dev(out), lse, d, scale);
    case 64: return forward_impl<device_t<T>, 64>(dev(q), dev(k), dev(v), dev(out), lse, d, scale);
    case 128: return forward_impl<device_t<T>, 128>(dev(q), dev(k), dev(v), dev(out), lse, d, scale);
    default: fail("swa_forward: no cuda kernel for head dim {} (32, 64 or 128)", s.head_dim);
  }
}

template <class T>
void swa_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, float* delta,
                  T* dq, T* dk, T* dv, const SwaDims& s, double scale) {
  if (s.batch == 0 || s.q_heads == 0) return;
  if (s.q_len == 0) {  // nothing sees the keys
    const size_t bytes = size_t(s.batch * s.k_len * s.kv_heads * s.head_dim) * sizeof(T);
    if (bytes) {
      cudaMemsetAsync(dk, 0, bytes, stream());
      cudaMemsetAsync(dv, 0, bytes, stream());
      check_launch("swa_backward (zero dk, dv)");
    }
    return;
  }
  const Dims d = device_dims(s);
#define HSA_SWA_BACKWARD(D)                                                                                   \
  backward_impl<device_t<T>, D>(dev(dout), dev(q), dev(k), dev(v), dev(out), lse, delta, dev(dq), dev(dk), dev(dv), d, \
                             scale)
  switch (s.head_dim) {
    case 32: return HSA_SWA_BACKWARD(32);
    case 64: return HSA_SWA_BACKWARD(64);
    case 128: return HSA_SWA_BACKWARD(128);
    default: fail("swa_backward: no cuda kernel for head dim {} (32, 64 or 128)", s.head_dim);
  }
#undef HSA_SWA_BACKWARD
}

template void swa_forward<float>(const float*, const float*, const float*, float*, float*, const SwaDims&,
                                 double);
template void swa_forward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, float*, const SwaDims&, double);
template void swa_backward<float>(const float*, const float*, const float*, const float*, const float*, const float*,
                                  float*, float*, float*, float*, const SwaDims&, double);
template void swa_backward<bf16>(const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, const float*,
                                 float*, bf16*, bf16*, bf16*, const SwaDims&, double);

}  // namespace hsa::cuda
