#include "cuda/rmsnorm.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

// ---- rows to lanes ----------------------------------------------------------------------------------------------
// A row goes to a group of `group` lanes of one warp (a power of two <= 32, about one lane per pack of the row:
// 8 lanes for a 64-wide bf16 row, so a warp normalises 4 rows at once; 32 lanes for hidden-size rows). A lane walks
// its row in packs of W with stride group * W. The layout is chosen on the host (RowLayout) from dim and alignment.
struct RowLayout {
  int group;    // lanes per row
  bool packed;  // 16-byte packs (dim a multiple of the pack, pointers aligned); else width 1
};

int pow2_at_least(int64_t n, int cap) {
  int p = 1;
  while (p < cap && p < n) p *= 2;
  return p;
}

template <class T> RowLayout row_layout(int64_t dim, bool aligned) {
  const bool packed = aligned && dim % kPack<T> == 0;
  return {pow2_at_least(packed ? dim / kPack<T> : dim, 32), packed};
}

unsigned row_blocks(int64_t rows, int group) { return grid_for((rows * group + 31) / 32 * 32, 256); }

// Sum over the aligned group of `group` lanes holding one row (a butterfly: every lane gets the same bits).
__device__ __forceinline__ float group_sum(float v, int group) {
  for (int o = group / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Grid-stride loop over rows by row groups: body(row, lane in group, valid). Every lane of a warp runs every
// iteration (valid = false past the last row), so the body may shuffle.
template <class Body> __device__ __forceinline__ void for_each_row(int64_t rows, int group, Body body) {
  const int lane = threadIdx.x % 32, rows_per_warp = 32 / group;
  const int64_t warp = global_thread() / 32, warps = grid_threads() / 32;
  for (int64_t r0 = warp * rows_per_warp; r0 < rows; r0 += warps * rows_per_warp) {
    const int64_t r = r0 + lane / group;
    body(r, lane % group, r < rows);
  }
}

template <class T>
__global__ void rmsnorm_forward_kernel(const T* x, const T* weight, T* y, float* rstd, int64_t rows, int64_t dim,
                                       double eps, RowLayout layout) {
  auto run = [&](auto width) {
    constexpr int W = decltype(width)::value;
    const int64_t step = int64_t(layout.group) * W;
    for_each_row(rows, layout.group, [&](int64_t r, int lane, bool valid) {
      const T* xr = x + r * dim;
      float sum_sq = 0.f;
      if (valid)
        for (int64_t i = lane * W; i < dim; i += step) {
          float v[W];
          load_pack<W>(xr + i, v);
#pragma unroll
          for (int k = 0; k < W; ++k) sum_sq += v[k] * v[k];
        }
      sum_sq = group_sum(sum_sq, layout.group);
      if (!valid) return;
      const float s = float(1.0 / sqrt(double(sum_sq) / double(dim) + eps));
      if (lane == 0) rstd[r] = s;
      for (int64_t i = lane * W; i < dim; i += step) {
        float v[W], w[W];
        load_pack<W>(xr + i, v);
        load_pack<W>(weight + i, w);
#pragma unroll
        for (int k = 0; k < W; ++k) v[k] = v[k] * s * w[k];
        store_pack<W>(y + r * dim + i, v);
      }
    });
  };
  if (layout.packed) run(Width<kPack<T>>());
  else run(Width<1>());
}

// dx = s * (dy * w - x * coef), coef = s^2 * mean(dy * w * x).
template <class T>
__global__ void rmsnorm_backward_dx_kernel(const T* dy, const T* x, const T* weight, const float* rstd, T* dx,
                                           int64_t rows, int64_t dim, RowLayout layout) {
  auto run = [&](auto width) {
    constexpr int W = decltype(width)::value;
    const int64_t step = int64_t(layout.group) * W;
    for_each_row(rows, layout.group, [&](int64_t r, int lane, bool valid) {
      auto load = [&](int64_t i, float (&d)[W], float (&w)[W], float (&v)[W]) {
        load_pack<W>(dy + r * dim + i, d);
        load_pack<W>(weight + i, w);
        load_pack<W>(x + r * dim + i, v);
      };
      float dot = 0.f;
      if (valid)
        for (int64_t i = lane * W; i < dim; i += step) {
          float d[W], w[W], v[W];
          load(i, d, w, v);
#pragma unroll
          for (int k = 0; k < W; ++k) dot += d[k] * w[k] * v[k];
        }
      dot = group_sum(dot, layout.group);
      if (!valid) return;
      const float s = rstd[r];
      const float coef = dot / float(dim) * s * s;
      for (int64_t i = lane * W; i < dim; i += step) {
        float d[W], w[W], v[W];
        load(i, d, w, v);
#pragma unroll
        for (int k = 0; k < W; ++k) d[k] = s * (d[k] * w[k] - v[k] * coef);
        store_pack<W>(dx + r * dim + i, d);
      }
    });
  };
  if (layout.packed) run(Width<kPack<T>>());
  else run(Width<1>());
}

// ---- dweight: fixed-order partial sums over row chunks, then over chunks ----------------------------------------
// Partial block (column tile, row chunk): 256 threads as col_lanes x (256 / col_lanes) row lanes; a thread sums
// dy * x * rstd for one pack of columns over the rows r0 + row_lane, step row_lanes, of its chunk; the row lanes
// are then added in lane order. The final pass adds the chunks' partials, 32 chunk lanes per column in lane order.
constexpr int kPartialThreads = 256;
constexpr int kPartialBlocks = 512;  // target blocks of the partial pass (fixed: the order must not depend on the GPU)

template <class T>
__global__ void __launch_bounds__(kPartialThreads)
    rmsnorm_dweight_partial_kernel(const T* dy, const T* x, const float* rstd, float* partial, int64_t rows,
                                   int64_t dim, int64_t rows_per_chunk, int col_lanes, bool packed) {
  extern __shared__ float sums[];  // [row lanes, col_lanes * W]
  auto run = [&](auto width) {
    constexpr int W = decltype(width)::value;
    const int cl = threadIdx.x % col_lanes, rl = threadIdx.x / col_lanes, row_lanes = kPartialThreads / col_lanes;
    const int tile_cols = col_lanes * W;
    const int64_t col = (int64_t(blockIdx.x) * col_lanes + cl) * W;
    const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(rows, r0 + rows_per_chunk);
    float acc[W];
#pragma unroll
    for (int k = 0; k < W; ++k) acc[k] = 0.f;
    if (col < dim)
      for (int64_t r = r0 + rl; r < r1; r += row_lanes) {
        float d[W], v[W];
        load_pack<W>(dy + r * dim + col, d);
        load_pack<W>(x + r * dim + col, v);
        const float s = rstd[r];
#pragma unroll
        for (int k = 0; k < W; ++k) acc[k] += d[k] * v[k] * s;
      }
#pragma unroll
    for (int k = 0; k < W; ++k) sums[rl * tile_cols + cl * W + k] = acc[k];
    __syncthreads();
    for (int c = threadIdx.x; c < tile_cols; c += kPartialThreads) {
      const int64_t i = int64_t(blockIdx.x) * tile_cols + c;
      if (i >= dim) continue;
      float total = 0.f;
      for (int k = 0; k < row_lanes; ++k) total += sums[k * tile_cols + c];
      partial[blockIdx.y * dim + i] = total;
    }
  };
  if (packed) run(Width<kPack<T>>());
  else run(Width<1>());
}

constexpr int kFinalColumns = 32, kFinalLanes = 32;

template <class T>
__global__ void __launch_bounds__(kFinalColumns * kFinalLanes)
    rmsnorm_dweight_final_kernel(const float* partial, T* dweight, int64_t chunks, int64_t dim) {
  __shared__ float sums[kFinalLanes][kFinalColumns + 1];
  const int64_t i = int64_t(blockIdx.x) * kFinalColumns + threadIdx.x;
  float total = 0.f;
  if (i < dim)
    for (int64_t c = threadIdx.y; c < chunks; c += kFinalLanes) total += partial[c * dim + i];
  sums[threadIdx.y][threadIdx.x] = total;
  __syncthreads();
  if (threadIdx.y == 0 && i < dim) {
    total = 0.f;
    for (int k = 0; k < kFinalLanes; ++k) total += sums[k][threadIdx.x];
    dweight[i] = from_f32<T>(total);
  }
}

}  // namespace

template <class T>
void rmsnorm_forward(const T* x, const T* weight, T* y, float* rstd, int64_t rows, int64_t dim, double eps) {
  if (rows == 0) return;
  const RowLayout layout = row_layout<T>(dim, packs_aligned<kPack<T>>(x, weight, y));
  rmsnorm_forward_kernel<<<row_blocks(rows, layout.group), 256, 0, stream()>>>(dev(x), dev(weight), dev(y), rstd,
                                                                               rows, dim, eps, layout);
  check_launch("rmsnorm_forward_kernel");
}

template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* weight, const float* rstd, T* dx, T* dweight, int64_t rows,
                      int64_t dim) {
  if (dim == 0) return;
  const RowLayout layout = row_layout<T>(dim, packs_aligned<kPack<T>>(dy, x, weight, dx));
  if (rows > 0) {
    rmsnorm_backward_dx_kernel<<<row_blocks(rows, layout.group), 256, 0, stream()>>>(
        dev(dy), dev(x), dev(weight), rstd, dev(dx), rows, dim, layout);
    check_launch("rmsnorm_backward_dx_kernel");
  }
  // dweight needs only dy and x aligned (weight and dx are not read there), but one layout keeps it simple.
  const int width = layout.packed ? kPack<T> : 1;
  const int64_t packs = (dim + width - 1) / width;
  const int col_lanes = pow2_at_least(packs, 32);
  const int64_t col_tiles = (packs + col_lanes - 1) / col_lanes;
  const int row_lanes = kPartialThreads / col_lanes;
  // Chunks of at least 4 rows per row lane, enough of them (with the column tiles) to fill the GPU.
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>((kPartialBlocks + col_tiles - 1) / col_tiles,
                                                          rows / (4 * row_lanes)));
  const int64_t rows_per_chunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
  chunks = std::max<int64_t>(1, (rows + rows_per_chunk - 1) / rows_per_chunk);
  DeviceBuffer<float> partial(chunks * dim);
  const size_t smem = sizeof(float) * kPartialThreads * width;
  rmsnorm_dweight_partial_kernel<<<dim3(unsigned(col_tiles), unsigned(chunks)), kPartialThreads, smem, stream()>>>(
      dev(dy), dev(x), rstd, partial.get(), rows, dim, rows_per_chunk, col_lanes, layout.packed);
  check_launch("rmsnorm_dweight_partial_kernel");
  rmsnorm_dweight_final_kernel<<<unsigned((dim + kFinalColumns - 1) / kFinalColumns), dim3(kFinalColumns, kFinalLanes),
                                 0, stream()>>>(partial.get(), dev(dweight), chunks, dim);
  check_launch("rmsnorm_dweight_final_kernel");
}

template void rmsnorm_forward<float>(const float*, const float*, float*, float*, int64_t, int64_t, double);
template void rmsnorm_forward<bf16>(const bf16*, const bf16*, bf16*, float*, int64_t, int64_t, double);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                      int64_t);
template void rmsnorm_backward<bf16>(const bf16*, const bf16*, const bf16*, const float*, bf16*, bf16*, int64_t,
                                     int64_t);

}  // namespace hsa::cuda
