#include "cpu/elementwise.h"

namespace hsa::cpu {

template <class T> void add(const T* a, const T* b, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T> void add_scaled(T* dst, const T* src, T alpha, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

template <class T> void scale(const T* x, T s, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = s * x[i];
}

template <class T> double sum_of_squares(const T* x, int64_t n) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) total += double(x[i]) * double(x[i]);
  return total;
}

template double sum_of_squares<float>(const float*, int64_t);
template double sum_of_squares<double>(const double*, int64_t);
template void add<float>(const float*, const float*, float*, int64_t);
template void add<double>(const double*, const double*, double*, int64_t);
template void add_scaled<float>(float*, const float*, float, int64_t);
template void add_scaled<double>(double*, const double*, double, int64_t);
template void scale<float>(const float*, float, float*, int64_t);
template void scale<double>(const double*, double, double*, int64_t);

}  // namespace hsa::cpu
