// CUDA sliding-window attention with GQA (see swa_attention.h for shapes and semantics).
//   q, out, dout, dq [B, Lq, HQ, D]; k, v, dk, dv [B, Lk, H, D]; lse, delta [B, Lq, HQ] f32.
//
// Design (correctness first, tensor cores for bf16; version 2 blocks the WMMA fragments per warp):
// - One block of 256 threads per tile. Tiles are staged in shared memory with padded rows (16 bytes of padding:
//   keeps rows 16-byte aligned for vector loads and WMMA, and shifts banks). Rows past the end of a tensor are
//   zero-filled, so padded products are finite and masked entries are selected away, never multiplied by 0.
// - Products between shared-memory tiles go through one helper, mm(): WMMA bf16 m16n16k16 with f32
//   accumulators for bf16, plain register-blocked FMAs for f32 (TF32 would miss the 1e-5 parity with the CPU).
//   Accumulators live in shared memory between tiles because WMMA's fragment layout is opaque, and the online
//   softmax has to rescale whole rows of the output accumulator.
// - Forward: block = (query tile, query head, batch); walks the key tiles that intersect the tile's window.
//   Softmax runs in the log2 domain (exp2f) with scores pre-multiplied by scale * log2(e).
// - Backward (FA2 split, deterministic): a small kernel for delta = rowsum(dout * out); a dq kernel over query
//   tiles (recomputes S and dP); a dk/dv kernel over key tiles of one KV head that loops over the query tiles
//   seeing them and over the G query heads of the group, so GQA sums need no atomics.
#include "cuda/swa_attention.h"

#include "cuda/kernel_util.cuh"

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

using bf16_t = __nv_bfloat16;
constexpr int kThreads = 256;  // 16 x 16 for the FMA product, 8 warps for WMMA and the softmax rows
constexpr int kWarps = kThreads / 32;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Dims {
  int batch, q_len, k_len, q_heads, kv_heads;
  long long window, rel;  // rel = q_start - k_start: query row i sits at key row i + rel
};

// Row padding in elements: 16 bytes.
template <class T> constexpr int pad() { return int(16 / sizeof(T)); }
constexpr size_t align128(size_t n) { return (n + 127) / 128 * 128; }

// Query row i (key-row coordinates: its own position is key row i + rel) sees key row j.
__device__ __forceinline__ bool visible(const Dims& d, long long i, long long j) {
  const long long t = i + d.rel;
  return i < d.q_len && j < d.k_len && j <= t && t - j < d.window;
}

// C[M][N] (+)= A[M][K] B[K][N] over shared memory, called by all threads of the block (no barrier inside).
// A(m, k) = A[m * lda + k], or A[k * lda + m] when A_COL; B(k, n) = B[k * ldb + n], or B[n * ldb + k] when B_COL.
// C is f32 row-major. f32 inputs: each thread owns a strided 16x16-grid micro-tile of C.
template <int M, int N, int K, bool A_COL, bool B_COL, bool ACC>
__device__ __forceinline__ void mm(float* C, int ldc, const float* A, int lda, const float* B, int ldb) {
  static_assert(M % 16 == 0 && N % 16 == 0, "tile sizes are multiples of 16");
  constexpr int RM = M / 16, RN = N / 16;
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  float acc[RM][RN];
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j) acc[i][j] = ACC ? C[(ty + 16 * i) * ldc + tx + 16 * j] : 0.0f;
#pragma unroll 4
  for (int k = 0; k < K; ++k) {
    float a[RM], b[RN];
#pragma unroll
    for (int i = 0; i < RM; ++i) a[i] = A_COL ? A[k * lda + ty + 16 * i] : A[(ty + 16 * i) * lda + k];
#pragma unroll
    for (int j = 0; j < RN; ++j) b[j] = B_COL ? B[(tx + 16 * j) * ldb + k] : B[k * ldb + tx + 16 * j];
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
      for (int j = 0; j < RN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j) C[(ty + 16 * i) * ldc + tx + 16 * j] = acc[i][j];
}

