#include "common/gradcheck.h"
#include "ops/embedding.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(EmbeddingGradcheck, MatchesFiniteDifferences) {
  // Repeated ids (2 and 5) and unused rows (0, 3, 6) exercise accumulation and the zero rows.
  Tensor table = randn64({7, 5}, 1);
  Tensor ids = Tensor::from_i32({2, 5, 2, 1, 4, 5, 2, 1}, {2, 4});
  Tensor r = randn64({2, 4, 5}, 2);
  auto loss = [&] { return dot(ops::embedding_forward(table, ids), r); };
  Tensor dtable = ops::embedding_backward(r, ids, 7);
  expect_gradients_match(loss, {{"table", &table, dtable}});
}
