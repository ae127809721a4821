#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <string>

using namespace hsa;
using namespace hsa::testing;


TEST(Elementwise, AddMatchesSum) {
  Tensor a = randn64({3, 4, 5}, 1), b = randn64({3, 4, 5}, 2);
  Tensor c = ops::add(a, b);
  ASSERT_EQ(c.shape(), a.shape());
  EXPECT_EQ(c.dtype(), DType::f64);
  std::vector<double> av = a.to_vector(), bv = b.to_vector(), cv = c.to_vector();
  for (size_t i = 0; i < cv.size(); ++i) EXPECT_EQ(cv[i], av[i] + bv[i]);
}

TEST(Elementwise, AddInPlaceWithAlpha) {
  Tensor dst = randn({200000}, 1), src = randn({200000}, 2);  // large enough to run multithreaded
  std::vector<double> before = dst.to_vector(), sv = src.to_vector();
  ops::add_(dst, src, -0.5);
  std::vector<double> after = dst.to_vector();
  for (size_t i = 0; i < after.size(); i += 997) EXPECT_NEAR(after[i], before[i] - 0.5 * sv[i], 1e-6);
  EXPECT_NEAR(after.back(), before.back() - 0.5 * sv.back(), 1e-6);
  // Default alpha is 1.
  Tensor d2 = Tensor::full({3}, 1.0), s2 = Tensor::full({3}, 2.0);
  ops::add_(d2, s2);
  for (double x : d2.to_vector()) EXPECT_EQ(x, 3.0);
}

TEST(Elementwise, AddInPlaceIntoStridedViewLeavesTheRestAlone) {
  Tensor base = Tensor::zeros({4, 6});
  Tensor view = base.slice(1, 2, 5);  // [4, 3], not contiguous
  ASSERT_FALSE(view.is_contiguous());
  ops::add_(view, Tensor::full({4, 3}, 1.0), 2.0);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) EXPECT_EQ(base.item({r, c}), (c >= 2 && c < 5) ? 2.0 : 0.0);
}

TEST(Elementwise, Bf16MatchesF32) {
  Tensor a = randn({64}, 1), b = randn({64}, 2);
  Tensor got = ops::add(a.to(DType::bf16), b.to(DType::bf16));
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_LT(relative_error(got, ops::add(a, b)), 1e-2);
  Tensor dst = a.to(DType::bf16);
  ops::add_(dst, b.to(DType::bf16), 3.0);
  EXPECT_EQ(dst.dtype(), DType::bf16);
  Tensor ref = a.clone();
  ops::add_(ref, b, 3.0);
  EXPECT_LT(relative_error(dst, ref), 1e-2);
  Tensor s = ops::scale(a.to(DType::bf16), 0.25);
  EXPECT_EQ(s.dtype(), DType::bf16);
  EXPECT_LT(relative_error(s, ops::scale(a, 0.25)), 1e-2);
}

TEST(Elementwise, ScaleMultiplies) {
  Tensor x = randn64({7, 3}, 3);
  Tensor y = ops::scale(x, -2.5);
  std::vector<double> xv = x.to_vector(), yv = y.to_vector();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_EQ(yv[i], -2.5 * xv[i]);
  Tensor z = ops::scale(x.slice(0, 1, 4), 2.0);  // a view works too
  EXPECT_EQ(z.shape(), (Shape{3, 3}));
  EXPECT_EQ(z.item({0, 0}), 2.0 * x.item({1, 0}));
}

TEST(Elementwise, BadInputsGiveClearErrors) {
  Tensor a = randn({2, 3}, 1);
  std::string msg = error_of([&] { ops::add(a, randn({3, 2}, 2)); });
  EXPECT_TRUE(has(msg, "add: 'b' has shape [3, 2], expected [2, 3]")) << msg;
  msg = error_of([&] { ops::add(a, randn({2, 3}, 2, 1.0, DType::f64)); });
  EXPECT_TRUE(has(msg, "add: 'a' is f32 but 'b' is f64")) << msg;
  msg = error_of([&] { ops::add_(a, randn({6}, 2)); });
  EXPECT_TRUE(has(msg, "add_: 'src' has shape [6], expected [2, 3]")) << msg;
  Tensor ints = Tensor::zeros({2, 3}, DType::i32);
  msg = error_of([&] { ops::add_(ints, ints); });
  EXPECT_TRUE(has(msg, "add_: 'dst' has dtype i32")) << msg;
  msg = error_of([&] { ops::scale(ints, 2.0); });
  EXPECT_TRUE(has(msg, "scale: 'x' has dtype i32")) << msg;
  msg = error_of([&] { ops::scale(Tensor(), 2.0); });
  EXPECT_TRUE(has(msg, "scale: tensor 'x' is undefined")) << msg;
}

TEST(Elementwise, SumOfSquaresOverSeveralTensorsInF64) {
  Tensor a = Tensor::from_values({1, -2, 3}, {3}), b = Tensor::from_values({0.5, 4}, {1, 2}, DType::bf16);
  EXPECT_DOUBLE_EQ(ops::sum_of_squares({a, b}), 1 + 4 + 9 + 0.25 + 16);
  EXPECT_EQ(ops::sum_of_squares({}), 0.0);
  Tensor i = Tensor::from_i32({1, 2}, {2});
  EXPECT_THROW(ops::sum_of_squares({a, i}), Error);
}
