#include "common/gradcheck.h"
#include "ops/linear.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(LinearGradcheck, MatchesFiniteDifferences) {
  Tensor x = randn64({2, 3, 6}, 1), w = randn64({4, 6}, 2);
  Tensor r = randn64({2, 3, 4}, 3);
  auto loss = [&] { return dot(ops::linear_forward(x, w), r); };
  auto g = ops::linear_backward(r, x, w);
  expect_gradients_match(loss, {{"x", &x, g.dx}, {"w", &w, g.dw}});
}
