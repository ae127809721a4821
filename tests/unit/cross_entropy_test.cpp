#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace hsa;
using namespace hsa::testing;

namespace {

// log sum exp of one row, plainly (fine for the moderate logits used here).
double naive_lse(const Tensor& logits, int64_t n) {
  double s = 0;
  for (int64_t v = 0; v < logits.dim(1); ++v) s += std::exp(logits.item({n, v}));
  return std::log(s);
}
}  // namespace

TEST(CrossEntropy, ForwardMatchesFormula) {
  Tensor logits = randn64({6, 11}, 1, 2.0);
  Tensor targets = Tensor::from_i32({0, 10, 3, 3, 7, 1}, {6});
  auto out = ops::cross_entropy_forward(logits, targets);
  double total = 0;
  for (int64_t n = 0; n < 6; ++n) {
    double lse = naive_lse(logits, n);
    EXPECT_NEAR(out.lse.item({n}), lse, 1e-12);
    total += lse - logits.item({n, static_cast<int64_t>(targets.item({n}))});
  }
  EXPECT_EQ(out.count, 6);
  EXPECT_NEAR(out.loss, total / 6, 1e-12);
}

TEST(CrossEntropy, SomeTargetsIgnored) {
  Tensor logits = randn64({5, 7}, 2);
  Tensor targets = Tensor::from_i32({2, -100, 6, -100, 0}, {5});
  auto out = ops::cross_entropy_forward(logits, targets);
  EXPECT_EQ(out.count, 3);
  double total = 0;
  for (int64_t n : {0, 2, 4}) total += naive_lse(logits, n) - logits.item({n, static_cast<int64_t>(targets.item({n}))});
  EXPECT_NEAR(out.loss, total / 3, 1e-12);
  // Backward: ignored rows are zero, counted rows are (softmax - onehot) * dloss / 3.
  Tensor d = ops::cross_entropy_backward(2.0, logits, targets, out.lse);
  for (int64_t n = 0; n < 5; ++n) {
    int32_t t = static_cast<int32_t>(targets.item({n}));
    double row_sum = 0;
    for (int64_t v = 0; v < 7; ++v) {
      double expected =
          t == -100 ? 0.0 : 2.0 / 3 * (std::exp(logits.item({n, v}) - naive_lse(logits, n)) - (v == t ? 1.0 : 0.0));
      EXPECT_NEAR(d.item({n, v}), expected, 1e-12);
      row_sum += d.item({n, v});
    }
    EXPECT_NEAR(row_sum, 0.0, 1e-12);  // softmax sums to one, minus the one-hot
  }
  // A custom ignore_index (here a valid class id) is honoured too.
  auto custom = ops::cross_entropy_forward(logits, Tensor::from_i32({2, 3, 6, 3, 0}, {5}), 3);
  EXPECT_EQ(custom.count, 3);
  EXPECT_NEAR(custom.loss, out.loss, 1e-12);
}

TEST(CrossEntropy, AllTargetsIgnored) {
  Tensor logits = randn64({3, 4}, 3);
  Tensor targets = Tensor::from_i32({-100, -100, -100}, {3});
  auto out = ops::cross_entropy_forward(logits, targets);
  EXPECT_EQ(out.count, 0);
  EXPECT_EQ(out.loss, 0.0);
  Tensor d = ops::cross_entropy_backward(1.0, logits, targets, out.lse);
  ASSERT_EQ(d.shape(), (Shape{3, 4}));
  for (double x : d.to_vector()) EXPECT_EQ(x, 0.0);
}

