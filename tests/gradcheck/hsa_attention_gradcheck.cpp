#include "common/gradcheck.h"
#include "common/hsa_indices.h"
#include "ops/hsa_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace hsa;
using namespace hsa::testing;

namespace {

void check(int64_t b, int64_t l, int64_t hq, int64_t h, int64_t d, int64_t s, int64_t k, const Tensor& indices,
           uint64_t seed) {
  int64_t c = std::max<int64_t>(l / s, 1);
  Tensor q = randn64({b, l, hq, d}, seed), mk = randn64({b, c, s, h, d}, seed + 1),
         mv = randn64({b, c, s, h, d}, seed + 2), w = randn64({b, l, h, k}, seed + 3, 0.5);
  Tensor proj = randn64({b, l, hq, d}, seed + 4);
  double scale = 1.0 / std::sqrt(double(d));
  auto loss = [&] { return dot(ops::hsa_attention_forward(q, mk, mv, indices, w, scale).out, proj); };
  ops::HsaOut out = ops::hsa_attention_forward(q, mk, mv, indices, w, scale);
  ops::HsaGrads g = ops::hsa_attention_backward(proj, q, mk, mv, indices, w, out, scale);
  expect_gradients_match(loss, {{"q", &q, g.dq}, {"mem_k", &mk, g.dmem_k}, {"mem_v", &mv, g.dmem_v},
                                {"weights", &w, g.dweights}});
  // Empty slots have no say in the output: their weight gradient is exactly zero (also covered above, but an
  // exact zero is the contract).
  std::vector<double> idx = indices.to_vector(), dw = g.dweights.to_vector();
  for (size_t i = 0; i < idx.size(); ++i)
    if (idx[i] < 0) EXPECT_EQ(dw[i], 0.0) << "dweights[" << i << "] of an empty slot";
}

}  // namespace

// L = 13 with S = 3: 4 complete chunks, tokens 0..2 select nothing, 3..8 fewer than K = 3.
TEST(HsaAttentionGradcheck, Gqa1WithEmptySlots) {
  check(2, 13, 2, 2, 4, 3, 3, causal_indices(2, 13, 2, 3, 4, 3, 5), 10);
}

TEST(HsaAttentionGradcheck, Gqa4WithEmptySlots) {
  check(1, 14, 8, 2, 3, 3, 2, causal_indices(1, 14, 2, 3, 4, 2, 6), 20);
}

// 300 tokens all on chunk 0 (slot 0, plus a second chunk in slot 1): several tiles accumulate into one chunk's
// dmem_k / dmem_v, and one token repeats a chunk in both slots.
TEST(HsaAttentionGradcheck, ManyTokensOnOneChunk) {
  std::vector<int32_t> idx;
  for (int64_t t = 0; t < 300; ++t) {
    idx.push_back(0);
    idx.push_back(t == 7 ? 0 : int32_t(t % 5) - 1);
  }
  check(1, 300, 1, 1, 3, 2, 2, Tensor::from_i32(idx, {1, 300, 1, 2}), 30);
}
