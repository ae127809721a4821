#include "common/gradcheck.h"
#include "ops/retrieval.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {
// Landmarks are scaled up so score gaps (~1) dwarf the 1e-6 perturbations: the top-K set never changes while
// differencing, which the gradient (of the weights of a fixed selection) assumes.
void check(ops::ChunkWeighting weighting, int64_t topk, int64_t window, uint64_t seed) {
  int64_t B = 2, L = 23, H = 2, dr = 3, S = 4, C = L / S;
  Tensor qr = randn64({B, L, H, dr}, seed), lmk = randn64({B, C, H, dr}, seed + 1, 3.0);
  Tensor r = randn64({B, L, H, topk}, seed + 2);
  ops::RetrievalParams p{S, topk, window, 0, 0, weighting};
  auto loss = [&] { return dot(ops::retrieval_forward(qr, lmk, p).weights, r); };
  auto fwd = ops::retrieval_forward(qr, lmk, p);
  auto g = ops::retrieval_backward(r, qr, lmk, fwd, p);
  expect_gradients_match(loss, {{"qr", &qr, g.dqr}, {"landmarks", &lmk, g.dlandmarks}});
}
}  // namespace

TEST(RetrievalGradcheck, SoftmaxFewerChunksThanK) { check(ops::ChunkWeighting::softmax, 3, 0, 1); }
TEST(RetrievalGradcheck, SoftmaxWindowMask) { check(ops::ChunkWeighting::softmax, 2, 6, 2); }
TEST(RetrievalGradcheck, StickBreaking) { check(ops::ChunkWeighting::stick_breaking, 3, 0, 3); }
