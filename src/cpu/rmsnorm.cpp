#include "cpu/rmsnorm.h"

#include "cpu/parallel.h"

#include <cmath>
#include <vector>

#include <omp.h>

namespace hsa::cpu {

template <class T>
void rmsnorm_forward(const T* x, const T* weight, T* y, T* rstd, int64_t rows, int64_t dim, double eps) {
#pragma omp parallel for schedule(static) if (worth_parallel(rows * dim))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    T* yr = y + r * dim;
    double sum_sq = 0;
    for (int64_t i = 0; i < dim; ++i) sum_sq += double(xr[i]) * double(xr[i]);
    T s = T(1.0 / std::sqrt(sum_sq / double(dim) + eps));
    rstd[r] = s;
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * s * weight[i];
  }
}

template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* weight, const T* rstd, T* dx, T* dweight, int64_t rows,
                      int64_t dim) {
  int threads = omp_get_max_threads();
  // Per-thread partial sums of dweight, added in a fixed order so results do not depend on scheduling.
  std::vector<T> partial(static_cast<size_t>(threads) * dim, T(0));
#pragma omp parallel num_threads(threads) if (worth_parallel(rows * dim))
  {
    T* dw = partial.data() + static_cast<size_t>(omp_get_thread_num()) * dim;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * dim;
      const T* dyr = dy + r * dim;
      T* dxr = dx + r * dim;
      T s = rstd[r];
      double dot = 0;
      for (int64_t i = 0; i < dim; ++i) dot += double(dyr[i]) * double(weight[i]) * double(xr[i]);
      T coef = T(dot / double(dim)) * s * s;
      for (int64_t i = 0; i < dim; ++i) {
        dxr[i] = s * (dyr[i] * weight[i] - xr[i] * coef);
        dw[i] += dyr[i] * xr[i] * s;
      }
    }
  }
  for (int64_t i = 0; i < dim; ++i) {
    T total = 0;
    for (int t = 0; t < threads; ++t) total += partial[static_cast<size_t>(t) * dim + i];
    dweight[i] = total;
  }
}

template void rmsnorm_forward<float>(const float*, const float*, float*, float*, int64_t, int64_t, double);
template void rmsnorm_forward<double>(const double*, const double*, double*, double*, int64_t, int64_t, double);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                      int64_t);
template void rmsnorm_backward<double>(const double*, const double*, const double*, const double*, double*, double*,
                                       int64_t, int64_t);

}  // namespace hsa::cpu
