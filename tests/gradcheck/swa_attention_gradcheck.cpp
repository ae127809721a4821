#include "common/gradcheck.h"
#include "ops/swa_attention.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;
using namespace hsa::testing;

namespace {
void check(int64_t HQ, int64_t H, int64_t Lq, int64_t Lk, ops::SwaParams p, uint64_t seed) {
  int64_t D = 4;
  Tensor q = randn64({2, Lq, HQ, D}, seed), k = randn64({2, Lk, H, D}, seed + 1), v = randn64({2, Lk, H, D}, seed + 2);
  Tensor r = randn64({2, Lq, HQ, D}, seed + 3);
  auto loss = [&] { return dot(ops::swa_forward(q, k, v, p).out, r); };
  auto fwd = ops::swa_forward(q, k, v, p);
  auto g = ops::swa_backward(r, q, k, v, fwd, p);
  expect_gradients_match(loss, {{"q", &q, g.dq}, {"k", &k, g.dk}, {"v", &v, g.dv}});
}
}  // namespace

TEST(SwaAttentionGradcheck, Gqa1WindowSmallerThanL) { check(2, 2, 13, 13, {4, 0.5}, 1); }
TEST(SwaAttentionGradcheck, Gqa4WindowLargerThanL) { check(4, 1, 9, 9, {100, 0.5}, 2); }
TEST(SwaAttentionGradcheck, DecodeOffsets) { check(4, 2, 3, 7, {5, 0.5, 20, 16}, 3); }
