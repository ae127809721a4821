#include "common/gradcheck.h"
#include "ops/retrieval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

// The smallest gap, over all query rows, between scores whose order decides the output: consecutive ones among
// the K + 1 best visible chunks. Finite differences perturb one input by eps = 1e-6, which moves a score by about
// eps * |other vector| * scale < 1e-5; with gaps far above that, neither the top-K set nor the slot order changes
// between loss evaluations, so the loss is smooth where it is probed. (The op does not differentiate the choice.)
double min_decisive_gap(const Tensor& qr, const Tensor& lmk, const ops::RetrievalParams& p) {
  int64_t B = qr.dim(0), L = qr.dim(1), H = qr.dim(2), D = qr.dim(3), C = lmk.dim(1);
  double gap = INFINITY;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t h = 0; h < H; ++h) {
        int64_t pos = p.q_start + t;
        std::vector<double> s;
        for (int64_t c = 0; c < C; ++c) {
          if ((c + 1) * p.chunk_size > pos || (p.window > 0 && c * p.chunk_size > pos - p.window)) continue;
          double v = 0;
          for (int64_t j = 0; j < D; ++j) v += qr.item({b, t, h, j}) * lmk.item({b, c, h, j});
          s.push_back(v / std::sqrt(double(D)));
        }
        std::sort(s.rbegin(), s.rend());
        for (size_t i = 1; i < s.size() && int64_t(i) <= p.topk; ++i) gap = std::min(gap, s[i - 1] - s[i]);
      }
  return gap;
}

// B = 2, L = 13 (not a multiple of S = 3), H = 2, dr = 5, C = 4 landmarks; rows t < 3 see nothing.
// Landmarks have stddev 2 to spread the scores apart (see min_decisive_gap).
void check_case(ops::ChunkWeighting weighting, int64_t K, int64_t window, int64_t q_start, uint64_t seed) {
  Tensor qr = randn64({2, 13, 2, 5}, seed), lmk = randn64({2, 4, 2, 5}, seed + 1, 2.0);
  Tensor r = randn64({2, 13, 2, K}, seed + 2);
  ops::RetrievalParams p{3, K};
  p.window = window;
  p.q_start = q_start;
  p.weighting = weighting;
  ASSERT_GT(min_decisive_gap(qr, lmk, p), 1e-3) << "pick another seed: scores too close for finite differences";
  auto loss = [&] { return dot(ops::retrieval_forward(qr, lmk, p).weights, r); };
  auto fwd = ops::retrieval_forward(qr, lmk, p);
  int64_t filled = 0, full_rows = 0;
  for (int64_t r0 = 0; r0 < 2 * 13 * 2; ++r0) {
    int64_t n = 0;
    for (int64_t i = 0; i < K; ++i) n += fwd.indices.get_flat(r0 * K + i) >= 0;
    filled += n;
    full_rows += n == K;
  }
  EXPECT_GT(filled, 0) << "the case must select something";
  // K > C = 4: no row can fill its K slots; otherwise the late rows do.
  EXPECT_EQ(full_rows == 0, K > 4) << full_rows << " rows with all " << K << " slots filled";
  auto g = ops::retrieval_backward(r, qr, lmk, fwd, p);
  expect_gradients_match(loss, {{"qr", &qr, g.dqr}, {"landmarks", &lmk, g.dlandmarks}}, {.max_elements = 400});
}

}  // namespace

TEST(RetrievalGradcheck, SoftmaxTopK) { check_case(ops::ChunkWeighting::softmax, 2, 0, 0, 10); }

TEST(RetrievalGradcheck, StickBreakingTopK) { check_case(ops::ChunkWeighting::stick_breaking, 2, 0, 0, 20); }

// K = 6 > C = 4: every row selects fewer chunks than K, empty slots must not leak gradient.
TEST(RetrievalGradcheck, SoftmaxFewerVisibleThanK) { check_case(ops::ChunkWeighting::softmax, 6, 0, 0, 30); }

TEST(RetrievalGradcheck, StickBreakingFewerVisibleThanK) {
  check_case(ops::ChunkWeighting::stick_breaking, 6, 0, 0, 40);
}

// Window mask and a query offset together (rows at positions 5..17, window 4).
TEST(RetrievalGradcheck, WindowAndOffsetBothWeightings) {
  check_case(ops::ChunkWeighting::softmax, 2, 4, 5, 50);
  check_case(ops::ChunkWeighting::stick_breaking, 3, 4, 5, 60);
}
