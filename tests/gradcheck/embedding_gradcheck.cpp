#include "common/gradcheck.h"
#include "ops/embedding.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(EmbeddingGradcheck, RepeatedIdsAccumulate) {
  Tensor table = randn64({6, 4}, 1);
  Tensor ids = Tensor::from_i32({0, 3, 3, 5, 0, 3}, {2, 3});
  Tensor r = randn64({2, 3, 4}, 2);
  auto loss = [&] { return dot(ops::embedding_forward(table, ids), r); };
  expect_gradients_match(loss, {{"table", &table, ops::embedding_backward(r, ids, 6)}});
}
