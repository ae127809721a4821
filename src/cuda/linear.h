// Linear layer on the GPU (y = x W^T), GEMMs through cuda::gemm (cuBLASLt). T = float | hsa::bf16.
// x, dx [rows, in]; w, dw [out, in]; y, dy [rows, out]; device pointers, contiguous.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T> void linear_forward(const T* x, const T* w, T* y, int64_t rows, int64_t in, int64_t out);
template <class T>
void linear_backward(const T* dy, const T* x, const T* w, T* dx, T* dw, int64_t rows, int64_t in, int64_t out);

}  // namespace hsa::cuda
