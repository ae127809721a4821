// Grouped GEMM sized on the device (see grouped_gemm.h for the contract).
//
// Design. One kernel template, grouped_gemm_kernel<T, kGrouping, kTransB>, computes one BM x BN tile of one
// group's C per block. The grouping only decides which tile a block owns and where its group's operands start:
//   rows: grid.x holds ceil(max_rows / BM) + G tile slots, enough for sum_g ceil(rows_g / BM) whatever the split.
//         tile_plan_kernel turns the device offsets into first_tile[g] (a scan of ceil(rows_g / BM)); a block
//         finds its group by binary search over it and exits at once when its slot is past the last real tile.
//         grid.y: the N tiles. A = the group's rows (row-major), B_g = a per-group weight matrix.
//   k:    grid.x, grid.y: the M and N tiles of C_g, grid.z: group x split. Each group's reduction (its rows_g rows,
//         read on the device) is cut into `splits` ranges of whole BK slices, one per block; with more than one
//         split the blocks write f32 partials [G, splits, m, n] that split_reduce_kernel sums in split order and
//         applies beta to (deterministic, no atomics). A group with no rows gives zero partials: C_g = beta * C_g.
//         A is read transposed: it is stored [rows, m]. The host picks splits so that the tiles fill the GPU's
//         resident block slots 2-3 times over (one block per tile gave 144 blocks on 132 SMs: a second, nearly
//         empty wave, and every block reducing ~4096 rows alone).
// The main loop is shared by both dtypes: BK-deep slices of op(A) and op(B) go through a kStages-deep cp.async
// pipeline (one barrier per slice) into dynamic shared memory, each kept in its global layout (SmemTile: rows of
// 16-byte chunks plus one chunk of padding, so the 8 row addresses of every ldmatrix phase, plain or .trans, hit
// distinct banks), zero-filled outside the matrix. The dtype only picks the tile shape, the pipeline depth, the
// inner product on a staged slice and where each accumulator lands (TileMath<T>):
//   bf16: 128 x 128 x 32 tiles, 4 stages, 256 threads = 8 warps as 2 (M) x 4 (N), each warp 64 x 32 of C = 4 x 4
//         mma.sync m16n8k16 tiles with f32 accumulators in registers; fragments come from ldmatrix, .trans for an
//         operand stored with M or N contiguous (B fragments of a k-step first, then A one m16 tile at a time).
//         68-80 KiB of shared memory and <= 128 registers (no spills): 2 blocks per SM. C is written in bf16
//         pairs (32-bit stores) where the tile origin and row stride allow.
//   f32:  64 x 64 x 16 tiles, 3 stages, 256 threads in 16 x 16, each owning 4 x 4 elements (rows ty + 16 i, cols
//         tx + 16 j), plain fmaf: the same f32 products the CPU's sgemm sums, in another order. 26-30 KiB.
// Version 1: 2 stages, 40 KiB static shared memory, 161 registers (1 block per SM), no split of the k grouping,
// per-element bf16 stores (its ncu profile is in docs/results.md).
// Version 2 (this): the above. Not yet tried: 16-byte C stores through shared memory, one tile plan per routing
// (tile_plan_kernel runs per grouped_gemm_rows call), 128 x 64 tiles for narrow outputs.
#include "cuda/grouped_gemm.h"

#include "cuda/kernel_util.cuh"
#include "cuda/mma_sync.cuh"

#include <hsa/error.h>

#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <memory>
#include <type_traits>

namespace hsa::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;  // both dtypes
constexpr int kPlanThreads = 256;
constexpr int kMaxSplits = kGroupedGemmMaxSplits;

// ---- per-dtype tile math ------------------------------------------------------------------------------------------

template <class T> struct TileMath;

template <> struct TileMath<__nv_bfloat16> {
  static constexpr int kBM = 128, kBN = 128, kBK = 32;
  static constexpr int kStages = 4, kMinBlocks = 2;  // 2 blocks per SM: <= 128 registers, 2 x <= 80 KiB
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
      // All B fragments of the k-step first, then one A fragment at a time (4 live registers, not 16: the 128
      // register budget of two blocks per SM).
      uint32_t b[kNi][2];
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
      for (int mi = 0; mi < kMi; ++mi) {
        uint32_t a[4];
        const int m = wm + mi * 16;
        if constexpr (kTransA)  // stored [k][m]: matrices (k 0-7, m 0-7), (k 0-7, m 8-15), (k 8-15, m 0-7), ...
          ldmatrix_x4_trans(a, sa + (ks + (mat / 2) * 8 + row) * kLdA + m + (mat % 2) * 8);
        else  // stored [m][k]: matrices (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15)
          ldmatrix_x4(a, sa + (m + lane % 16) * kLdA + ks + (lane / 16) * 8);
#pragma unroll
        for (int ni = 0; ni < kNi; ++ni) mma_bf16_16816(acc.v[mi][ni], a, b[ni][0], b[ni][1]);
      }
    }
  }

  // Every accumulator through out.pair(row, col, v(col), v(col + 1)), (row, col) inside the BM x BN tile, col even.
  template <class Out> __device__ static void store(const Acc& acc, const Out& out) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / kWarpsN) * kWarpM, wn = (warp % kWarpsN) * kWarpN;
    const int group = lane / 4, tig = lane % 4;
