#include "common/gradcheck.h"
#include "ops/swa_attention.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {

// loss = <out, r>; backward with dout = r gives its gradients.
void gradcheck(int64_t batch, int64_t q_len, int64_t k_len, int64_t q_heads, int64_t kv_heads, int64_t dim,
               ops::SwaParams p, uint64_t seed) {
  Tensor q = randn64({batch, q_len, q_heads, dim}, seed), k = randn64({batch, k_len, kv_heads, dim}, seed + 1),
         v = randn64({batch, k_len, kv_heads, dim}, seed + 2), r = randn64({batch, q_len, q_heads, dim}, seed + 3);
  auto loss = [&] { return dot(ops::swa_forward(q, k, v, p).out, r); };
  ops::SwaOut fwd = ops::swa_forward(q, k, v, p);
  ops::SwaGrads g = ops::swa_backward(r, q, k, v, fwd, p);
  expect_gradients_match(loss, {{"q", &q, g.dq}, {"k", &k, g.dk}, {"v", &v, g.dv}});
}

}  // namespace

TEST(SwaAttentionGradcheck, Gqa1WindowBelowLength) { gradcheck(2, 9, 9, 2, 2, 4, {3, 0.5}, 1); }

TEST(SwaAttentionGradcheck, Gqa4WindowBelowLength) { gradcheck(1, 10, 10, 4, 1, 4, {4, 0.5}, 2); }

TEST(SwaAttentionGradcheck, Gqa4WindowAboveLength) { gradcheck(1, 7, 7, 8, 2, 3, {20, 0.6}, 3); }

// Queries at 4..6 against keys at 5..12: row 0 sees no key, later keys are in the future.
TEST(SwaAttentionGradcheck, OffsetsAndQueryWithoutKeys) { gradcheck(1, 3, 8, 4, 2, 4, {4, 0.5, 4, 5}, 4); }
