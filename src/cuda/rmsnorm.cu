#include "cuda/rmsnorm.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

int threads_for(int64_t dim) { return dim >= 1024 ? 512 : dim >= 256 ? 256 : 128; }

// One block per row (grid-stride over rows).
template <class T>
__global__ void rmsnorm_forward_kernel(const T* x, const T* weight, T* y, float* rstd, int64_t rows, int64_t dim,
                                       double eps) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * dim;
    T* yr = y + r * dim;
    float sum_sq = 0.f;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      float v = to_f32(xr[i]);
      sum_sq += v * v;
    }
    sum_sq = block_sum(sum_sq, scratch);
    float s = float(1.0 / sqrt(double(sum_sq) / double(dim) + eps));
    if (threadIdx.x == 0) rstd[r] = s;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = from_f32<T>(to_f32(xr[i]) * s * to_f32(weight[i]));
  }
}

// dx = s * (dy * w - x * coef), coef = s^2 * mean(dy * w * x).
template <class T>
__global__ void rmsnorm_backward_dx_kernel(const T* dy, const T* x, const T* weight, const float* rstd, T* dx,
                                           int64_t rows, int64_t dim) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * dim;
    const T* dyr = dy + r * dim;
    T* dxr = dx + r * dim;
    float dot = 0.f;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dot += to_f32(dyr[i]) * to_f32(weight[i]) * to_f32(xr[i]);
    dot = block_sum(dot, scratch);
    float s = rstd[r];
    float coef = dot / float(dim) * s * s;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
      dxr[i] = from_f32<T>(s * (to_f32(dyr[i]) * to_f32(weight[i]) - to_f32(xr[i]) * coef));
  }
}

constexpr int kColumns = 32, kRowLanes = 8;

// partial[chunk, i] = sum over the chunk's rows of dy * x * rstd. Block (32 columns, 8 row lanes); the lanes'
// sums are combined in lane order, so the result does not depend on scheduling.
template <class T>
__global__ void rmsnorm_dweight_partial_kernel(const T* dy, const T* x, const float* rstd, float* partial,
                                               int64_t rows, int64_t dim, int64_t rows_per_chunk) {
  __shared__ float sums[kRowLanes][kColumns];
  int64_t i = blockIdx.x * int64_t(kColumns) + threadIdx.x;
  int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(rows, r0 + rows_per_chunk);
  float acc = 0.f;
  if (i < dim)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) acc += to_f32(dy[r * dim + i]) * to_f32(x[r * dim + i]) * rstd[r];
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && i < dim) {
    float total = 0.f;
    for (int k = 0; k < kRowLanes; ++k) total += sums[k][threadIdx.x];
    partial[blockIdx.y * dim + i] = total;
  }
}

template <class T>
__global__ void rmsnorm_dweight_final_kernel(const float* partial, T* dweight, int64_t chunks, int64_t dim) {
  for (int64_t i = global_thread(); i < dim; i += grid_threads()) {
    float total = 0.f;
    for (int64_t c = 0; c < chunks; ++c) total += partial[c * dim + i];
    dweight[i] = from_f32<T>(total);
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(std::min<int64_t>(rows, 65535LL * 4)); }

}  // namespace

template <class T>
void rmsnorm_forward(const T* x, const T* weight, T* y, float* rstd, int64_t rows, int64_t dim, double eps) {
  if (rows == 0) return;
  rmsnorm_forward_kernel<<<row_blocks(rows), threads_for(dim), 0, stream()>>>(dev(x), dev(weight), dev(y), rstd,
                                                                              rows, dim, eps);
  check_launch("rmsnorm_forward_kernel");
}

template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* weight, const float* rstd, T* dx, T* dweight, int64_t rows,
                      int64_t dim) {
  if (dim == 0) return;
  if (rows > 0) {
    rmsnorm_backward_dx_kernel<<<row_blocks(rows), threads_for(dim), 0, stream()>>>(dev(dy), dev(x), dev(weight),
                                                                                    rstd, dev(dx), rows, dim);
    check_launch("rmsnorm_backward_dx_kernel");
  }
  // Enough chunks to fill the GPU, each at least 32 rows so the final pass stays short.
  int64_t rows_per_chunk = std::max<int64_t>(32, (rows + 255) / 256);
  int64_t chunks = std::max<int64_t>(1, (rows + rows_per_chunk - 1) / rows_per_chunk);
  DeviceBuffer<float> partial(chunks * dim);
  dim3 grid(static_cast<unsigned>((dim + kColumns - 1) / kColumns), static_cast<unsigned>(chunks));
  rmsnorm_dweight_partial_kernel<<<grid, dim3(kColumns, kRowLanes), 0, stream()>>>(dev(dy), dev(x), rstd,
                                                                                   partial.get(), rows, dim,
                                                                                   rows_per_chunk);
  check_launch("rmsnorm_dweight_partial_kernel");
  rmsnorm_dweight_final_kernel<<<grid_for(dim, 256), 256, 0, stream()>>>(partial.get(), dev(dweight), chunks, dim);
  check_launch("rmsnorm_dweight_final_kernel");
}

template void rmsnorm_forward<float>(const float*, const float*, float*, float*, int64_t, int64_t, double);
template void rmsnorm_forward<bf16>(const bf16*, const bf16*, bf16*, float*, int64_t, int64_t, double);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                      int64_t);
template void rmsnorm_backward<bf16>(const bf16*, const bf16*, const bf16*, const float*, bf16*, bf16*, int64_t,
                                     int64_t);

}  // namespace hsa::cuda
