#include "common/gradcheck.h"
#include "ops/block_attention.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {

// loss = <out, r>; backward with dout = r gives its gradients.
void gradcheck(int64_t blocks, int64_t len, int64_t heads, int64_t dim, double scale, uint64_t seed) {
  Tensor q = randn64({blocks, len, heads, dim}, seed), k = randn64({blocks, len, heads, dim}, seed + 1),
         v = randn64({blocks, len, heads, dim}, seed + 2), r = randn64({blocks, len, heads, dim}, seed + 3);
  auto loss = [&] { return dot(ops::block_attention_forward(q, k, v, scale).out, r); };
  ops::BlockAttentionOut fwd = ops::block_attention_forward(q, k, v, scale);
  ops::BlockAttentionGrads g = ops::block_attention_backward(r, q, k, v, fwd, scale);
  expect_gradients_match(loss, {{"q", &q, g.dq}, {"k", &k, g.dk}, {"v", &v, g.dv}});
}

}  // namespace

TEST(BlockAttentionGradcheck, OneHeadOddLength) { gradcheck(2, 5, 1, 4, 0.5, 1); }

TEST(BlockAttentionGradcheck, SeveralHeadsOddLength) { gradcheck(3, 7, 3, 4, 0.5, 2); }

// A chunk of 8 tokens plus [CLS], as the encoder of a micro model uses it.
TEST(BlockAttentionGradcheck, ChunkPlusCls) { gradcheck(2, 9, 2, 6, 0.4, 3); }

TEST(BlockAttentionGradcheck, SingleRowBlocks) { gradcheck(3, 1, 2, 4, 0.5, 4); }
