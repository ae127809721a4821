#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/block_attention.h"
#include "ops/shape_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

// The definition, one (block, row, head) at a time, in double: out and lse flattened like the op's outputs.
struct Reference {
  std::vector<double> out, lse;
};
Reference naive(const Tensor& qt, const Tensor& kt, const Tensor& vt, double scale) {
  const std::vector<double> q = qt.to_vector(), k = kt.to_vector(), v = vt.to_vector();
  const int64_t N = qt.dim(0), T = qt.dim(1), H = qt.dim(2), D = qt.dim(3);
  auto at = [&](int64_t n, int64_t i, int64_t h, int64_t e) { return size_t(((n * T + i) * H + h) * D + e); };
  Reference r{std::vector<double>(q.size(), 0.0), std::vector<double>(size_t(N * T * H), 0.0)};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t h = 0; h < H; ++h) {
        std::vector<double> s(static_cast<size_t>(T));
        double z = 0;
        for (int64_t j = 0; j < T; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < D; ++e) dot += q[at(n, i, h, e)] * k[at(n, j, h, e)];
          s[size_t(j)] = std::exp(dot * scale);
          z += s[size_t(j)];
        }
        for (int64_t j = 0; j < T; ++j)
          for (int64_t e = 0; e < D; ++e) r.out[at(n, i, h, e)] += s[size_t(j)] / z * v[at(n, j, h, e)];
        r.lse[size_t((n * T + i) * H + h)] = std::log(z);
      }
  return r;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "element " << i;
}

}  // namespace

TEST(BlockAttention, MatchesDefinitionF64) {
  Tensor q = randn64({3, 5, 2, 4}, 1), k = randn64({3, 5, 2, 4}, 2), v = randn64({3, 5, 2, 4}, 3);
  ops::BlockAttentionOut o = ops::block_attention_forward(q, k, v, 0.5);
  Reference r = naive(q, k, v, 0.5);
  expect_near(o.out.to_vector(), r.out, 1e-12);
  expect_near(o.lse.to_vector(), r.lse, 1e-12);
}

// The encoder's shape: a chunk of 64 tokens plus [CLS], several heads, f32 (big enough to go parallel).
TEST(BlockAttention, MatchesDefinitionF32EncoderShape) {
  Tensor q = randn({4, 65, 3, 16}, 4), k = randn({4, 65, 3, 16}, 5), v = randn({4, 65, 3, 16}, 6);
  ops::BlockAttentionOut o = ops::block_attention_forward(q, k, v, 0.25);
  Reference r = naive(q, k, v, 0.25);
  expect_near(o.out.to_vector(), r.out, 2e-5);
  expect_near(o.lse.to_vector(), r.lse, 2e-5);
}

// Blocks are independent: changing block 1 leaves blocks 0 and 2 bit-identical.
TEST(BlockAttention, NothingCrossesBlocks) {
  Tensor q = randn64({3, 7, 2, 4}, 7), k = randn64({3, 7, 2, 4}, 8), v = randn64({3, 7, 2, 4}, 9);
  Tensor k2 = k.clone(), v2 = v.clone();
  Tensor k2b = k2.slice(0, 1, 2), v2b = v2.slice(0, 1, 2);
  k2b.copy_from(randn64({1, 7, 2, 4}, 10));
  v2b.copy_from(randn64({1, 7, 2, 4}, 11));
  Tensor a = ops::block_attention_forward(q, k, v, 0.5).out, b = ops::block_attention_forward(q, k2, v2, 0.5).out;
  for (int64_t n : {0, 2})
    EXPECT_EQ(ops::slice_copy(a, 0, n, n + 1).to_vector(), ops::slice_copy(b, 0, n, n + 1).to_vector()) << n;
  EXPECT_GT(max_abs_diff(ops::slice_copy(a, 0, 1, 2), ops::slice_copy(b, 0, 1, 2)), 1e-3);
}

// bf16 inputs compute in f32 and come back in bf16.
TEST(BlockAttention, Bf16ComputesInF32) {
  Tensor q = randn({2, 9, 2, 8}, 12).to(DType::bf16), k = randn({2, 9, 2, 8}, 13).to(DType::bf16),
         v = randn({2, 9, 2, 8}, 14).to(DType::bf16);
  ops::BlockAttentionOut o = ops::block_attention_forward(q, k, v, 0.35);
  EXPECT_EQ(o.out.dtype(), DType::bf16);
  EXPECT_EQ(o.lse.dtype(), DType::f32);
  Reference r = naive(q, k, v, 0.35);
  expect_near(o.out.to_vector(), r.out, 2e-2);
}

TEST(BlockAttention, RejectsMismatchedShapes) {
  Tensor q = randn64({2, 5, 2, 4}, 1), k = randn64({2, 6, 2, 4}, 2);
  std::string msg = error_of([&] { ops::block_attention_forward(q, k, q, 0.5); });
  EXPECT_TRUE(has(msg, "block_attention_forward")) << msg;
  EXPECT_TRUE(has(msg, "'k'")) << msg;
}
