#include "cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hsa::cpu {

template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, T* lse, double* row_loss, int64_t n, int64_t v,
                           int32_t ignore_index) {
#pragma omp parallel for schedule(static) if (n * v > 32768)
  for (int64_t r = 0; r < n; ++r) {
    const T* x = logits + r * v;
    T max = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < v; ++j) max = std::max(max, x[j]);
    double sum = 0;
    for (int64_t j = 0; j < v; ++j) sum += double(std::exp(x[j] - max));
    double row_lse = double(max) + std::log(sum);
    lse[r] = T(row_lse);
    row_loss[r] = targets[r] == ignore_index ? 0.0 : row_lse - double(x[targets[r]]);
  }
}

template <class T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T* dlogits, int64_t n, int64_t v,
                            int32_t ignore_index, double scale) {
  const T s = T(scale);
#pragma omp parallel for schedule(static) if (n * v > 32768)
  for (int64_t r = 0; r < n; ++r) {
    const T* x = logits + r * v;
    T* dx = dlogits + r * v;
    if (targets[r] == ignore_index) {
      std::fill(dx, dx + v, T(0));
      continue;
    }
    const T row_lse = lse[r];
    for (int64_t j = 0; j < v; ++j) dx[j] = s * std::exp(x[j] - row_lse);
    dx[targets[r]] -= s;
  }
}

template void cross_entropy_forward<float>(const float*, const int32_t*, float*, double*, int64_t, int64_t, int32_t);
template void cross_entropy_forward<double>(const double*, const int32_t*, double*, double*, int64_t, int64_t,
                                            int32_t);
template void cross_entropy_backward<float>(const float*, const int32_t*, const float*, float*, int64_t, int64_t,
                                            int32_t, double);
template void cross_entropy_backward<double>(const double*, const int32_t*, const double*, double*, int64_t, int64_t,
                                             int32_t, double);

}  // namespace hsa::cpu
