// Grouped GEMM sized on the device (see grouped_gemm.h for the contract).
//
// Design. One kernel template, grouped_gemm_kernel<T, kGrouping, kTransB>, computes one BM x BN tile of one
// group's C per block. The grouping only decides which tile a block owns and where its group's operands start:
//   rows: grid.x holds ceil(max_rows / BM) + G tile slots, enough for sum_g ceil(rows_g / BM) whatever the split.
//         tile_plan_kernel turns the device offsets into first_tile[g] (a scan of ceil(rows_g / BM)); a block
//         finds its group by binary search over it and exits at once when its slot is past the last real tile.
//         grid.y: the N tiles. A = the group's rows (row-major), B_g = a per-group weight matrix.
//   k:    grid.x, grid.y: the M and N tiles of C_g, grid.z: the group; the reduction length is rows_g, read on the
//         device (0: the tile is just beta * C). A is read transposed: it is stored [rows, m].
// The main loop is shared by both dtypes: BK-deep slices of op(A) and op(B) go through a two-stage cp.async
// pipeline into shared memory, each kept in its global layout (SmemTile: rows of 16-byte chunks plus one chunk of
// padding), zero-filled outside the matrix. The dtype only picks the tile shape, the inner product on a staged
// slice and where each accumulator lands (TileMath<T>):
//   bf16: 128 x 128 x 32 tiles, 256 threads = 8 warps as 2 (M) x 4 (N), each warp 64 x 32 of C = 4 x 4 mma.sync
//         m16n8k16 tiles with f32 accumulators in registers; fragments come from ldmatrix, .trans for an operand
//         stored with M or N contiguous. 40 KiB of shared memory (2 stages).
//   f32:  64 x 64 x 16 tiles, 256 threads in 16 x 16, each owning 4 x 4 elements (rows ty + 16 i, cols tx + 16 j),
//         plain fmaf: the same f32 products the CPU's sgemm sums, in another order. 20 KiB of shared memory.
// Version 1. Not yet tried: a third pipeline stage, 64-wide N tiles for narrow outputs, paired bf16 stores.
#include "cuda/grouped_gemm.h"

#include "cuda/kernel_util.cuh"
#include "cuda/mma_sync.cuh"

#include <hsa/error.h>

#include <cub/block/block_scan.cuh>

#include <type_traits>

namespace hsa::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;  // both dtypes
constexpr int kPlanThreads = 256;

// ---- per-dtype tile math ------------------------------------------------------------------------------------------

template <class T> struct TileMath;

