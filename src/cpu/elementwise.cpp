#include "cpu/elementwise.h"

namespace hsa::cpu {

template <class T> void axpby(const T* x, T alpha, const T* y, T beta, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = alpha * x[i] + beta * y[i];
}

template <class T> void scale(const T* x, T s, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = s * x[i];
}

template void axpby<float>(const float*, float, const float*, float, float*, int64_t);
template void axpby<double>(const double*, double, const double*, double, double*, int64_t);
template void scale<float>(const float*, float, float*, int64_t);
template void scale<double>(const double*, double, double*, int64_t);

}  // namespace hsa::cpu
