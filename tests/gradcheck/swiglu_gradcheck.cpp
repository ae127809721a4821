#include "common/gradcheck.h"
#include "ops/swiglu.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(SwigluGradcheck, MatchesFiniteDifferences) {
  Tensor gate = randn64({4, 9}, 1, 2.0), up = randn64({4, 9}, 2), r = randn64({4, 9}, 3);
  auto loss = [&] { return dot(ops::swiglu_forward(gate, up), r); };
  auto g = ops::swiglu_backward(r, gate, up);
  expect_gradients_match(loss, {{"gate", &gate, g.dgate}, {"up", &up, g.dup}});
}