template <> struct TileMath<__nv_bfloat16> {
  static constexpr int kBM = 128, kBN = 128, kBK = 32;
  static constexpr int kWarpsN = 4, kWarpM = 64, kWarpN = 32;  // 2 x 4 warps
  static constexpr int kMi = kWarpM / 16, kNi = kWarpN / 8;    // mma tiles per warp
  struct Acc {
    float v[kMi][kNi][4] = {};
  };

  // acc += the staged slice: sa holds op(A)[BM, BK] as [BM][lda] (or [BK][lda] when kTransA), sb op(B)[BK, BN] as
  // [BN][ldb] when kTransB (stored [n, k]) or [BK][ldb]. ldmatrix lane roles as in mma_sync.cuh: lane l addresses
  // row l % 8 of matrix l / 8.
  template <bool kTransA, bool kTransB, int kLdA, int kLdB>
  __device__ static void multiply(Acc& acc, const __nv_bfloat16* sa, const __nv_bfloat16* sb) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / kWarpsN) * kWarpM, wn = (warp % kWarpsN) * kWarpN;
    const int mat = lane / 8, row = lane % 8;
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 16) {
      uint32_t a[kMi][4], b[kNi][2];
#pragma unroll
      for (int mi = 0; mi < kMi; ++mi) {
        const int m = wm + mi * 16;
        if constexpr (kTransA)  // stored [k][m]: matrices (k 0-7, m 0-7), (k 0-7, m 8-15), (k 8-15, m 0-7), ...
          ldmatrix_x4_trans(a[mi], sa + (ks + (mat / 2) * 8 + row) * kLdA + m + (mat % 2) * 8);
        else  // stored [m][k]: matrices (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15)
          ldmatrix_x4(a[mi], sa + (m + lane % 16) * kLdA + ks + (lane / 16) * 8);
      }
#pragma unroll
      for (int ni = 0; ni < kNi; ni += 2) {  // two n8 tiles per ldmatrix: (ni, k 0-7), (ni, k 8-15), (ni + 1, ...)
        uint32_t r[4];
        const int n = wn + (ni + mat / 2) * 8;
        if constexpr (kTransB)  // stored [n][k]
          ldmatrix_x4(r, sb + (n + row) * kLdB + ks + (mat % 2) * 8);
        else  // stored [k][n]
          ldmatrix_x4_trans(r, sb + (ks + (mat % 2) * 8 + row) * kLdB + n);
        b[ni][0] = r[0], b[ni][1] = r[1], b[ni + 1][0] = r[2], b[ni + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < kMi; ++mi)
#pragma unroll
        for (int ni = 0; ni < kNi; ++ni) mma_bf16_16816(acc.v[mi][ni], a[mi], b[ni][0], b[ni][1]);
    }
  }

  // out(row, col, value) for every accumulator, (row, col) inside the BM x BN tile.
  template <class Out> __device__ static void store(const Acc& acc, Out out) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / kWarpsN) * kWarpM, wn = (warp % kWarpsN) * kWarpN;
    const int group = lane / 4, tig = lane % 4;
#pragma unroll
    for (int mi = 0; mi < kMi; ++mi)
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          out(wm + mi * 16 + group + (i / 2) * 8, wn + ni * 8 + 2 * tig + i % 2, acc.v[mi][ni][i]);
  }
};

template <> struct TileMath<float> {
  static constexpr int kBM = 64, kBN = 64, kBK = 16;
  static constexpr int kPer = 4;  // rows (and columns) per thread, 16 apart
  struct Acc {
    float v[kPer][kPer] = {};
  };

  template <bool kTransA, bool kTransB, int kLdA, int kLdB>
  __device__ static void multiply(Acc& acc, const float* sa, const float* sb) {
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float a[kPer], b[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int m = ty + 16 * i, n = tx + 16 * i;
        a[i] = kTransA ? sa[kk * kLdA + m] : sa[m * kLdA + kk];
        b[i] = kTransB ? sb[n * kLdB + kk] : sb[kk * kLdB + n];
      }
#pragma unroll
      for (int i = 0; i < kPer; ++i)
#pragma unroll
        for (int j = 0; j < kPer; ++j) acc.v[i][j] = fmaf(a[i], b[j], acc.v[i][j]);
    }
  }

  template <class Out> __device__ static void store(const Acc& acc, Out out) {
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
#pragma unroll
      for (int j = 0; j < kPer; ++j) out(ty + 16 * i, tx + 16 * j, acc.v[i][j]);
  }
};

// ---- shared-memory staging ------------------------------------------------------------------------------------

