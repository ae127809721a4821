#include "common/gradcheck.h"
#include "ops/chunk_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

TEST(ChunkMean, ForwardMatchesNaiveWithIncompleteTail) {
  for (int64_t L : {12, 14}) {  // a multiple of S = 3... and one with a 2-token tail
    Tensor x = randn({2, L, 5}, 1);
    Tensor pooled = ops::chunk_mean_forward(x, 3);
    ASSERT_EQ(pooled.shape(), (Shape{2, 4, 5}));
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 4; ++c)
        for (int64_t i = 0; i < 5; ++i) {
          double s = 0;
          for (int64_t j = 0; j < 3; ++j) s += x.item({b, c * 3 + j, i});
          EXPECT_NEAR(pooled.item({b, c, i}), s / 3, 1e-6);
        }
  }
  EXPECT_EQ(ops::chunk_mean_forward(randn({1, 5, 3}, 2), 8).shape(), (Shape{1, 0, 3}));  // shorter than a chunk
}

TEST(ChunkMean, BackwardSpreadsEvenlyAndZeroesTheTail) {
  Tensor g = randn({2, 3, 4}, 3);
  Tensor dx = ops::chunk_mean_backward(g, 11, 3);  // 9 covered tokens, 2 in the tail
  ASSERT_EQ(dx.shape(), (Shape{2, 11, 4}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 11; ++t)
      for (int64_t i = 0; i < 4; ++i)
        EXPECT_NEAR(dx.item({b, t, i}), t < 9 ? g.item({b, t / 3, i}) / 3 : 0.0, 1e-7) << "t " << t;
}

TEST(ChunkMean, Bf16) {
  Tensor x = randn({1, 8, 16}, 4);
  Tensor got = ops::chunk_mean_forward(x.to(DType::bf16), 4);
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_LT(relative_error(got, ops::chunk_mean_forward(x, 4)), 1e-2);
}

TEST(ChunkMean, BadInputsGiveClearErrors) {
  Tensor x = randn({1, 8, 4}, 1);
  try {
    ops::chunk_mean_forward(x, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chunk_mean_forward: chunk_size must be positive, got 0"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ops::chunk_mean_forward(x, -2), Error);
  EXPECT_THROW(ops::chunk_mean_forward(randn({8, 4}, 1), 2), Error);
  EXPECT_THROW(ops::chunk_mean_forward(Tensor::zeros({1, 8, 4}, DType::i32), 2), Error);
  EXPECT_THROW(ops::chunk_mean_backward(randn({1, 2, 4}, 1), 8, 0), Error);
  try {
    ops::chunk_mean_backward(randn({1, 3, 4}, 1), 8, 4);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'dpooled' has shape [1, 3, 4], expected 2 chunks"), std::string::npos)
        << e.what();
  }
}

// Large enough for the multithreaded path (serial below 2^16 elements).
TEST(ChunkMean, ParallelPathMatchesNaive) {
  int64_t B = 2, L = 130, D = 300, S = 8, C = L / S;
  Tensor x = randn({B, L, D}, 5), g = randn({B, C, D}, 6);
  std::vector<double> xv = x.to_vector(), gv = g.to_vector();
  std::vector<double> pooled = ops::chunk_mean_forward(x, S).to_vector(),
                      dx = ops::chunk_mean_backward(g, L, S).to_vector();
  double worst_fwd = 0, worst_bwd = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < D; ++i) {
      for (int64_t c = 0; c < C; ++c) {
        double s = 0;
        for (int64_t j = 0; j < S; ++j) s += xv[(b * L + c * S + j) * D + i];
        worst_fwd = std::max(worst_fwd, std::abs(pooled[(b * C + c) * D + i] - s / S));
      }
      for (int64_t t = 0; t < L; ++t) {
        double want = t < C * S ? gv[(b * C + t / S) * D + i] / S : 0.0;
        worst_bwd = std::max(worst_bwd, std::abs(dx[(b * L + t) * D + i] - want));
      }
    }
  EXPECT_LT(worst_fwd, 1e-6);
  EXPECT_LT(worst_bwd, 1e-7);
}
