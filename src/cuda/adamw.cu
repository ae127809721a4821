#include "cuda/adamw.h"

#include "cuda/kernel_util.cuh"

#include <cmath>

namespace hsa::cuda {

namespace {

template <class G>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, int64_t n, float b1, float b2,
                             float one_m_b1, float one_m_b2, float decay, float step_size, float inv_sqrt_bc2,
                             float eps) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    float g = to_f32(grad[i]);
    float mi = b1 * m[i] + one_m_b1 * g;
    float vi = b2 * v[i] + one_m_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace

template <class G>
void adamw_step(float* param, const G* grad, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step) {
  if (n == 0) return;
  // Scalars in double on the host, exactly as the CPU kernel forms them.
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  adamw_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(
      param, dev(grad), m, v, n, float(beta1), float(beta2), float(1.0 - beta1), float(1.0 - beta2),
      float(1.0 - lr * weight_decay), float(lr / bc1), float(1.0 / std::sqrt(bc2)), float(eps));
  check_launch("adamw_kernel");
}

template void adamw_step<float>(float*, const float*, float*, float*, int64_t, double, double, double, double, double,
                                int64_t);
template void adamw_step<bf16>(float*, const bf16*, float*, float*, int64_t, double, double, double, double, double,
                               int64_t);

}  // namespace hsa::cuda
