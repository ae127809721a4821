// CPU chunk-mean kernels. x, dx [B, L, dm]; pooled, dpooled [B, C, dm].
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T> void chunk_mean_forward(const T* x, T* pooled, int64_t B, int64_t L, int64_t C, int64_t S, int64_t dm);
template <class T>
void chunk_mean_backward(const T* dpooled, T* dx, int64_t B, int64_t L, int64_t C, int64_t S, int64_t dm);

}  // namespace hsa::cpu
