#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace hsa;
using namespace hsa::testing;

namespace {

// The rotate-half formula written out element by element. The angle is formed in long double and reduced
// modulo 2 pi there, independently of the kernel's double arithmetic.
Tensor naive_rope(const Tensor& x, int64_t offset, double theta) {
  Tensor y = Tensor::zeros(x.shape(), DType::f64);
  const int64_t B = x.dim(0), L = x.dim(1), H = x.dim(2), D = x.dim(3), half = D / 2;
  const long double two_pi = 2.0L * 3.14159265358979323846264338327950288L;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          long double freq = std::pow(static_cast<long double>(theta), -2.0L * i / D);
          long double a = std::fmod(static_cast<long double>(offset + l) * freq, two_pi);
          double c = static_cast<double>(std::cos(a)), s = static_cast<double>(std::sin(a));
          double x1 = x.item({b, l, h, i}), x2 = x.item({b, l, h, i + half});
          y.set({b, l, h, i}, x1 * c - x2 * s);
          y.set({b, l, h, i + half}, x1 * s + x2 * c);
        }
  return y;
}
}  // namespace

TEST(Rope, ForwardMatchesFormula) {
  Tensor x = randn64({2, 5, 3, 8}, 1);
  Tensor y = ops::rope_forward(x, 7, 10000.0);
  EXPECT_LT(max_abs_diff(y, naive_rope(x, 7, 10000.0)), 1e-12);
  // f32 too, against the same double reference.
  Tensor y32 = ops::rope_forward(x.to(DType::f32), 7, 10000.0);
  EXPECT_EQ(y32.dtype(), DType::f32);
  EXPECT_LT(max_abs_diff(y32, naive_rope(x, 7, 10000.0)), 1e-5);
}

TEST(Rope, PositionZeroIsIdentity) {
  Tensor x = randn({1, 1, 2, 6}, 1);
  EXPECT_EQ(max_abs_diff(ops::rope_forward(x, 0, 10000.0), x), 0.0);
}

TEST(Rope, LargePositionOffsetStaysAccurate) {
  // Positions around 10M and 16M: with the angle formed in float the lowest frequency would be off by ~1 rad;
  // in double it is within ~1e-8 of the long-double reference.
  Tensor x = randn64({1, 4, 2, 16}, 2);
  for (int64_t offset : {int64_t{10'000'000}, int64_t{16'777'213}}) {
    Tensor ref = naive_rope(x, offset, 500000.0);
    EXPECT_LT(max_abs_diff(ops::rope_forward(x, offset, 500000.0), ref), 1e-7) << offset;
    EXPECT_LT(max_abs_diff(ops::rope_forward(x.to(DType::f32), offset, 500000.0), ref), 1e-5) << offset;
  }
}

TEST(Rope, OffsetShiftsPositions) {
  // Rows l >= 1 with offset 0 equal rows l - 1 with offset 1 (same absolute positions).
  Tensor x = randn64({1, 4, 1, 8}, 3);
  Tensor a = ops::rope_forward(x, 0, 10000.0).slice(1, 1, 4);
  Tensor b = ops::rope_forward(x.slice(1, 1, 4).contiguous(), 1, 10000.0);
  EXPECT_LT(max_abs_diff(a, b), 1e-14);
}

TEST(Rope, BackwardInvertsForwardAndPreservesNorm) {
  Tensor x = randn64({2, 6, 2, 10}, 4);
  Tensor y = ops::rope_forward(x, 123, 10000.0);
  EXPECT_LT(max_abs_diff(ops::rope_backward(y, 123, 10000.0), x), 1e-12);
  EXPECT_NEAR(dot(y, y), dot(x, x), 1e-10 * dot(x, x));
}

TEST(Rope, Bf16MatchesF32) {
  Tensor x = randn({2, 8, 4, 16}, 5);
  Tensor ref = ops::rope_forward(x, 1000, 10000.0);
  Tensor got = ops::rope_forward(x.to(DType::bf16), 1000, 10000.0);
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_LT(relative_error(got, ref), 1e-2);
}

TEST(Rope, BadInputsGiveClearErrors) {
  std::string msg = error_of([&] { ops::rope_forward(randn({2, 3, 4}, 1), 0, 10000.0); });
  EXPECT_TRUE(has(msg, "rope_forward: 'x' has shape [2, 3, 4] (3 dims), expected 4 dims")) << msg;
  msg = error_of([&] { ops::rope_forward(randn({1, 2, 3, 5}, 1), 0, 10000.0); });
  EXPECT_TRUE(has(msg, "rope_forward: 'x' has shape [1, 2, 3, 5]: head dim D = 5 must be even")) << msg;
  msg = error_of([&] { ops::rope_backward(randn({1, 2, 3, 5}, 1), 0, 10000.0); });
  EXPECT_TRUE(has(msg, "rope_backward: 'dy' has shape [1, 2, 3, 5]")) << msg;
  msg = error_of([&] { ops::rope_forward(randn({1, 2, 3, 4}, 1), -1, 10000.0); });
  EXPECT_TRUE(has(msg, "rope_forward: position_offset must be >= 0, got -1")) << msg;
  msg = error_of([&] { ops::rope_forward(randn({1, 2, 3, 4}, 1), 0, 0.0); });
  EXPECT_TRUE(has(msg, "rope_forward: theta must be positive")) << msg;
  msg = error_of([&] { ops::rope_forward(Tensor::zeros({1, 2, 3, 4}, DType::i32), 0, 10000.0); });
  EXPECT_TRUE(has(msg, "rope_forward: 'x' has dtype i32")) << msg;
}
