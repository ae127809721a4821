#include "common/gradcheck.h"
#include "ops/hsa_attention.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {
void check(int64_t HQ, int64_t H, uint64_t seed) {
  int64_t B = 2, L = 7, D = 4, C = 5, S = 3, K = 3;
  Tensor q = randn64({B, L, HQ, D}, seed), mk = randn64({B, C, S, H, D}, seed + 1),
         mv = randn64({B, C, S, H, D}, seed + 2), w = randn64({B, L, H, K}, seed + 3);
  // Distinct chunks per query, some empty slots, and a query with none.
  Rng rng(seed);
  std::vector<int32_t> idx(B * L * H * K);
  for (int64_t row = 0; row < B * L * H; ++row) {
    int64_t used = row % 4 == 0 ? 0 : 1 + int64_t(rng.below(K));
    int32_t first = int32_t(rng.below(C));
    for (int64_t i = 0; i < K; ++i) idx[row * K + i] = i < used ? int32_t((first + 2 * i) % C) : -1;
  }
  Tensor indices = Tensor::from_i32(idx, {B, L, H, K});
  Tensor r = randn64({B, L, HQ, D}, seed + 4);
  auto loss = [&] { return dot(ops::hsa_attention_forward(q, mk, mv, indices, w, 0.7).out, r); };
  auto fwd = ops::hsa_attention_forward(q, mk, mv, indices, w, 0.7);
  auto g = ops::hsa_attention_backward(r, q, mk, mv, indices, w, fwd, 0.7);
  expect_gradients_match(loss,
                         {{"q", &q, g.dq}, {"mem_k", &mk, g.dmem_k}, {"mem_v", &mv, g.dmem_v}, {"weights", &w, g.dweights}});
}
}  // namespace

TEST(HsaAttentionGradcheck, Gqa1) { check(2, 2, 1); }
TEST(HsaAttentionGradcheck, Gqa4) { check(4, 1, 2); }
