// exp for softmax inner loops. The float version is a branch-free polynomial the compiler vectorises
// (std::expf is a scalar libm call and dominated the HSA and attention kernels); relative error < 2e-7 on
// the inputs softmax produces (x <= 0). The double version is std::exp: gradient checks need full precision.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace hsa::cpu {

inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // exp(x) = 2^n * 2^f with n = round(x log2 e), f in [-0.5, 0.5].
  float t = x * 1.44269504088896341f;
  float n = std::nearbyint(t);
  float f = t - n;
  // 2^f by its Taylor series in f ln 2 (degree 6).
  float p = 1.5403530393381606e-4f;
  p = p * f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

inline double fast_exp(double x) { return std::exp(x); }

}  // namespace hsa::cpu