// One operand slice in shared memory, in its global layout: kOuter stored rows of kInner elements, plus one
// 16-byte chunk of padding per row (rows stay 16-byte aligned for cp.async and ldmatrix, and the 8 rows of an
// ldmatrix phase fall on distinct banks: 80- and 272-byte strides).
template <class T, int kOuter, int kInner> struct SmemTile {
  static constexpr int kVec = 16 / int(sizeof(T));  // elements per chunk
  static constexpr int kLd = kInner + kVec;
  static constexpr int kSize = kOuter * kLd;
  static_assert(kInner % kVec == 0 && (kOuter * kInner / kVec) % kThreads == 0, "whole chunks per thread");

  // Stages the stored block src[0, kOuter) x [0, kInner) (row stride ld) into s. Zero outside rows_left x cols_left
  // (what of the block lies inside the matrix; may be <= 0). vec: 16-byte chunks of src are 16-byte aligned.
  __device__ static void load(T* s, const T* src, int64_t ld, int64_t rows_left, int64_t cols_left, bool vec) {
    constexpr int kChunksPerRow = kInner / kVec;
#pragma unroll
    for (int i = 0; i < kOuter * kChunksPerRow / kThreads; ++i) {
      const int chunk = threadIdx.x + i * kThreads;
      const int r = chunk / kChunksPerRow, col = (chunk % kChunksPerRow) * kVec;
      T* dst = s + r * kLd + col;
      if (r < rows_left && col < cols_left) {
        const T* from = src + r * ld + col;
        if (vec && col + kVec <= cols_left) {
          cp_async_16(dst, from);
        } else {
#pragma unroll
          for (int e = 0; e < kVec; ++e) dst[e] = col + e < cols_left ? from[e] : from_f32<T>(0.f);
        }
      } else {
        *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
      }
    }
  }
};

// ---- the kernel ---------------------------------------------------------------------------------------------------

enum class Grouping { rows, k };

template <class T> struct GroupedArgs {
  const int32_t* offsets;     // [G + 1]
  const int32_t* first_tile;  // [G + 1], rows grouping only
  int64_t groups;
  int64_t m, n, k;  // k grouping: m (rows of C_g), n; rows grouping: n, k
  const T* a;
  int64_t lda;
  const T* b;
  int64_t ldb, b_stride;  // b_stride: rows grouping
  T* c;
  int64_t ldc, c_stride;  // c_stride: k grouping
  float beta;
  bool vec_a, vec_b;
};

// first_tile[g] = sum_{h < g} ceil(rows_h / kBM) for g in [0, G]: the tile slot where group g starts. One block.
template <int kBM> __global__ void tile_plan_kernel(const int32_t* offsets, int64_t groups, int32_t* first_tile) {
  using Scan = cub::BlockScan<int32_t, kPlanThreads>;
  __shared__ typename Scan::TempStorage scan;
  int32_t carry = 0;
  for (int64_t base = 0; base < groups; base += kPlanThreads) {
    const int64_t g = base + threadIdx.x;
    const int32_t rows = g < groups ? max(0, offsets[g + 1] - offsets[g]) : 0;
    int32_t first = 0, total = 0;
    Scan(scan).ExclusiveSum((rows + kBM - 1) / kBM, first, total);
    if (g < groups) first_tile[g] = carry + first;
    carry += total;
    __syncthreads();  // scan storage is reused
  }
  if (threadIdx.x == 0) first_tile[groups] = carry;
}

