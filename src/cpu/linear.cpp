#include "cpu/linear.h"

#include "cpu/gemm.h"

#include <algorithm>

namespace hsa::cpu {

// A GEMM with an empty inner dimension must still write zeros; guard it here rather than rely on each BLAS
// handling k = 0 with beta = 0 alike.
template <class T>
static void gemm_or_zero(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                         int64_t ldb, T* c, int64_t ldc) {
  if (k == 0) {
    std::fill(c, c + m * n, T(0));
    return;
  }
  gemm<T>(ta, tb, m, n, k, T(1), a, lda, b, ldb, T(0), c, ldc);
}

template <class T> void linear_forward(const T* x, const T* w, T* y, int64_t rows, int64_t in, int64_t out) {
  gemm_or_zero<T>(false, true, rows, out, in, x, in, w, in, y, out);
}

template <class T>
void linear_backward(const T* dy, const T* x, const T* w, T* dx, T* dw, int64_t rows, int64_t in, int64_t out) {
  gemm_or_zero<T>(false, false, rows, in, out, dy, out, w, in, dx, in);
  gemm_or_zero<T>(true, false, out, in, rows, dy, out, x, in, dw, in);
}

template void linear_forward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void linear_forward<double>(const double*, const double*, double*, int64_t, int64_t, int64_t);
template void linear_backward<float>(const float*, const float*, const float*, float*, float*, int64_t, int64_t,
                                     int64_t);
template void linear_backward<double>(const double*, const double*, const double*, double*, double*, int64_t, int64_t,
                                      int64_t);

}  // namespace hsa::cpu
