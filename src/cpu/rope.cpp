#include "cpu/rope.h"

#include <cmath>
#include <vector>

namespace hsa::cpu {

template <class T>
void rope_rotate(const T* x, T* y, int64_t batch, int64_t seq_len, int64_t heads, int64_t head_dim,
                 int64_t position_offset, double theta, int sign) {
  const int64_t half = head_dim / 2;
  std::vector<double> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) freq[i] = std::pow(theta, -2.0 * double(i) / double(head_dim));
  const int64_t row = heads * head_dim;  // elements per (b, l)
  // Parallel over l: the cos/sin of one position are computed once and reused for every batch row and head,
  // so the trigonometry costs L*D/2 evaluations whatever B and H are.
#pragma omp parallel if (seq_len * batch * row > 32768)
  {
    std::vector<T> cos_a(static_cast<size_t>(half)), sin_a(static_cast<size_t>(half));
#pragma omp for schedule(static)
    for (int64_t l = 0; l < seq_len; ++l) {
      const double pos = double(position_offset + l);  // exact: positions are far below 2^53
      for (int64_t i = 0; i < half; ++i) {
        double a = pos * freq[i];
        cos_a[i] = T(std::cos(a));
        sin_a[i] = T(sign * std::sin(a));
      }
      for (int64_t b = 0; b < batch; ++b) {
        const T* xr = x + (b * seq_len + l) * row;
        T* yr = y + (b * seq_len + l) * row;
        for (int64_t h = 0; h < heads; ++h) {
          const T* xh = xr + h * head_dim;
          T* yh = yr + h * head_dim;
          for (int64_t i = 0; i < half; ++i) {
            T x1 = xh[i], x2 = xh[i + half];
            yh[i] = x1 * cos_a[i] - x2 * sin_a[i];
            yh[i + half] = x1 * sin_a[i] + x2 * cos_a[i];
          }
        }
      }
    }
  }
}

template void rope_rotate<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);
template void rope_rotate<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);

}  // namespace hsa::cpu
