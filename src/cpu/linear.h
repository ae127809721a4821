// CPU linear layer (no bias), row-major. x, dx [rows, in]; w, dw [out, in]; y, dy [rows, out].
#pragma once
#include <cstdint>

namespace hsa::cpu {

// y = x w^T.
template <class T> void linear_forward(const T* x, const T* w, T* y, int64_t rows, int64_t in, int64_t out);

// dx = dy w; dw = dy^T x (a sum over rows; written, not accumulated).
template <class T>
void linear_backward(const T* dy, const T* x, const T* w, T* dx, T* dw, int64_t rows, int64_t in, int64_t out);

}  // namespace hsa::cpu
