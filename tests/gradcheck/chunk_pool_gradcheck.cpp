#include "common/gradcheck.h"
#include "ops/chunk_pool.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(ChunkPoolGradcheck, TailTokensGetNoGradient) {
  Tensor x = randn64({2, 11, 3}, 1), r = randn64({2, 2, 3}, 2);  // L = 11, S = 4: 2 chunks and a tail of 3
  auto loss = [&] { return dot(ops::chunk_mean_forward(x, 4), r); };
  Tensor dx = ops::chunk_mean_backward(r, 11, 4);
  expect_gradients_match(loss, {{"x", &x, dx}});
  for (int64_t t = 8; t < 11; ++t) EXPECT_EQ(dx.item({1, t, 2}), 0.0);
}