#pragma unroll
    for (int mi = 0; mi < kMi; ++mi)
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          out.pair(wm + mi * 16 + group + h * 8, wn + ni * 8 + 2 * tig, acc.v[mi][ni][2 * h], acc.v[mi][ni][2 * h + 1]);
  }
};

template <> struct TileMath<float> {
  static constexpr int kBM = 64, kBN = 64, kBK = 16;
  static constexpr int kStages = 3, kMinBlocks = 1;
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

  // Every accumulator through out.one(row, col, value).
  template <class Out> __device__ static void store(const Acc& acc, const Out& out) {
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
#pragma unroll
      for (int j = 0; j < kPer; ++j) out.one(ty + 16 * i, tx + 16 * j, acc.v[i][j]);
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

// The staged operand tiles of one instance and its dynamic shared memory: kStages x (A slice, B slice).
template <class T, Grouping kGrouping, bool kTransB> struct Staging {
  using Math = TileMath<T>;
  static constexpr bool kTransA = kGrouping == Grouping::k;
  using TileA = std::conditional_t<kTransA, SmemTile<T, Math::kBK, Math::kBM>, SmemTile<T, Math::kBM, Math::kBK>>;
  using TileB = std::conditional_t<kTransB, SmemTile<T, Math::kBN, Math::kBK>, SmemTile<T, Math::kBK, Math::kBN>>;
  static constexpr int kStageSize = TileA::kSize + TileB::kSize;  // elements
  static constexpr size_t kSmemBytes = size_t(Math::kStages) * kStageSize * sizeof(T);
};

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
  int splits;        // k grouping: blocks sharing each group's reduction (grid.z = groups * splits)
  float* partial;    // k grouping with splits > 1: [G, splits, m, n] f32 partial products, else null
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

// The writes of one block's C tile: c0 = its (0, 0), row stride ld, clipped to rows x cols; dst = v + beta * dst
// (beta = 0 never reads dst). pair() writes columns col, col + 1 (col even) with one 2-element store when the tile
// origin is 2-element aligned and ld is even (then every even column is).
template <class O> struct TileOut {
  O* c0;
  int64_t ld, rows, cols;
  float beta;
  bool pairs;

  __device__ void one(int r, int col, float v) const {
    if (r >= rows || col >= cols) return;
    O* out = c0 + r * ld + col;
    *out = from_f32<O>(beta == 0.f ? v : v + beta * to_f32(*out));
  }
  __device__ void pair(int r, int col, float v0, float v1) const {
    if (!pairs || col + 1 >= cols) {
      one(r, col, v0);
      one(r, col + 1, v1);
      return;
    }
    if (r >= rows) return;
    O* out = c0 + r * ld + col;
    if (beta != 0.f) v0 += beta * to_f32(out[0]), v1 += beta * to_f32(out[1]);
    if constexpr (std::is_same_v<O, float>)
      *reinterpret_cast<float2*>(out) = make_float2(v0, v1);
    else
      *reinterpret_cast<__nv_bfloat162*>(out) = __floats2bfloat162_rn(v0, v1);
  }
};

template <class O> __device__ TileOut<O> tile_out(O* c0, int64_t ld, int64_t rows, int64_t cols, float beta) {
  const bool pairs = reinterpret_cast<uintptr_t>(c0) % (2 * sizeof(O)) == 0 && ld % 2 == 0;
  return {c0, ld, rows, cols, beta, pairs};
}

// a [M, K] x b [K, N] shapes in the comments below mean op(A), op(B) of this block's group.
template <class T, Grouping kGrouping, bool kTransB>
__global__ void __launch_bounds__(kThreads, TileMath<T>::kMinBlocks) grouped_gemm_kernel(GroupedArgs<T> p) {
  using Math = TileMath<T>;
  using S = Staging<T, kGrouping, kTransB>;
  using TileA = typename S::TileA;
  using TileB = typename S::TileB;
  constexpr int kBM = Math::kBM, kBN = Math::kBN, kBK = Math::kBK, kStages = Math::kStages;
  constexpr bool kTransA = S::kTransA;

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
    // Split `split` of group g reduces over rows [k_begin, k_begin + k_size) of the group's rows_g: splits of
    // `chunk` rows (a multiple of kBK), the last ones shorter or empty.
    const int64_t g = blockIdx.z / p.splits, split = blockIdx.z % p.splits, row0 = p.offsets[g];
    const int64_t rows_g = max(int64_t(0), int64_t(p.offsets[g + 1]) - row0);
    const int64_t chunk = (rows_g + p.splits * kBK - 1) / (p.splits * kBK) * kBK;
    const int64_t k_begin = min(rows_g, split * chunk);
    m0 = int64_t(blockIdx.x) * kBM;
    m_size = p.m;
    k_size = min(rows_g - k_begin, chunk);
    a = p.a + (row0 + k_begin) * p.lda;
    b = p.b + (row0 + k_begin) * p.ldb;
    c = p.c + g * p.c_stride;
  }
  const int64_t n0 = int64_t(blockIdx.y) * kBN;

  extern __shared__ __align__(16) unsigned char smem_bytes[];
  T* const smem = reinterpret_cast<T*>(smem_bytes);
  auto stage_a = [&](int s) { return smem + s * S::kStageSize; };
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

  // kStages-deep cp.async pipeline, one commit group per slice (empty past the end): slices 0 .. kStages - 2 in
  // flight before the loop; iteration t waits for slice t (at most kStages - 2 younger groups pending), syncs, then
  // refills the stage that slice t - 1 used (every warp is past it: the barrier) with slice t + kStages - 1.
  typename Math::Acc acc;
  const int64_t k_tiles = k_size > 0 ? (k_size + kBK - 1) / kBK : 0;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) load(s, s * kBK);
    cp_async_commit();
  }
  for (int64_t t = 0; t < k_tiles; ++t) {
    cp_async_wait<kStages - 2>();  // slice t has landed (this thread's part)
    __syncthreads();               // ... and everyone's, per-element stores included; stage (t - 1) % kStages is free
    const int64_t next = t + kStages - 1;
    if (next < k_tiles) load(int(next % kStages), next * kBK);
    cp_async_commit();
    const int s = int(t % kStages);
    Math::template multiply<kTransA, kTransB, TileA::kLd, TileB::kLd>(acc, stage_a(s), stage_b(s));
  }

  const int64_t rows = m_size - m0, cols = p.n - n0;
  if constexpr (kGrouping == Grouping::k) {
    if (p.partial != nullptr) {  // this split's share, summed by split_reduce_kernel
      Math::store(acc, tile_out(p.partial + (int64_t(blockIdx.z) * p.m + m0) * p.n + n0, p.n, rows, cols, 0.f));
      return;
    }
  }
  Math::store(acc, tile_out(c + m0 * p.ldc + n0, p.ldc, rows, cols, p.beta));
}

