#include "cuda/chunk_pool.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

// One thread per pooled value; neighbouring threads read neighbouring features of a row (coalesced).
template <class T>
__global__ void chunk_mean_forward_kernel(const T* x, T* pooled, int64_t batch, int64_t seq_len, int64_t dim,
                                          int64_t chunk_size, int64_t chunks) {
  const float inv = 1.f / float(chunk_size);
  for (int64_t idx = global_thread(); idx < batch * chunks * dim; idx += grid_threads()) {
    int64_t i = idx % dim, bc = idx / dim, b = bc / chunks, c = bc % chunks;
    const T* xc = x + (b * seq_len + c * chunk_size) * dim + i;
    float sum = 0.f;
    for (int64_t j = 0; j < chunk_size; ++j) sum += to_f32(xc[j * dim]);
    pooled[idx] = from_f32<T>(sum * inv);
  }
}

template <class T>
__global__ void chunk_mean_backward_kernel(const T* dpooled, T* dx, int64_t batch, int64_t seq_len, int64_t dim,
                                           int64_t chunk_size, int64_t chunks) {
  const float inv = 1.f / float(chunk_size);
  const int64_t covered = chunks * chunk_size;
  for (int64_t idx = global_thread(); idx < batch * seq_len * dim; idx += grid_threads()) {
    int64_t i = idx % dim, bt = idx / dim, b = bt / seq_len, t = bt % seq_len;
    dx[idx] = t < covered ? from_f32<T>(to_f32(dpooled[(b * chunks + t / chunk_size) * dim + i]) * inv)
                          : from_f32<T>(0.f);
  }
}

}  // namespace

template <class T>
void chunk_mean_forward(const T* x, T* pooled, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size) {
  int64_t chunks = seq_len / chunk_size, n = batch * chunks * dim;
  if (n == 0) return;
  chunk_mean_forward_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(x), dev(pooled), batch, seq_len, dim,
                                                                    chunk_size, chunks);
  check_launch("chunk_mean_forward_kernel");
}

template <class T>
void chunk_mean_backward(const T* dpooled, T* dx, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size) {
  int64_t chunks = seq_len / chunk_size, n = batch * seq_len * dim;
  if (n == 0) return;
  chunk_mean_backward_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(dpooled), dev(dx), batch, seq_len, dim,
                                                                     chunk_size, chunks);
  check_launch("chunk_mean_backward_kernel");
}

template void chunk_mean_forward<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_forward<bf16>(const bf16*, bf16*, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_backward<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_backward<bf16>(const bf16*, bf16*, int64_t, int64_t, int64_t, int64_t);

}  // namespace hsa::cuda
