#include "cuda/linear.h"

#include "cuda/gemm.h"

namespace hsa::cuda {

template <class T> void linear_forward(const T* x, const T* w, T* y, int64_t rows, int64_t in, int64_t out) {
  gemm<T>(false, true, rows, out, in, 1.f, x, in, w, in, 0.f, y, out);  // y = x w^T
}

template <class T>
void linear_backward(const T* dy, const T* x, const T* w, T* dx, T* dw, int64_t rows, int64_t in, int64_t out) {
  gemm<T>(false, false, rows, in, out, 1.f, dy, out, w, in, 0.f, dx, in);  // dx = dy w
  gemm<T>(true, false, out, in, rows, 1.f, dy, out, x, in, 0.f, dw, in);   // dw = dy^T x
}

template void linear_forward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void linear_forward<bf16>(const bf16*, const bf16*, bf16*, int64_t, int64_t, int64_t);
template void linear_backward<float>(const float*, const float*, const float*, float*, float*, int64_t, int64_t,
                                     int64_t);
template void linear_backward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, bf16*, int64_t, int64_t, int64_t);

}  // namespace hsa::cuda