// C_g[r, col] = sum_{s < splits} partial[g, s, r, col] (in split order) + beta * C_g[r, col]. partial [G, splits,
// m, n] f32, C_g = c + g * c_stride [m, n] with row stride ldc.
template <class T>
__global__ void split_reduce_kernel(const float* partial, int64_t groups, int splits, int64_t m, int64_t n,
                                    float beta, T* c, int64_t ldc, int64_t c_stride) {
  const int64_t mn = m * n;
  for (int64_t i = global_thread(); i < groups * mn; i += grid_threads()) {
    const int64_t g = i / mn, e = i % mn;
    const float* src = partial + g * splits * mn + e;
    float sum = 0.f;
    for (int s = 0; s < splits; ++s) sum += src[s * mn];
    T* out = c + g * c_stride + (e / n) * ldc + e % n;
    *out = from_f32<T>(beta == 0.f ? sum : sum + beta * to_f32(*out));
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// cp.async needs every 16-byte chunk it copies aligned: the base and every row (and group) stride.
template <class T> bool vec_ok(const T* base, int64_t ld, int64_t stride = 0) {
  const int64_t bytes = int64_t(sizeof(T));
  return reinterpret_cast<uintptr_t>(base) % 16 == 0 && (ld * bytes) % 16 == 0 && (stride * bytes) % 16 == 0;
}

int sm_count() {
  static const int count = [] {
    int v = 0;
    HSA_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0));
    return v;
  }();
  return count;
}

// Blocks of this instance resident per SM (registers and shared memory), at least 1.
template <class D, Grouping kGrouping, bool kTransB> int blocks_per_sm() {
  static const int count = [] {
    auto* kernel = grouped_gemm_kernel<D, kGrouping, kTransB>;
    const size_t smem = Staging<D, kGrouping, kTransB>::kSmemBytes;
    HSA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    int v = 0;
    HSA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, kernel, kThreads, smem));
    return std::max(v, 1);
  }();
  return count;
}

