#include "common/gradcheck.h"
#include "ops/cross_entropy.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(CrossEntropyGradcheck, WithIgnoredRows) {
  Tensor logits = randn64({6, 7}, 1, 2.0);
  Tensor targets = Tensor::from_i32({1, -100, 6, 0, -100, 3}, {6});
  auto loss = [&] { return 1.7 * ops::cross_entropy_forward(logits, targets).loss; };
  auto fwd = ops::cross_entropy_forward(logits, targets);
  expect_gradients_match(loss, {{"logits", &logits, ops::cross_entropy_backward(1.7, logits, targets, fwd.lse)}});
}