// bf16 inputs: tensor cores through WMMA. Each warp owns a WM x WN block of 16x16 output fragments and reuses
// every A fragment it loads WN times and every B fragment WM times (version 1 gave each warp single fragments,
// loading both operands once per mma; shared-memory traffic is what limits these kernels).
template <int M, int N, int K, bool A_COL, bool B_COL, bool ACC>
__device__ __forceinline__ void mm(float* C, int ldc, const bf16_t* A, int lda, const bf16_t* B, int ldb) {
  namespace wmma = nvcuda::wmma;
  using LA = std::conditional_t<A_COL, wmma::col_major, wmma::row_major>;
  using LB = std::conditional_t<B_COL, wmma::col_major, wmma::row_major>;
  static_assert(M % 16 == 0 && N % 16 == 0 && K % 16 == 0, "tile sizes are multiples of 16");
  constexpr int FM = M / 16, FN = N / 16, PER = FM * FN / kWarps;
  static_assert(PER >= 1 && FM * FN % kWarps == 0, "every warp gets the same number of fragments");
  constexpr int WM = (PER >= 4 && FM % 2 == 0) ? 2 : 1, WN = PER / WM;
  static_assert(FM % WM == 0 && FN % WN == 0 && (FM / WM) * (FN / WN) == kWarps, "warp blocks tile C");
  const int warp = threadIdx.x / 32;
  const int fm0 = (warp / (FN / WN)) * WM, fn0 = (warp % (FN / WN)) * WN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[WM][WN];
#pragma unroll
  for (int x = 0; x < WM; ++x)
#pragma unroll
    for (int y = 0; y < WN; ++y) {
      if (ACC)
        wmma::load_matrix_sync(c[x][y], C + (fm0 + x) * 16 * ldc + (fn0 + y) * 16, ldc, wmma::mem_row_major);
      else
        wmma::fill_fragment(c[x][y], 0.0f);
    }
#pragma unroll
  for (int kk = 0; kk < K; kk += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16_t, LA> a[WM];
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16_t, LB> b[WN];
#pragma unroll
    for (int x = 0; x < WM; ++x) {
      const int fm = fm0 + x;
      wmma::load_matrix_sync(a[x], A_COL ? A + kk * lda + fm * 16 : A + fm * 16 * lda + kk, lda);
    }
#pragma unroll
    for (int y = 0; y < WN; ++y) {
      const int fn = fn0 + y;
      wmma::load_matrix_sync(b[y], B_COL ? B + fn * 16 * ldb + kk : B + kk * ldb + fn * 16, ldb);
    }
#pragma unroll
    for (int x = 0; x < WM; ++x)
#pragma unroll
      for (int y = 0; y < WN; ++y) wmma::mma_sync(c[x][y], a[x], b[y], c[x][y]);
  }
#pragma unroll
  for (int x = 0; x < WM; ++x)
#pragma unroll
    for (int y = 0; y < WN; ++y)
      wmma::store_matrix_sync(C + (fm0 + x) * 16 * ldc + (fn0 + y) * 16, c[x][y], ldc, wmma::mem_row_major);
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
    mm<BQ, BK, D, false, true, false>(ss, L::LDS, qs, L::LDT, ks, L::LDT);
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
    mm<BQ, D, BK, false, false, true>(os, L::LDO, ps, L::LDP, vs, L::LDT);
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
  mm<BQ, BK, D, false, true, false>(ss, L::LDS, qs, L::LDT, ks, L::LDT);
  mm<BQ, BK, D, false, true, false>(dps, L::LDS, dos, L::LDT, vs, L::LDT);
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
    mm<BQ, D, BK, false, false, true>(dqs, L::LDO, dss, L::LDP, ks, L::LDT);  // dq += dS k
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
      mm<BK, D, BQ, true, false, true>(dvs, L::LDO, ps, L::LDP, dos, L::LDT);  // dv += P^T dout
      mm<BK, D, BQ, true, false, true>(dks, L::LDO, dss, L::LDP, qs, L::LDT);  // dk += dS^T q
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

template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  cudaError_t status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  HSA_CHECK(status == cudaSuccess, "swa_attention: cannot reserve {} bytes of shared memory: {}", bytes,
            cudaGetErrorString(status));
}

