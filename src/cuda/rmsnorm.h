// RMSNorm over the last axis on the GPU: y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps).
// x, y, dy, dx [rows, dim]; weight, dweight [dim]; rstd [rows] f32 whatever T is. T = float | hsa::bf16.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T>
void rmsnorm_forward(const T* x, const T* weight, T* y, float* rstd, int64_t rows, int64_t dim, double eps);
// dweight is summed over rows in a fixed order (per-chunk partials, then chunks in order): deterministic.
template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* weight, const float* rstd, T* dx, T* dweight, int64_t rows,
                      int64_t dim);

}  // namespace hsa::cuda
