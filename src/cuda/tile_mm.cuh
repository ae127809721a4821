// Block-level matrix products over tiles in shared memory, for the kernels that stage their operands there (the
// generic HSA chunk-attention kernels and the WMMA sliding-window kernels): C (f32, row-major, ldc) = A B, or
// C + A B. Called by all kTileThreads threads of the block; no barrier inside.
//
// Operand layouts are template flags: A(m, k) = A[m * lda + k], or A[k * lda + m] when A_COL; B(k, n) =
// B[k * ldb + n], or B[n * ldb + k] when B_COL.
// bf16: tensor cores through WMMA 16x16x16, f32 accumulation. f32: CUDA-core FMAs in full f32 precision (TF32
// would miss the 1e-5 parity with the CPU). Every output element is one chain of products in k order, so the
// result does not depend on how the elements are spread over threads and warps.
#pragma once
#include <cuda_bf16.h>
#include <mma.h>

#include <type_traits>

namespace hsa::cuda::detail {

constexpr int kTileThreads = 256;

// Shared-memory row padding: 16 bytes. Keeps rows 16-byte aligned for vector loads and WMMA pointers 32-byte
// aligned on 16-row boundaries, and moves consecutive rows to different banks.
template <class T> constexpr int pad() { return int(16 / sizeof(T)); }

// One warp: the WM x WN block of 16x16 fragments of C at fragment row fm0, column fn0. UNROLL: unroll the k loop
// fully (K known at compile time), else leave it to the compiler.
template <bool A_COL, bool B_COL, int WM, int WN, bool UNROLL>
__device__ __forceinline__ void wmma_block(float* C, int ldc, const __nv_bfloat16* A, int lda, const __nv_bfloat16* B,
                                           int ldb, int fm0, int fn0, int K, bool acc) {
  namespace wmma = nvcuda::wmma;
  using LA = std::conditional_t<A_COL, wmma::col_major, wmma::row_major>;
  using LB = std::conditional_t<B_COL, wmma::col_major, wmma::row_major>;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[WM][WN];
#pragma unroll
  for (int x = 0; x < WM; ++x)
#pragma unroll
    for (int y = 0; y < WN; ++y) {
      if (acc)
        wmma::load_matrix_sync(c[x][y], C + (fm0 + x) * 16 * ldc + (fn0 + y) * 16, ldc, wmma::mem_row_major);
      else
        wmma::fill_fragment(c[x][y], 0.0f);
    }
  auto step = [&](int kk) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, LA> a[WM];
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, LB> b[WN];
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
  };
  if constexpr (UNROLL) {
#pragma unroll
    for (int kk = 0; kk < K; kk += 16) step(kk);
  } else {
    for (int kk = 0; kk < K; kk += 16) step(kk);
  }
#pragma unroll
  for (int x = 0; x < WM; ++x)
#pragma unroll
    for (int y = 0; y < WN; ++y)
      wmma::store_matrix_sync(C + (fm0 + x) * 16 * ldc + (fn0 + y) * 16, c[x][y], ldc, wmma::mem_row_major);
}

