#include "cpu/adamw.h"

#include <cmath>

namespace hsa::cpu {

template <class T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step) {
  // Scalars in double: beta^step for a large step underflows gracefully there, and 1 - beta2^step is small early
  // on, where float would lose digits.
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  const T b1 = T(beta1), b2 = T(beta2), one_m_b1 = T(1.0 - beta1), one_m_b2 = T(1.0 - beta2);
  const T decay = T(1.0 - lr * weight_decay), step_size = T(lr / bc1), inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2)),
          eps_t = T(eps);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    T mi = b1 * m[i] + one_m_b1 * g;
    T vi = b2 * v[i] + one_m_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps_t);
  }
}

template void adamw_step<float>(float*, const float*, float*, float*, int64_t, double, double, double, double, double,
                                int64_t);
template void adamw_step<double>(double*, const double*, double*, double*, int64_t, double, double, double, double,
                                 double, int64_t);

}  // namespace hsa::cpu
