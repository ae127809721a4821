#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;

TEST(Schedule, WarmupThenCosineToTheFloor) {
  ScheduleConfig s{1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(learning_rate(s, 1), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 10), 1.0);
  EXPECT_NEAR(learning_rate(s, 60), 0.55, 1e-12);  // half way through the decay
  EXPECT_NEAR(learning_rate(s, 110), 0.1, 1e-12);
  EXPECT_NEAR(learning_rate(s, 500), 0.1, 1e-12);  // stays at the floor
}

TEST(ClipGradNorm, ScalesToTheLimit) {
  TensorMap grads{{"a", Tensor::from_values({3, 0}, {2})}, {"b", Tensor::from_values({4}, {1})}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(grads, 1.0), 5.0);
  EXPECT_NEAR(grads["a"].item({0}), 0.6, 1e-6);
  EXPECT_NEAR(grads["b"].item({0}), 0.8, 1e-6);
  EXPECT_NEAR(clip_grad_norm(grads, 0.0), 1.0, 1e-6);  // 0 = report only
}

TEST(AdamWState, RoundTripsThroughNamedTensors) {
  TensorMap params{{"w", Tensor::from_values({1, 2, 3}, {3})}};
  TensorMap grads{{"w", Tensor::from_values({0.1, -0.2, 0.3}, {3})}};
  AdamW a(ops::AdamWConfig{0.01});
  a.step(params, grads, 0.01);
  AdamW b(ops::AdamWConfig{0.01});
  b.load_state(a.state(), a.steps());
  TensorMap pa = params, pb{{"w", params["w"].clone()}};
  a.step(pa, grads, 0.01);
  b.step(pb, grads, 0.01);
  EXPECT_EQ(pa["w"].to_vector(), pb["w"].to_vector());
}
