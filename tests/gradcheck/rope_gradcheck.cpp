#include "common/gradcheck.h"
#include "ops/rope.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(RopeGradcheck, MatchesFiniteDifferences) {
  for (int64_t offset : {int64_t{0}, int64_t{5'000'003}}) {
    Tensor x = randn64({2, 3, 2, 6}, 1);
    Tensor r = randn64({2, 3, 2, 6}, 2);
    auto loss = [&] { return dot(ops::rope_forward(x, offset, 10000.0), r); };
    Tensor dx = ops::rope_backward(r, offset, 10000.0);
    expect_gradients_match(loss, {{"x", &x, dx}});
  }
}