Dims device_dims(const cpu::SwaDims& s) {
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

template <class T, int D>
void forward_impl(const T* q, const T* k, const T* v, T* out, float* lse, const Dims& d, double scale) {
  constexpr int BQ = Tiles<T>::fwd_q, BK = Tiles<T>::fwd_k;
  using L = FwdLayout<T, D, BQ, BK>;
  auto kernel = swa_forward_kernel<T, D, BQ, BK>;
  allow_smem(kernel, L::bytes);
  dim3 grid((d.q_len + BQ - 1) / BQ, d.q_heads, d.batch);
  kernel<<<grid, kThreads, L::bytes>>>(q, k, v, out, lse, d, float(scale * 1.4426950408889634));
  check_launch("swa_forward");
}

template <class T, int D>
void backward_impl(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, float* delta,
                   T* dq, T* dk, T* dv, const Dims& d, double scale) {
  constexpr int BQ = Tiles<T>::bwd_q, BK = Tiles<T>::bwd_k;
  using L = BwdLayout<T, D, BQ, BK>;
  const long long rows = (long long)d.batch * d.q_len * d.q_heads;
  swa_delta_kernel<T, D><<<unsigned((rows + kWarps - 1) / kWarps), kThreads>>>(dout, out, delta, rows);
  check_launch("swa_backward (delta)");
  const float s = float(scale), sl = float(scale * 1.4426950408889634);
  auto dq_kernel = swa_dq_kernel<T, D, BQ, BK>;
  allow_smem(dq_kernel, L::dq_bytes);
  dq_kernel<<<dim3((d.q_len + BQ - 1) / BQ, d.q_heads, d.batch), kThreads, L::dq_bytes>>>(dout, q, k, v, lse, delta,
                                                                                        dq, d, s, sl);
  check_launch("swa_backward (dq)");
  if (d.k_len == 0) return;
  auto dkv_kernel = swa_dkv_kernel<T, D, BQ, BK>;
  allow_smem(dkv_kernel, L::dkv_bytes);
  dkv_kernel<<<dim3((d.k_len + BK - 1) / BK, d.kv_heads, d.batch), kThreads, L::dkv_bytes>>>(
      dout, q, k, v, lse, delta, dk, dv, d, s, sl);
  check_launch("swa_backward (dk, dv)");
}

}  // namespace

template <class T>
void swa_forward(const T* q, const T* k, const T* v, T* out, float* lse, const cpu::SwaDims& s, double scale) {
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
                  T* dq, T* dk, T* dv, const cpu::SwaDims& s, double scale) {
  if (s.batch == 0 || s.q_heads == 0) return;
  if (s.q_len == 0) {  // nothing sees the keys
    const size_t bytes = size_t(s.batch * s.k_len * s.kv_heads * s.head_dim) * sizeof(T);
    if (bytes) {
      cudaMemsetAsync(dk, 0, bytes);
      cudaMemsetAsync(dv, 0, bytes);
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

template void swa_forward<float>(const float*, const float*, const float*, float*, float*, const cpu::SwaDims&,
                                 double);
template void swa_forward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, float*, const cpu::SwaDims&, double);
template void swa_backward<float>(const float*, const float*, const float*, const float*, const float*, const float*,
                                  float*, float*, float*, float*, const cpu::SwaDims&, double);
template void swa_backward<bf16>(const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, const float*,
                                 float*, bf16*, bf16*, bf16*, const cpu::SwaDims&, double);

}  // namespace hsa::cuda