// a [M, K] x b [K, N] shapes in the comments below mean op(A), op(B) of this block's group.
template <class T, Grouping kGrouping, bool kTransB>
__global__ void __launch_bounds__(kThreads) grouped_gemm_kernel(GroupedArgs<T> p) {
  using Math = TileMath<T>;
  constexpr int kBM = Math::kBM, kBN = Math::kBN, kBK = Math::kBK;
  constexpr bool kTransA = kGrouping == Grouping::k;
  using TileA = std::conditional_t<kTransA, SmemTile<T, kBK, kBM>, SmemTile<T, kBM, kBK>>;
  using TileB = std::conditional_t<kTransB, SmemTile<T, kBN, kBK>, SmemTile<T, kBK, kBN>>;

  // This block's group: operand origins, rows of C (m_size) and the reduction length (k_size).
  const T *a, *b;
  T* c;
  int64_t m0, m_size, k_size;
  if constexpr (kGrouping == Grouping::rows) {
    const int32_t slot = int32_t(blockIdx.x);
    if (slot >= p.first_tile[p.groups]) return;
    int64_t lo = 0, hi = p.groups - 1;  // the last group starting at or before the slot (it is not empty)
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (p.first_tile[mid] <= slot) lo = mid;
      else hi = mid - 1;
    }
    const int64_t row0 = p.offsets[lo];
    m0 = int64_t(slot - p.first_tile[lo]) * kBM;
    m_size = p.offsets[lo + 1] - row0;
    k_size = p.k;
    a = p.a + row0 * p.lda;
    b = p.b + lo * p.b_stride;
    c = p.c + row0 * p.ldc;
  } else {
    const int64_t g = blockIdx.z, row0 = p.offsets[g];
    m0 = int64_t(blockIdx.x) * kBM;
    m_size = p.m;
    k_size = p.offsets[g + 1] - row0;
    a = p.a + row0 * p.lda;
    b = p.b + row0 * p.ldb;
    c = p.c + g * p.c_stride;
  }
  const int64_t n0 = int64_t(blockIdx.y) * kBN;

  __shared__ __align__(16) T smem[2 * (TileA::kSize + TileB::kSize)];
  auto stage_a = [&](int s) { return smem + s * (TileA::kSize + TileB::kSize); };
  auto stage_b = [&](int s) { return stage_a(s) + TileA::kSize; };
  auto load = [&](int s, int64_t k0) {
    if constexpr (kTransA)  // stored [k, m]
      TileA::load(stage_a(s), a + k0 * p.lda + m0, p.lda, k_size - k0, m_size - m0, p.vec_a);
    else
      TileA::load(stage_a(s), a + m0 * p.lda + k0, p.lda, m_size - m0, k_size - k0, p.vec_a);
    if constexpr (kTransB)  // stored [n, k]
      TileB::load(stage_b(s), b + n0 * p.ldb + k0, p.ldb, p.n - n0, k_size - k0, p.vec_b);
    else
      TileB::load(stage_b(s), b + k0 * p.ldb + n0, p.ldb, k_size - k0, p.n - n0, p.vec_b);
  };

  typename Math::Acc acc;
  const int64_t k_tiles = k_size > 0 ? (k_size + kBK - 1) / kBK : 0;
  if (k_tiles > 0) load(0, 0);
  cp_async_commit();
  for (int64_t t = 0; t < k_tiles; ++t) {
    if (t + 1 < k_tiles) load(int((t + 1) & 1), (t + 1) * kBK);
    cp_async_commit();   // possibly empty: one group per iteration
    cp_async_wait<1>();  // slice t has landed (this thread's part)
    __syncthreads();     // ... and everyone's, per-element stores included
    Math::template multiply<kTransA, kTransB, TileA::kLd, TileB::kLd>(acc, stage_a(int(t & 1)), stage_b(int(t & 1)));
    __syncthreads();  // the next iteration overwrites this stage
  }

  const int64_t rows = m_size - m0, cols = p.n - n0;
  T* c0 = c + m0 * p.ldc + n0;
  Math::store(acc, [&](int r, int col, float v) {
    if (r >= rows || col >= cols) return;
    T* out = c0 + r * p.ldc + col;
    *out = from_f32<T>(p.beta == 0.f ? v : v + p.beta * to_f32(*out));
  });
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// cp.async needs every 16-byte chunk it copies aligned: the base and every row (and group) stride.
template <class T> bool vec_ok(const T* base, int64_t ld, int64_t stride = 0) {
  const int64_t bytes = int64_t(sizeof(T));
  return reinterpret_cast<uintptr_t>(base) % 16 == 0 && (ld * bytes) % 16 == 0 && (stride * bytes) % 16 == 0;
}

template <class D, Grouping kGrouping, bool kTransB> void launch(dim3 grid, const GroupedArgs<D>& p) {
  grouped_gemm_kernel<D, kGrouping, kTransB><<<grid, kThreads, 0, stream()>>>(p);
  check_launch("grouped_gemm_kernel");
}

}  // namespace

