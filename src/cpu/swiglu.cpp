#include "cpu/swiglu.h"

#include <cmath>

namespace hsa::cpu {

template <class T> void swiglu_forward(const T* gate, const T* up, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    T sig = T(1) / (T(1) + std::exp(-gate[i]));
    out[i] = gate[i] * sig * up[i];
  }
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)).
template <class T> void swiglu_backward(const T* dout, const T* gate, const T* up, T* dgate, T* dup, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    T g = gate[i];
    T sig = T(1) / (T(1) + std::exp(-g));
    T silu = g * sig;
    dup[i] = dout[i] * silu;
    dgate[i] = dout[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
  }
}

template void swiglu_forward<float>(const float*, const float*, float*, int64_t);
template void swiglu_forward<double>(const double*, const double*, double*, int64_t);
template void swiglu_backward<float>(const float*, const float*, const float*, float*, float*, int64_t);
template void swiglu_backward<double>(const double*, const double*, const double*, double*, double*, int64_t);

}  // namespace hsa::cpu
