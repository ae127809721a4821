#include "common/gradcheck.h"
#include "ops/chunk_pool.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

// L = 11 with S = 3: two tail tokens whose gradient must be exactly the (zero) finite difference.
TEST(ChunkMeanGradcheck, MatchesFiniteDifferences) {
  Tensor x = randn64({2, 11, 4}, 1), r = randn64({2, 3, 4}, 2);
  auto loss = [&] { return dot(ops::chunk_mean_forward(x, 3), r); };
  Tensor dx = ops::chunk_mean_backward(r, 11, 3);
  expect_gradients_match(loss, {{"x", &x, dx}}, {.max_elements = 200});
}
