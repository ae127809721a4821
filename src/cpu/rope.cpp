#include "cpu/rope.h"

#include <cmath>
#include <vector>

namespace hsa::cpu {

template <class T>
void rope_rotate(const T* x, T* y, int64_t B, int64_t L, int64_t H, int64_t D, int64_t position_offset, double theta,
                 int direction) {
  int64_t half = D / 2;
  // Angles in double: at 16M positions a float angle would lose the low frequencies' phase entirely.
  std::vector<T> cos_table(L * half), sin_table(L * half);
#pragma omp parallel for schedule(static) if (L * half > 16384)
  for (int64_t l = 0; l < L; ++l) {
    double pos = double(position_offset + l);
    for (int64_t i = 0; i < half; ++i) {
      double angle = pos * std::pow(theta, -2.0 * double(i) / double(D));
      cos_table[l * half + i] = T(std::cos(angle));
      sin_table[l * half + i] = T(direction * std::sin(angle));
    }
  }
#pragma omp parallel for collapse(2) schedule(static) if (B * L * H * D > 65536)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const T* c = cos_table.data() + l * half;
      const T* s = sin_table.data() + l * half;
      for (int64_t h = 0; h < H; ++h) {
        int64_t base = ((b * L + l) * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          T x1 = x[base + i], x2 = x[base + i + half];
          y[base + i] = x1 * c[i] - x2 * s[i];
          y[base + i + half] = x2 * c[i] + x1 * s[i];
        }
      }
    }
}

template void rope_rotate<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);
template void rope_rotate<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);

}  // namespace hsa::cpu
