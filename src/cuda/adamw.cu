#include "cuda/adamw.h"

#include "cuda/kernel_util.cuh"

#include <cmath>

namespace hsa::cuda {

namespace {

// f32 param, m, v and the grad in packs of 4 (16 bytes of f32, 8 of bf16).
template <class G>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, int64_t n, float b1, float b2,
                             float one_m_b1, float one_m_b2, float decay, float step_size, float inv_sqrt_bc2,
                             float eps, bool packed) {
  for_each_pack<kPack<float>>(n, packed, [=](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    float g[W], mi[W], vi[W], p[W];
    load_pack<W>(grad + i, g);
    load_pack<W>(m + i, mi);
    load_pack<W>(v + i, vi);
    load_pack<W>(param + i, p);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      mi[k] = b1 * mi[k] + one_m_b1 * g[k];
      vi[k] = b2 * vi[k] + one_m_b2 * g[k] * g[k];
      p[k] = p[k] * decay - step_size * mi[k] / (sqrtf(vi[k]) * inv_sqrt_bc2 + eps);
    }
    store_pack<W>(m + i, mi);
    store_pack<W>(v + i, vi);
    store_pack<W>(param + i, p);
  });
}

}  // namespace

template <class G>
void adamw_step(float* param, const G* grad, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step) {
  if (n == 0) return;
  // Scalars in double on the host, exactly as the CPU kernel forms them.
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  const bool packed = packs_aligned<kPack<float>>(param, grad, m, v);
  adamw_kernel<<<grid_for_packs(n, kPack<float>, 256), 256, 0, stream()>>>(
      param, dev(grad), m, v, n, float(beta1), float(beta2), float(1.0 - beta1), float(1.0 - beta2),
      float(1.0 - lr * weight_decay), float(lr / bc1), float(1.0 / std::sqrt(bc2)), float(eps), packed);
  check_launch("adamw_kernel");
}

template void adamw_step<float>(float*, const float*, float*, float*, int64_t, double, double, double, double, double,
                                int64_t);
template void adamw_step<bf16>(float*, const bf16*, float*, float*, int64_t, double, double, double, double, double,
                               int64_t);

}  // namespace hsa::cuda
