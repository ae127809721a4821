#include "common/gradcheck.h"
#include "ops/rmsnorm.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(RmsNormGradcheck, MatchesFiniteDifferences) {
  Tensor x = randn64({3, 4, 7}, 1), w = randn64({7}, 2);
  Tensor r = randn64({3, 4, 7}, 3);
  auto loss = [&] { return dot(ops::rmsnorm_forward(x, w, 1e-6).y, r); };
  auto out = ops::rmsnorm_forward(x, w, 1e-6);
  auto g = ops::rmsnorm_backward(r, x, w, out.rstd);
  expect_gradients_match(loss, {{"x", &x, g.dx}, {"weight", &w, g.dweight}});
}
