#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/adamw.h"

#include <gtest/gtest.h>

#include <string>

using namespace hsa;
using namespace hsa::testing;


TEST(AdamW, FirstStepMovesByLrTimesSign) {
  // At step 1 the bias-corrected m/sqrt(v) is g/|g| (up to eps): every element moves by lr against its gradient,
  // after the decoupled decay p *= 1 - lr*wd.
  Tensor p = Tensor::from_values({1.0, -2.0, 0.5}, {3}), g = Tensor::from_values({0.3, -4.0, 1e-3}, {3});
  Tensor m = Tensor::zeros({3}), v = Tensor::zeros({3});
  ops::AdamWConfig cfg{0.01};
  ops::adamw_step(p, g, m, v, 1, cfg);
  EXPECT_NEAR(p.item({0}), 1.0 * (1 - 0.01 * 0.1) - 0.01, 1e-6);
  EXPECT_NEAR(p.item({1}), -2.0 * (1 - 0.01 * 0.1) + 0.01, 1e-6);
  EXPECT_NEAR(p.item({2}), 0.5 * (1 - 0.01 * 0.1) - 0.01, 1e-6);
  EXPECT_NEAR(m.item({1}), 0.1 * -4.0, 1e-6);
  EXPECT_NEAR(v.item({1}), 0.05 * 16.0, 1e-6);
}

TEST(AdamW, Bf16GradientIsAcceptedForF32Param) {
  Tensor p = Tensor::full({4}, 1.0), m = Tensor::zeros({4}), v = Tensor::zeros({4});
  ops::adamw_step(p, Tensor::full({4}, 0.5, DType::bf16), m, v, 1, {0.1, 0.9, 0.95, 1e-8, 0.0});
  for (double x : p.to_vector()) EXPECT_NEAR(x, 0.9, 1e-6);
}

TEST(AdamW, BadInputsGiveClearErrors) {
  Tensor p = randn({2, 3}, 1), g = randn({2, 3}, 2), m = Tensor::zeros({2, 3}), v = Tensor::zeros({2, 3});
  ops::AdamWConfig cfg{1e-3};
  std::string msg = error_of([&] { ops::adamw_step(p, randn({3, 2}, 2), m, v, 1, cfg); });
  EXPECT_TRUE(has(msg, "adamw_step: 'grad' has shape [3, 2], expected [2, 3]")) << msg;
  Tensor bad_m = Tensor::zeros({6});
  msg = error_of([&] { ops::adamw_step(p, g, bad_m, v, 1, cfg); });
  EXPECT_TRUE(has(msg, "adamw_step: 'm' has shape [6], expected [2, 3]")) << msg;
  Tensor v64 = Tensor::zeros({2, 3}, DType::f64);
  msg = error_of([&] { ops::adamw_step(p, g, m, v64, 1, cfg); });
  EXPECT_TRUE(has(msg, "adamw_step: 'v' has dtype f64, expected f32")) << msg;
  msg = error_of([&] { ops::adamw_step(p, g, m, v, 0, cfg); });
  EXPECT_TRUE(has(msg, "adamw_step: step is 1-based, got 0")) << msg;
  Tensor pb = p.to(DType::bf16);
  msg = error_of([&] { ops::adamw_step(pb, g, m, v, 1, cfg); });
  EXPECT_TRUE(has(msg, "adamw_step: 'param' has dtype bf16, expected f32 or f64")) << msg;
  Tensor big = randn({2, 6}, 3);
  Tensor strided = big.slice(1, 0, 3);
  msg = error_of([&] { ops::adamw_step(strided, g, m, v, 1, cfg); });
  EXPECT_TRUE(has(msg, "adamw_step: 'param', 'm' and 'v' must be contiguous")) << msg;
  msg = error_of([&] { ops::adamw_step(p, g, m, v, 1, {1e-3, 1.0}); });
  EXPECT_TRUE(has(msg, "adamw_step: beta1 must be in [0, 1), got 1")) << msg;
  msg = error_of([&] { ops::adamw_step(p, g, m, v, 1, {-1.0}); });
  EXPECT_TRUE(has(msg, "adamw_step: lr must be finite and >= 0, got -1")) << msg;
  msg = error_of([&] { ops::adamw_step(p, g, m, v, 1, {1e-3, 0.9, 0.95, 0.0}); });
  EXPECT_TRUE(has(msg, "adamw_step: eps must be positive")) << msg;
}