// One thread: acc[i][j] += sum over k in order of A(m0 + sm i, k) B(k, n0 + sn j), one fmaf per product. UNROLL:
// unroll the k loop by 4, else leave it to the compiler.
template <bool A_COL, bool B_COL, int RM, int RN, bool UNROLL>
__device__ __forceinline__ void fma_block(float (&acc)[RM][RN], const float* A, int lda, const float* B, int ldb,
                                          int m0, int sm, int n0, int sn, int K) {
  auto step = [&](int k) {
    float a[RM], b[RN];
#pragma unroll
    for (int i = 0; i < RM; ++i) a[i] = A_COL ? A[k * lda + m0 + sm * i] : A[(m0 + sm * i) * lda + k];
#pragma unroll
    for (int j = 0; j < RN; ++j) b[j] = B_COL ? B[(n0 + sn * j) * ldb + k] : B[k * ldb + n0 + sn * j];
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
      for (int j = 0; j < RN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  };
  if constexpr (UNROLL) {
#pragma unroll 4
    for (int k = 0; k < K; ++k) step(k);
  } else {
    for (int k = 0; k < K; ++k) step(k);
  }
}

// ---- shapes known at compile time (M, N multiples of 16): register-blocked ----
// bf16: each warp owns a WM x WN block of fragments and reuses every A fragment it loads WN times and every B
// fragment WM times (shared-memory traffic is what limits these kernels). f32: thread (ty, tx) of a 16 x 16 grid
// owns the elements (ty + 16 i, tx + 16 j); with ACC the chain of each element starts from C.
template <int M, int N, int K, bool A_COL, bool B_COL, bool ACC>
__device__ __forceinline__ void tile_mm(float* C, int ldc, const __nv_bfloat16* A, int lda, const __nv_bfloat16* B,
                                        int ldb) {
  static_assert(M % 16 == 0 && N % 16 == 0 && K % 16 == 0, "tile sizes are multiples of 16");
  constexpr int kWarps = kTileThreads / 32, FM = M / 16, FN = N / 16, PER = FM * FN / kWarps;
  static_assert(PER >= 1 && FM * FN % kWarps == 0, "every warp gets the same number of fragments");
  constexpr int WM = (PER >= 4 && FM % 2 == 0) ? 2 : 1, WN = PER / WM;
  static_assert(FM % WM == 0 && FN % WN == 0 && (FM / WM) * (FN / WN) == kWarps, "warp blocks tile C");
  const int warp = threadIdx.x / 32;
  wmma_block<A_COL, B_COL, WM, WN, true>(C, ldc, A, lda, B, ldb, (warp / (FN / WN)) * WM, (warp % (FN / WN)) * WN, K,
                                   ACC);
}

template <int M, int N, int K, bool A_COL, bool B_COL, bool ACC>
__device__ __forceinline__ void tile_mm(float* C, int ldc, const float* A, int lda, const float* B, int ldb) {
  static_assert(M % 16 == 0 && N % 16 == 0, "tile sizes are multiples of 16");
  static_assert(kTileThreads == 256, "a 16 x 16 grid of threads");
  constexpr int RM = M / 16, RN = N / 16;
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  float acc[RM][RN];
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j) acc[i][j] = ACC ? C[(ty + 16 * i) * ldc + tx + 16 * j] : 0.0f;
  fma_block<A_COL, B_COL, RM, RN, true>(acc, A, lda, B, ldb, ty, 16, tx, 16, K);
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j) C[(ty + 16 * i) * ldc + tx + 16 * j] = acc[i][j];
}

// ---- shapes known only at run time (M, N, K multiples of 16): one output unit at a time ----
// bf16: the fragments of C go to the warps round-robin. f32: the elements go to the threads round-robin; with acc
// the element's sum of products is added to C at the end.
template <bool A_COL, bool B_COL>
__device__ void tile_mm_any(float* C, int ldc, const __nv_bfloat16* A, int lda, const __nv_bfloat16* B, int ldb,
                            int M, int N, int K, bool acc) {
  const int warp = threadIdx.x / 32, tn = N / 16, tiles = (M / 16) * tn;
  for (int tile = warp; tile < tiles; tile += kTileThreads / 32)
    wmma_block<A_COL, B_COL, 1, 1, false>(C, ldc, A, lda, B, ldb, tile / tn, tile % tn, K, acc);
}

template <bool A_COL, bool B_COL>
__device__ void tile_mm_any(float* C, int ldc, const float* A, int lda, const float* B, int ldb, int M, int N, int K,
                            bool acc) {
  for (int idx = threadIdx.x; idx < M * N; idx += kTileThreads) {
    const int m = idx / N, n = idx % N;
    float s[1][1] = {{0.0f}};
    fma_block<A_COL, B_COL, 1, 1, false>(s, A, lda, B, ldb, m, 0, n, 0, K);
    C[m * ldc + n] = acc ? C[m * ldc + n] + s[0][0] : s[0][0];
  }
}

}  // namespace hsa::cuda::detail