template <class D, Grouping kGrouping, bool kTransB> void launch(dim3 grid, const GroupedArgs<D>& p) {
  const size_t smem = Staging<D, kGrouping, kTransB>::kSmemBytes;
  blocks_per_sm<D, kGrouping, kTransB>();  // sets the shared-memory opt-in once
  grouped_gemm_kernel<D, kGrouping, kTransB><<<grid, kThreads, smem, stream()>>>(p);
  check_launch("grouped_gemm_kernel");
}

// Splits of each group's reduction for the k grouping when the caller leaves it open: the tiles of all groups,
// times the splits, should fill the resident block slots 2-3 times over (one block per tile left most SMs idle
// for a second, nearly empty wave); among those counts, the one whose last wave is fullest (then the fewest).
int auto_splits(int64_t tiles, int64_t slots) {
  if (tiles >= 2 * slots) return 1;
  const int lo = int(ceil_div(2 * slots, tiles));
  const int hi = std::max(lo, int(3 * slots / tiles));
  int best = lo;
  double best_fill = 0.;
  for (int s = lo; s <= std::min(hi, kMaxSplits); ++s) {
    const int64_t blocks = tiles * s;
    const double fill = double(blocks) / double(ceil_div(blocks, slots) * slots);
    if (fill > best_fill + 1e-9) best = s, best_fill = fill;
  }
  return std::min(best, kMaxSplits);
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
                         0, beta, vec_ok(a, lda), vec_ok(b, ldb, b_stride), 1, nullptr};
  const dim3 grid(static_cast<unsigned>(slots), static_cast<unsigned>(n_tiles));
  if (trans_b)
    launch<D, Grouping::rows, true>(grid, p);
  else
    launch<D, Grouping::rows, false>(grid, p);
}

template <class T>
void grouped_gemm_k(const int32_t* offsets, int64_t groups, int64_t m, int64_t n, const T* a, int64_t lda,
                    const T* b, int64_t ldb, float beta, T* c, int64_t ldc, int64_t c_stride, int splits) {
  HSA_CHECK(groups >= 0 && m >= 0 && n >= 0 && splits >= 0 && splits <= kMaxSplits,
            "grouped_gemm_k: bad size (groups {}, m {}, n {}, splits {} of at most {})", groups, m, n, splits,
            kMaxSplits);
  if (groups == 0 || m == 0 || n == 0) return;
  using D = device_t<T>;
  using Math = TileMath<D>;
  const int64_t m_tiles = ceil_div(m, Math::kBM), n_tiles = ceil_div(n, Math::kBN);
  if (splits == 0)
    splits = auto_splits(m_tiles * n_tiles * groups, int64_t(sm_count()) * blocks_per_sm<D, Grouping::k, false>());
  HSA_CHECK(m_tiles < INT32_MAX && n_tiles <= 65535 && groups * splits <= 65535,
            "grouped_gemm_k: {} x {} tiles of {} groups x {} splits (m {}, n {}) exceed the grid", m_tiles, n_tiles,
            groups, splits, m, n);
  // One split: the blocks write C. More: f32 partials, summed in split order by split_reduce_kernel.
  std::unique_ptr<DeviceBuffer<float>> partial;
  if (splits > 1) partial = std::make_unique<DeviceBuffer<float>>(groups * splits * m * n);
  const GroupedArgs<D> p{offsets, nullptr, groups, m, n, 0, dev(a), lda, dev(b), ldb, 0, dev(c), ldc, c_stride,
                         beta, vec_ok(a, lda), vec_ok(b, ldb), splits, partial ? partial->get() : nullptr};
  launch<D, Grouping::k, false>(dim3(unsigned(m_tiles), unsigned(n_tiles), unsigned(groups * splits)), p);
  if (!partial) return;
  const int64_t blocks = std::min<int64_t>(ceil_div(groups * m * n, kThreads), int64_t(sm_count()) * 8);
  split_reduce_kernel<D><<<unsigned(blocks), kThreads, 0, stream()>>>(partial->get(), groups, splits, m, n, beta,
                                                                      dev(c), ldc, c_stride);
  check_launch("split_reduce_kernel");
}

#define HSA_GROUPED_GEMM_INSTANTIATE(T)                                                                              \
  template void grouped_gemm_rows<T>(const int32_t*, int64_t, int64_t, int64_t, int64_t, const T*, int64_t,         \
                                     const T*, int64_t, int64_t, bool, float, T*, int64_t);                          \
  template void grouped_gemm_k<T>(const int32_t*, int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t,  \
                                  float, T*, int64_t, int64_t, int);
HSA_GROUPED_GEMM_INSTANTIATE(float)
HSA_GROUPED_GEMM_INSTANTIATE(bf16)
#undef HSA_GROUPED_GEMM_INSTANTIATE

}  // namespace hsa::cuda
