#include "cpu/cross_entropy.h"

#include <cmath>

namespace hsa::cpu {

template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, T* lse, double* row_loss, int64_t n, int64_t v,
                           int32_t ignore_index) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T* row = logits + i * v;
    double mx = row[0];
    for (int64_t j = 1; j < v; ++j) mx = std::max(mx, double(row[j]));
    double sum = 0;
    for (int64_t j = 0; j < v; ++j) sum += std::exp(double(row[j]) - mx);
    double l = mx + std::log(sum);
    lse[i] = T(l);
    row_loss[i] = targets[i] == ignore_index ? 0.0 : l - double(row[targets[i]]);
  }
}

template <class T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T* dlogits, int64_t n, int64_t v,
                            double scale, int32_t ignore_index) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T* d = dlogits + i * v;
    if (targets[i] == ignore_index) {
      for (int64_t j = 0; j < v; ++j) d[j] = T(0);
      continue;
    }
    const T* row = logits + i * v;
    for (int64_t j = 0; j < v; ++j) d[j] = T(scale * std::exp(double(row[j]) - double(lse[i])));
    d[targets[i]] -= T(scale);
  }
}

template void cross_entropy_forward<float>(const float*, const int32_t*, float*, double*, int64_t, int64_t, int32_t);
template void cross_entropy_forward<double>(const double*, const int32_t*, double*, double*, int64_t, int64_t,
                                            int32_t);
template void cross_entropy_backward<float>(const float*, const int32_t*, const float*, float*, int64_t, int64_t,
                                            double, int32_t);
template void cross_entropy_backward<double>(const double*, const int32_t*, const double*, double*, int64_t, int64_t,
                                             double, int32_t);

}  // namespace hsa::cpu