TEST(CrossEntropy, StableForHugeLogits) {
  // exp(1000) overflows; max subtraction keeps lse = 1000 + log(1 + e^-1) exact-ish.
  Tensor logits = Tensor::from_values({1000.0, 999.0, -1000.0, 1e4}, {2, 2}, DType::f32);
  Tensor targets = Tensor::from_i32({1, 0}, {2});
  auto out = ops::cross_entropy_forward(logits, targets);
  EXPECT_TRUE(std::isfinite(out.loss));
  double row0 = std::log1p(std::exp(-1.0)) + 1.0, row1 = 1e4 + 1000.0;
  EXPECT_NEAR(out.loss, (row0 + row1) / 2, 1e-3);
  Tensor d = ops::cross_entropy_backward(1.0, logits, targets, out.lse);
  for (double x : d.to_vector()) EXPECT_TRUE(std::isfinite(x));
  EXPECT_NEAR(d.item({1, 0}), -0.5, 1e-6);  // softmax puts all mass on class 1; target 0 gets (0 - 1) / 2
}

TEST(CrossEntropy, Bf16MatchesF32AndLargeBatchIsThreadIndependent) {
  Tensor logits = randn({64, 1000}, 4, 3.0);
  std::vector<int32_t> t(64);
  for (int i = 0; i < 64; ++i) t[i] = (i * 37) % 1000;
  t[5] = -100;
  Tensor targets = Tensor::from_i32(t, {64});
  auto ref = ops::cross_entropy_forward(logits, targets);
  auto got = ops::cross_entropy_forward(logits.to(DType::bf16), targets);
  EXPECT_EQ(got.count, 63);
  EXPECT_EQ(got.lse.dtype(), DType::f32);
  // bf16 rounding of logits around 3 shifts each row's loss by ~0.01 at most.
  EXPECT_NEAR(got.loss, ref.loss, 1e-2 * ref.loss);
  Tensor dref = ops::cross_entropy_backward(1.0, logits, targets, ref.lse);
  Tensor dgot = ops::cross_entropy_backward(1.0, logits.to(DType::bf16), targets, got.lse);
  EXPECT_EQ(dgot.dtype(), DType::bf16);
  EXPECT_LT(relative_error(dgot, dref), 5e-2);
  EXPECT_EQ(ops::cross_entropy_forward(logits, targets).loss, ref.loss);
}

TEST(CrossEntropy, BadInputsGiveClearErrors) {
  Tensor logits = randn({3, 5}, 1);
  std::string msg = error_of([&] { ops::cross_entropy_forward(logits, Tensor::from_i32({0, 5, 1}, {3})); });
  EXPECT_TRUE(has(msg, "cross_entropy_forward: 'targets'[1] = 5 is outside [0, 5) and not ignore_index (-100)"))
      << msg;
  msg = error_of([&] { ops::cross_entropy_forward(logits, Tensor::from_i32({0, -1, 1}, {3})); });
  EXPECT_TRUE(has(msg, "'targets'[1] = -1 is outside [0, 5)")) << msg;
  msg = error_of([&] { ops::cross_entropy_forward(logits, Tensor::from_i32({0, 1}, {2})); });
  EXPECT_TRUE(has(msg, "cross_entropy_forward: 'targets' has shape [2], expected [3]")) << msg;
  msg = error_of([&] { ops::cross_entropy_forward(logits, randn({3}, 1)); });
  EXPECT_TRUE(has(msg, "cross_entropy_forward: 'targets' has dtype f32, expected i32")) << msg;
  msg = error_of([&] { ops::cross_entropy_forward(randn({3, 5, 2}, 1), Tensor::from_i32({0, 1, 2}, {3})); });
  EXPECT_TRUE(has(msg, "cross_entropy_forward: 'logits' has shape [3, 5, 2] (3 dims), expected 2 dims")) << msg;
  Tensor targets = Tensor::from_i32({0, 1, 2}, {3});
  msg = error_of([&] { ops::cross_entropy_backward(1.0, logits, targets, randn({4}, 1)); });
  EXPECT_TRUE(has(msg, "cross_entropy_backward: 'lse' has shape [4], expected [3]")) << msg;
  msg = error_of([&] { ops::cross_entropy_backward(1.0, logits, Tensor::from_i32({0, 9, 2}, {3}), randn({3}, 1)); });
  EXPECT_TRUE(has(msg, "cross_entropy_backward: 'targets'[1] = 9 is outside [0, 5)")) << msg;
}
