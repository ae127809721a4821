// CPU chunk mean pooling kernels. x, dx [B, L, dm]; pooled, dpooled [B, C, dm], C = L / chunk_size (floor).
#pragma once
#include <cstdint>

namespace hsa::cpu {

// pooled[b, c] = mean of x[b, c*S .. c*S + S - 1].
template <class T>
void chunk_mean_forward(const T* x, T* pooled, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size);

// dx[b, t] = dpooled[b, t / S] / S for t < C*S; dx of the incomplete tail is written as 0.
template <class T>
void chunk_mean_backward(const T* dpooled, T* dx, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size);

}  // namespace hsa::cpu
