#include "cpu/adamw.h"

#include <cmath>

namespace hsa::cpu {

template <class T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step) {
  double c1 = 1.0 - std::pow(beta1, double(step)), c2 = 1.0 - std::pow(beta2, double(step));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    double g = grad[i];
    double mi = beta1 * double(m[i]) + (1 - beta1) * g;
    double vi = beta2 * double(v[i]) + (1 - beta2) * g * g;
    m[i] = T(mi);
    v[i] = T(vi);
    double update = (mi / c1) / (std::sqrt(vi / c2) + eps);
    param[i] = T(double(param[i]) - lr * (update + weight_decay * double(param[i])));
  }
}

template void adamw_step<float>(float*, const float*, float*, float*, int64_t, double, double, double, double, double,
                                int64_t);
template void adamw_step<double>(double*, const double*, double*, double*, int64_t, double, double, double, double,
                                 double, int64_t);

}  // namespace hsa::cpu