template <class T>
void grouped_gemm_rows(const int32_t* offsets, int64_t groups, int64_t max_rows, int64_t n, int64_t k, const T* a,
                       int64_t lda, const T* b, int64_t ldb, int64_t b_stride, bool trans_b, float beta, T* c,
                       int64_t ldc) {
  HSA_CHECK(groups >= 0 && max_rows >= 0 && n >= 0 && k >= 0,
            "grouped_gemm_rows: negative size (groups {}, max_rows {}, n {}, k {})", groups, max_rows, n, k);
  if (groups == 0 || max_rows == 0 || n == 0) return;
  using D = device_t<T>;
  using Math = TileMath<D>;
  const int64_t slots = ceil_div(max_rows, Math::kBM) + groups, n_tiles = ceil_div(n, Math::kBN);
  HSA_CHECK(slots < INT32_MAX && n_tiles <= 65535,
            "grouped_gemm_rows: {} row tiles (max_rows {}, {} groups) or {} column tiles (n {}) exceed the grid",
            slots, max_rows, groups, n_tiles, n);
  DeviceBuffer<int32_t> first_tile(groups + 1);
  tile_plan_kernel<Math::kBM><<<1, kPlanThreads, 0, stream()>>>(offsets, groups, first_tile.get());
  check_launch("tile_plan_kernel");
  const GroupedArgs<D> p{offsets, first_tile.get(), groups, 0, n, k, dev(a), lda, dev(b), ldb, b_stride, dev(c), ldc,
                         0, beta, vec_ok(a, lda), vec_ok(b, ldb, b_stride)};
  const dim3 grid(static_cast<unsigned>(slots), static_cast<unsigned>(n_tiles));
  if (trans_b)
    launch<D, Grouping::rows, true>(grid, p);
  else
    launch<D, Grouping::rows, false>(grid, p);
}

template <class T>
void grouped_gemm_k(const int32_t* offsets, int64_t groups, int64_t m, int64_t n, const T* a, int64_t lda,
                    const T* b, int64_t ldb, float beta, T* c, int64_t ldc, int64_t c_stride) {
  HSA_CHECK(groups >= 0 && m >= 0 && n >= 0, "grouped_gemm_k: negative size (groups {}, m {}, n {})", groups, m, n);
  if (groups == 0 || m == 0 || n == 0) return;
  using D = device_t<T>;
  using Math = TileMath<D>;
  const int64_t m_tiles = ceil_div(m, Math::kBM), n_tiles = ceil_div(n, Math::kBN);
  HSA_CHECK(m_tiles < INT32_MAX && n_tiles <= 65535 && groups <= 65535,
            "grouped_gemm_k: {} x {} tiles of {} groups (m {}, n {}) exceed the grid", m_tiles, n_tiles, groups, m, n);
  const GroupedArgs<D> p{offsets, nullptr, groups, m, n, 0, dev(a), lda, dev(b), ldb, 0, dev(c), ldc, c_stride,
                         beta, vec_ok(a, lda), vec_ok(b, ldb)};
  launch<D, Grouping::k, false>(dim3(unsigned(m_tiles), unsigned(n_tiles), unsigned(groups)), p);
}

#define HSA_GROUPED_GEMM_INSTANTIATE(T)                                                                              \
  template void grouped_gemm_rows<T>(const int32_t*, int64_t, int64_t, int64_t, int64_t, const T*, int64_t,         \
                                     const T*, int64_t, int64_t, bool, float, T*, int64_t);                          \
  template void grouped_gemm_k<T>(const int32_t*, int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t,  \
                                  float, T*, int64_t, int64_t);
HSA_GROUPED_GEMM_INSTANTIATE(float)
HSA_GROUPED_GEMM_INSTANTIATE(bf16)
#undef HSA_GROUPED_GEMM_INSTANTIATE

}  // namespace hsa::cuda
