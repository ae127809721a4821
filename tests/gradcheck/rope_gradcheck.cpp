#include "common/gradcheck.h"
#include "ops/rope.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(RopeGradcheck, MatchesFiniteDifferencesAtAnOffset) {
  Tensor x = randn64({2, 5, 3, 8}, 1), r = randn64({2, 5, 3, 8}, 2);
  auto loss = [&] { return dot(ops::rope_forward(x, 1234567, 10000.0), r); };
  expect_gradients_match(loss, {{"x", &x, ops::rope_backward(r, 1234567, 10000.0)}});
}
