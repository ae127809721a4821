// Chunk mean pooling on the GPU (see ops/chunk_pool.h). T = float | hsa::bf16; sums in f32.
// x, dx [B, L, dm]; pooled, dpooled [B, C, dm], C = L / chunk_size (complete chunks only).
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T>
void chunk_mean_forward(const T* x, T* pooled, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size);
template <class T>
void chunk_mean_backward(const T* dpooled, T* dx, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size);

}  // namespace hsa::cuda
