#include "common/gradcheck.h"
#include "ops/cross_entropy.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

// The output is a scalar, so the "random projection" is a scalar dloss: loss() = dloss * ce.loss.
TEST(CrossEntropyGradcheck, MatchesFiniteDifferences) {
  Tensor logits = randn64({5, 9}, 1, 2.0);
  Tensor targets = Tensor::from_i32({3, -100, 0, 8, 3}, {5});  // one ignored row
  const double dloss = 1.7;
  auto loss = [&] { return dloss * ops::cross_entropy_forward(logits, targets).loss; };
  auto out = ops::cross_entropy_forward(logits, targets);
  Tensor d = ops::cross_entropy_backward(dloss, logits, targets, out.lse);
  expect_gradients_match(loss, {{"logits", &logits, d}});
}
