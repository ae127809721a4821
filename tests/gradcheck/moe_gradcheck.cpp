#include "common/gradcheck.h"
#include "ops/moe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

using namespace hsa;
using namespace hsa::testing;

namespace {

// Smallest gap, over tokens, between the k-th and (k+1)-th largest router logit. Top-k selection is piecewise
// constant and not differentiated: a finite difference that flips a token's choice measures a jump, not a
// gradient. A central difference with eps = 1e-6 moves a logit by about eps * |x| or eps * |router| (< 1e-5
// here), so a gap of 1e-3 cannot be crossed; the inputs below are random with logits of spread ~2.5 and the test
// asserts the gap instead of hoping for it.
double min_topk_gap(const Tensor& x, const Tensor& router, int64_t k) {
  int64_t n = x.dim(0), dm = x.dim(1), ne = router.dim(0);
  if (k == ne) return 1e9;  // every expert chosen: nothing can flip
  double gap = 1e9;
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> logit(ne, 0);
    for (int64_t e = 0; e < ne; ++e)
      for (int64_t c = 0; c < dm; ++c) logit[e] += x.item({t, c}) * router.item({e, c});
    std::sort(logit.begin(), logit.end(), std::greater<>());
    gap = std::min(gap, logit[k - 1] - logit[k]);
  }
  return gap;
}

struct Case {
  int64_t n, dm, experts, ffn, topk, shared, ffn_shared;
  double coef;     // aux_loss_coef
  double y_scale;  // 0: loss = 0.7 * aux_loss alone, to see the load-balancing gradient without the rest
};

void check_moe_gradients(const Case& c, uint64_t seed) {
  Tensor x = randn64({c.n, c.dm}, seed);
  ops::MoeWeights w;
  w.router = randn64({c.experts, c.dm}, seed + 1);
  w.w_gate = randn64({c.experts, c.ffn, c.dm}, seed + 2, 0.5);
  w.w_up = randn64({c.experts, c.ffn, c.dm}, seed + 3, 0.5);
  w.w_down = randn64({c.experts, c.dm, c.ffn}, seed + 4, 0.5);
  if (c.shared > 0) {
    w.shared_gate = randn64({c.shared, c.ffn_shared, c.dm}, seed + 5, 0.5);
    w.shared_up = randn64({c.shared, c.ffn_shared, c.dm}, seed + 6, 0.5);
    w.shared_down = randn64({c.shared, c.dm, c.ffn_shared}, seed + 7, 0.5);
  }
  ASSERT_GT(min_topk_gap(x, w.router, c.topk), 1e-3) << "pick another seed: a top-k choice is nearly tied";
  Tensor r = randn64({c.n, c.dm}, seed + 8, c.y_scale);
  ops::MoeParams p{c.topk, c.coef};
  const double daux = 0.7;
  auto loss = [&] {
    ops::MoeOut out = ops::moe_forward(x, w, p);
    return dot(out.y, r) + daux * out.aux_loss.item();
  };
  ops::MoeOut fwd = ops::moe_forward(x, w, p);
  ops::MoeGrads g = ops::moe_backward(r, daux, x, w, p, fwd);
  std::vector<GradInput> inputs = {{"x", &x, g.dx},
                                   {"router", &w.router, g.dw.router},
                                   {"w_gate", &w.w_gate, g.dw.w_gate},
                                   {"w_up", &w.w_up, g.dw.w_up},
                                   {"w_down", &w.w_down, g.dw.w_down}};
  if (c.shared > 0) {
    inputs.push_back({"shared_gate", &w.shared_gate, g.dw.shared_gate});
    inputs.push_back({"shared_up", &w.shared_up, g.dw.shared_up});
    inputs.push_back({"shared_down", &w.shared_down, g.dw.shared_down});
  }
  expect_gradients_match(loss, inputs);
}

}  // namespace

// The aux coefficient is large (0.3) so its gradient is well above the tolerance next to the expert terms.
TEST(MoeGradcheck, NoSharedExperts) { check_moe_gradients({12, 6, 4, 5, 2, 0, 0, 0.3, 1.0}, 11); }

TEST(MoeGradcheck, TwoSharedExperts) { check_moe_gradients({12, 6, 4, 5, 2, 2, 3, 0.3, 1.0}, 21); }

TEST(MoeGradcheck, TopOneOfFiveWithUnusedExperts) { check_moe_gradients({7, 5, 5, 4, 1, 1, 4, 0.3, 1.0}, 31); }

TEST(MoeGradcheck, TopkEqualsE) { check_moe_gradients({8, 5, 3, 4, 3, 0, 0, 0.3, 1.0}, 41); }

// Loss = 0.7 * aux_loss only: the expert weights get zero gradient, x and the router get the load-balancing one.
TEST(MoeGradcheck, AuxLossAlone) { check_moe_gradients({10, 6, 4, 5, 2, 1, 3, 1.0, 0.0}, 51); }
