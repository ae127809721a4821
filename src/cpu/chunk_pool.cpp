#include "cpu/chunk_pool.h"

#include <algorithm>

namespace hsa::cpu {

template <class T>
void chunk_mean_forward(const T* x, T* pooled, int64_t B, int64_t L, int64_t C, int64_t S, int64_t dm) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      T* out = pooled + (b * C + c) * dm;
      std::fill(out, out + dm, T(0));
      for (int64_t j = 0; j < S; ++j) {
        const T* row = x + (b * L + c * S + j) * dm;
        for (int64_t i = 0; i < dm; ++i) out[i] += row[i];
      }
      for (int64_t i = 0; i < dm; ++i) out[i] /= T(S);
    }
}

template <class T>
void chunk_mean_backward(const T* dpooled, T* dx, int64_t B, int64_t L, int64_t C, int64_t S, int64_t dm) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      T* row = dx + (b * L + t) * dm;
      int64_t c = t / S;
      if (c >= C) {
        std::fill(row, row + dm, T(0));
        continue;
      }
      const T* g = dpooled + (b * C + c) * dm;
      for (int64_t i = 0; i < dm; ++i) row[i] = g[i] / T(S);
    }
}

template void chunk_mean_forward<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_forward<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_backward<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_backward<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, int64_t);

}  // namespace hsa::cpu
