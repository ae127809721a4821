// CPU RMSNorm kernels. x, y, dy, dx [rows, dim]; weight, dweight [dim]; rstd [rows].
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T>
void rmsnorm_forward(const T* x, const T* weight, T* y, T* rstd, int64_t rows, int64_t dim, double eps);

// dx = rstd * (dy*w - x * rstd^2 * mean(dy*w*x)); dweight = sum_rows dy * x * rstd.
template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* weight, const T* rstd, T* dx, T* dweight, int64_t rows,
                      int64_t dim);

}  // namespace hsa::cpu
