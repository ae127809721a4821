// exp for softmax inner loops. The f32 version is a polynomial the compiler vectorises (std::exp is a scalar
// libm call per element, and the softmax is most of the non-GEMM time in attention): Cody-Waite reduction
// x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial (measured worst error 7.5e-8 relative over [-87, 10],
// under one f32 ulp), scaled by 2^n through the exponent bits. Inputs are clamped to [-87, 88].
// Written so GCC 12 vectorises it: ternaries rather than std::min/max, and rounding by the 1.5 * 2^23 trick
// (the sum's low mantissa bits hold n) instead of std::floor.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace hsa::cpu {

inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float big = x * 1.44269504088896341f + 12582912.0f;
  float n = big - 12582912.0f;
  float r = x - n * 0.693145751953125f - n * 1.428606765330187e-6f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>((std::bit_cast<int32_t>(big) - 0x4B400000 + 127) << 23);
}

// f64 is the gradient-check reference: exactness over speed.
inline double fast_exp(double x) { return std::exp(x); }

}  // namespace hsa::cpu
