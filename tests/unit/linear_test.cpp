#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/linear.h"

#include <gtest/gtest.h>

#include <string>

using namespace hsa;
using namespace hsa::testing;

namespace {

// y[r, o] = sum_i x[r, i] w[o, i], in double.
std::vector<double> naive_linear(const std::vector<double>& x, const std::vector<double>& w, int64_t rows,
                                 int64_t in, int64_t out) {
  std::vector<double> y(rows * out, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) y[r * out + o] += x[r * in + i] * w[o * in + i];
  return y;
}
}  // namespace

TEST(Linear, ForwardMatchesNaiveProduct) {
  Tensor x = randn({2, 3, 7}, 1), w = randn({5, 7}, 2);
  Tensor y = ops::linear_forward(x, w);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  Tensor ref = Tensor::from_values(naive_linear(x.to_vector(), w.to_vector(), 6, 7, 5), {2, 3, 5}, DType::f64);
  EXPECT_LT(max_abs_diff(y, ref), 1e-5);
}

TEST(Linear, BackwardMatchesNaiveProducts) {
  const int64_t rows = 6, in = 7, out = 5;
  Tensor x = randn64({rows, in}, 1), w = randn64({out, in}, 2), dy = randn64({rows, out}, 3);
  auto g = ops::linear_backward(dy, x, w);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), dyv = dy.to_vector();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i) {
      double s = 0;
      for (int64_t o = 0; o < out; ++o) s += dyv[r * out + o] * wv[o * in + i];
      EXPECT_NEAR(g.dx.item({r, i}), s, 1e-12);
    }
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double s = 0;
      for (int64_t r = 0; r < rows; ++r) s += dyv[r * out + o] * xv[r * in + i];
      EXPECT_NEAR(g.dw.item({o, i}), s, 1e-12);
    }
}

TEST(Linear, Bf16MatchesF32) {
  Tensor x = randn({4, 9, 64}, 1), w = randn({48, 64}, 2, 0.1), dy = randn({4, 9, 48}, 3);
  Tensor ref = ops::linear_forward(x, w);
  Tensor got = ops::linear_forward(x.to(DType::bf16), w.to(DType::bf16));
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_LT(relative_error(got, ref), 1e-2);
  auto gref = ops::linear_backward(dy, x, w);
  auto ggot = ops::linear_backward(dy.to(DType::bf16), x.to(DType::bf16), w.to(DType::bf16));
  EXPECT_EQ(ggot.dx.dtype(), DType::bf16);
  EXPECT_EQ(ggot.dw.dtype(), DType::bf16);
  EXPECT_LT(relative_error(ggot.dx, gref.dx), 1e-2);
  EXPECT_LT(relative_error(ggot.dw, gref.dw), 1e-2);
}

TEST(Linear, EmptyBatchGivesZeroWeightGradient) {
  Tensor x = Tensor::zeros({0, 4}), w = randn({3, 4}, 1);
  EXPECT_EQ(ops::linear_forward(x, w).shape(), (Shape{0, 3}));
  auto g = ops::linear_backward(Tensor::zeros({0, 3}), x, w);
  EXPECT_EQ(g.dx.shape(), (Shape{0, 4}));
  ASSERT_EQ(g.dw.shape(), (Shape{3, 4}));
  for (double d : g.dw.to_vector()) EXPECT_EQ(d, 0.0);
}

TEST(Linear, NonContiguousInputIsHandled) {
  Tensor big = randn({5, 12}, 1), w = randn({3, 6}, 2);
  Tensor x = big.slice(1, 3, 9);  // [5, 6], row stride 12
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_LT(max_abs_diff(ops::linear_forward(x, w), ops::linear_forward(x.contiguous(), w)), 1e-6);
}

TEST(Linear, BadInputsGiveClearErrors) {
  Tensor x = randn({4, 8}, 1);
  std::string msg = error_of([&] { ops::linear_forward(x, randn({3, 7}, 2)); });
  EXPECT_TRUE(has(msg, "linear_forward: 'x' has shape [4, 8] but 'w' has shape [3, 7]")) << msg;
  msg = error_of([&] { ops::linear_forward(x, randn({8}, 2)); });
  EXPECT_TRUE(has(msg, "linear_forward: 'w' has shape [8] (1 dims), expected 2 dims")) << msg;
  msg = error_of([&] { ops::linear_forward(x, randn({3, 8}, 2, 1.0, DType::f64)); });
  EXPECT_TRUE(has(msg, "linear_forward: 'x' is f32 but 'w' is f64")) << msg;
  msg = error_of([&] { ops::linear_forward(Tensor::zeros({4, 8}, DType::i32), randn({3, 8}, 2)); });
  EXPECT_TRUE(has(msg, "linear_forward: 'x' has dtype i32")) << msg;
  msg = error_of([&] { ops::linear_backward(randn({4, 2}, 3), x, randn({3, 8}, 2)); });
  EXPECT_TRUE(has(msg, "linear_backward: 'dy' has shape [4, 2], expected [4, 3]")) << msg;
}
