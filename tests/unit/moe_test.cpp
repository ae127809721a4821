#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/moe.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

using namespace hsa;
using namespace hsa::testing;

namespace {

ops::MoeWeights make_weights(int64_t experts, int64_t ffn, int64_t dm, int64_t shared, int64_t ffn_shared,
                             uint64_t seed, DType dtype = DType::f32) {
  ops::MoeWeights w;
  w.router = randn({experts, dm}, seed, 1.0, dtype);
  w.w_gate = randn({experts, ffn, dm}, seed + 1, 0.3, dtype);
  w.w_up = randn({experts, ffn, dm}, seed + 2, 0.3, dtype);
  w.w_down = randn({experts, dm, ffn}, seed + 3, 0.3, dtype);
  if (shared > 0) {
    w.shared_gate = randn({shared, ffn_shared, dm}, seed + 4, 0.3, dtype);
    w.shared_up = randn({shared, ffn_shared, dm}, seed + 5, 0.3, dtype);
    w.shared_down = randn({shared, dm, ffn_shared}, seed + 6, 0.3, dtype);
  }
  return w;
}

// The op written as the plain per-token loop of the definition, in double.
struct NaiveMoe {
  std::vector<double> y, probs, gates;
  std::vector<int> experts;
  double aux_loss = 0;
};

// Adds scale * expert(x_t) to out; weights g, u [*, F, dm], d [*, dm, F] as flat vectors.
void naive_expert(const std::vector<double>& x, int64_t t, int64_t dm, const std::vector<double>& g,
                  const std::vector<double>& u, const std::vector<double>& d, int64_t e, int64_t ffn, double scale,
                  double* out) {
  for (int64_t f = 0; f < ffn; ++f) {
    double a = 0, b = 0;
    for (int64_t c = 0; c < dm; ++c) {
      a += x[t * dm + c] * g[(e * ffn + f) * dm + c];
      b += x[t * dm + c] * u[(e * ffn + f) * dm + c];
    }
    double h = a / (1 + std::exp(-a)) * b;
    for (int64_t c = 0; c < dm; ++c) out[c] += scale * h * d[(e * dm + c) * ffn + f];
  }
}

NaiveMoe naive_moe(const Tensor& xt, const ops::MoeWeights& w, int64_t k, double coef) {
  int64_t n = xt.dim(0), dm = xt.dim(1), ne = w.router.dim(0), ffn = w.w_gate.dim(1);
  int64_t ns = w.shared_gate.defined() ? w.shared_gate.dim(0) : 0, fs = ns ? w.shared_gate.dim(1) : 0;
  std::vector<double> x = xt.to_vector(), router = w.router.to_vector(), g = w.w_gate.to_vector(),
                      u = w.w_up.to_vector(), d = w.w_down.to_vector();
  std::vector<double> sg, su, sd;
  if (ns) sg = w.shared_gate.to_vector(), su = w.shared_up.to_vector(), sd = w.shared_down.to_vector();
  NaiveMoe r;
  r.y.assign(n * dm, 0);
  r.probs.assign(n * ne, 0);
  std::vector<double> count(ne, 0);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> logit(ne);
    for (int64_t e = 0; e < ne; ++e)
      for (int64_t c = 0; c < dm; ++c) logit[e] += x[t * dm + c] * router[e * dm + c];
    std::vector<int> order(ne);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logit[a] > logit[b]; });
    double mx = logit[order[0]], z = 0;
    for (int64_t e = 0; e < ne; ++e) z += std::exp(logit[e] - mx);
    for (int64_t e = 0; e < ne; ++e) r.probs[t * ne + e] = std::exp(logit[e] - mx) / z;
    double chosen = 0;
    for (int64_t j = 0; j < k; ++j) chosen += r.probs[t * ne + order[j]];
    for (int64_t j = 0; j < k; ++j) {
      int e = order[j];
      double gate = r.probs[t * ne + e] / chosen;
      r.experts.push_back(e);
      r.gates.push_back(gate);
      count[e] += 1;
      naive_expert(x, t, dm, g, u, d, e, ffn, gate, &r.y[t * dm]);
    }
    for (int64_t s = 0; s < ns; ++s) naive_expert(x, t, dm, sg, su, sd, s, fs, 1.0, &r.y[t * dm]);
  }
  for (int64_t e = 0; e < ne; ++e) {
    double mean_p = 0;
    for (int64_t t = 0; t < n; ++t) mean_p += r.probs[t * ne + e] / n;
    r.aux_loss += coef * ne * (count[e] / (n * k)) * mean_p;
  }
  return r;
}

void expect_near_vec(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * std::max(scale, 1.0)) << what << "[" << i << "]";
  }
}

void expect_matches_naive(int64_t n, int64_t dm, int64_t ne, int64_t ffn, int64_t k, int64_t ns, int64_t fs,
                          DType dtype, double tol) {
  Tensor x = randn({n, dm}, 100 + ns, 1.0, dtype);
  ops::MoeWeights w = make_weights(ne, ffn, dm, ns, fs, 200 + ns, dtype);
  ops::MoeParams p{k, 0.02};
  ops::MoeOut out = ops::moe_forward(x, w, p);
  NaiveMoe ref = naive_moe(x, w, k, p.aux_loss_coef);
  expect_near_vec(out.y.to_vector(), ref.y, tol, "y");
  expect_near_vec(out.probs.to_vector(), ref.probs, tol, "probs");
  expect_near_vec(out.gates.to_vector(), ref.gates, tol, "gates");
  std::vector<double> experts = out.experts.to_vector();
  for (size_t i = 0; i < ref.experts.size(); ++i) ASSERT_EQ(int(experts[i]), ref.experts[i]) << "experts[" << i << "]";
  EXPECT_NEAR(out.aux_loss.item(), ref.aux_loss, tol * ref.aux_loss);
}

}  // namespace

// N = 300 tokens over 4 experts puts ~150 rows on each: more than one 128-row tile per expert.
TEST(Moe, ForwardMatchesNaiveLoopNoShared) { expect_matches_naive(300, 16, 4, 24, 2, 0, 0, DType::f64, 1e-12); }

TEST(Moe, ForwardMatchesNaiveLoopTwoShared) { expect_matches_naive(300, 16, 4, 24, 2, 2, 12, DType::f64, 1e-12); }

TEST(Moe, ForwardF32MatchesNaiveLoop) { expect_matches_naive(70, 32, 6, 20, 3, 1, 16, DType::f32, 2e-5); }

TEST(Moe, AuxLossMatchesDirectFormula) {
  // From the op's own probs and choices: coef * E * sum_e (count_e / (N k)) * mean_t probs[t, e].
  int64_t n = 50, ne = 5, k = 2;
  Tensor x = randn({n, 8}, 7, 1.0, DType::f64);
  ops::MoeWeights w = make_weights(ne, 6, 8, 0, 0, 8, DType::f64);
  ops::MoeOut out = ops::moe_forward(x, w, {k, 0.5});
  std::vector<double> count(ne, 0), mean_p(ne, 0);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < k; ++j) count[int(out.experts.item({t, j}))] += 1;
    for (int64_t e = 0; e < ne; ++e) mean_p[e] += out.probs.item({t, e}) / n;
  }
  double want = 0;
  for (int64_t e = 0; e < ne; ++e) want += 0.5 * ne * count[e] / double(n * k) * mean_p[e];
  ASSERT_EQ(out.aux_loss.shape(), (Shape{1}));
  EXPECT_EQ(out.aux_loss.dtype(), DType::f64);
  EXPECT_NEAR(out.aux_loss.item(), want, 1e-14);
  // Perfectly balanced routing with uniform probs gives exactly coef (the loss's minimum value).
  ops::MoeOut uniform = ops::moe_forward(Tensor::zeros({10, 8}, DType::f64), w, {5, 0.5});
  EXPECT_NEAR(uniform.aux_loss.item(), 0.5, 1e-14);
}

TEST(Moe, TopkEqualsEIsTheDenseMixture) {
  int64_t n = 9, dm = 8, ne = 3, ffn = 5;
  Tensor x = randn({n, dm}, 21, 1.0, DType::f64);
  ops::MoeWeights w = make_weights(ne, ffn, dm, 0, 0, 22, DType::f64);
  ops::MoeOut out = ops::moe_forward(x, w, {ne, 0.01});
  std::vector<double> xv = x.to_vector(), g = w.w_gate.to_vector(), u = w.w_up.to_vector(), d = w.w_down.to_vector();
  std::vector<double> dense(n * dm, 0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t e = 0; e < ne; ++e) naive_expert(xv, t, dm, g, u, d, e, ffn, out.probs.item({t, e}), &dense[t * dm]);
  expect_near_vec(out.y.to_vector(), dense, 1e-12, "y");
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < ne; ++j)
      EXPECT_NEAR(out.gates.item({t, j}), out.probs.item({t, int64_t(out.experts.item({t, j}))}), 1e-14);
}

TEST(Moe, TiesChooseLowerExpertIndices) {
  // x = 0: every logit is 0, so every token takes experts 0..k-1 with equal gates.
  ops::MoeWeights w = make_weights(5, 4, 6, 0, 0, 31);
  ops::MoeOut out = ops::moe_forward(Tensor::zeros({3, 6}), w, {3, 0.01});
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_EQ(out.experts.item({t, j}), double(j));
      EXPECT_NEAR(out.gates.item({t, j}), 1.0 / 3, 1e-7);
    }
  // Experts 1 and 3 share the largest logit: 1 comes first, then 3; experts 0 and 2 are unused.
  Tensor v = randn({1, 6}, 32);
  std::vector<double> vv = v.to_vector(), router(4 * 6);
  for (int c = 0; c < 6; ++c) {
    router[0 * 6 + c] = -vv[c];
    router[1 * 6 + c] = vv[c];
    router[2 * 6 + c] = 0.5 * vv[c];
    router[3 * 6 + c] = vv[c];
  }
  ops::MoeWeights w2 = make_weights(4, 4, 6, 0, 0, 33, DType::f64);
  w2.router = Tensor::from_values(router, {4, 6}, DType::f64);
  Tensor x = v.to(DType::f64);
  ops::MoeOut out2 = ops::moe_forward(x, w2, {2, 0.01});
  EXPECT_EQ(out2.experts.item({0, 0}), 1.0);
  EXPECT_EQ(out2.experts.item({0, 1}), 3.0);
  EXPECT_DOUBLE_EQ(out2.gates.item({0, 0}), 0.5);
  // An expert no token chose gets an exact zero weight gradient.
  ops::MoeGrads g = ops::moe_backward(randn({1, 6}, 34, 1.0, DType::f64), 1.0, x, w2, {2, 0.01}, out2);
  for (int64_t e : {0, 2}) {
    EXPECT_EQ(max_abs_diff(g.dw.w_gate.select(0, e), Tensor::zeros({4, 6}, DType::f64)), 0.0);
    EXPECT_EQ(max_abs_diff(g.dw.w_up.select(0, e), Tensor::zeros({4, 6}, DType::f64)), 0.0);
    EXPECT_EQ(max_abs_diff(g.dw.w_down.select(0, e), Tensor::zeros({6, 4}, DType::f64)), 0.0);
  }
  EXPECT_GT(max_abs_diff(g.dw.w_down.select(0, 1), Tensor::zeros({6, 4}, DType::f64)), 0.0);
}

TEST(Moe, SharedExpertsDefineTheGradientFields) {
  Tensor x = randn({6, 8}, 41);
  for (int64_t ns : {0, 2}) {
    ops::MoeWeights w = make_weights(4, 6, 8, ns, 5, 42);
    ops::MoeOut out = ops::moe_forward(x, w, {2});
    ops::MoeGrads g = ops::moe_backward(randn({6, 8}, 43), 1.0, x, w, {2}, out);
    EXPECT_EQ(g.dx.shape(), x.shape());
    EXPECT_EQ(g.dw.router.shape(), w.router.shape());
    EXPECT_EQ(g.dw.w_down.shape(), w.w_down.shape());
    EXPECT_EQ(g.dw.shared_gate.defined(), ns > 0);
    EXPECT_EQ(g.dw.shared_up.defined(), ns > 0);
    EXPECT_EQ(g.dw.shared_down.defined(), ns > 0);
    if (ns > 0) EXPECT_EQ(g.dw.shared_down.shape(), w.shared_down.shape());
  }
}

TEST(Moe, F32BackwardMatchesF64) {
  int64_t n = 40, dm = 16;
  Tensor x = randn({n, dm}, 51, 1.0, DType::f64), dy = randn({n, dm}, 52, 1.0, DType::f64);
  ops::MoeWeights w64 = make_weights(4, 12, dm, 1, 8, 53, DType::f64);
  ops::MoeWeights w32{w64.router.to(DType::f32),     w64.w_gate.to(DType::f32),      w64.w_up.to(DType::f32),
                      w64.w_down.to(DType::f32),     w64.shared_gate.to(DType::f32), w64.shared_up.to(DType::f32),
                      w64.shared_down.to(DType::f32)};
  ops::MoeParams p{2, 0.1};
  ops::MoeGrads g64 = ops::moe_backward(dy, 1.0, x, w64, p, ops::moe_forward(x, w64, p));
  Tensor x32 = x.to(DType::f32), dy32 = dy.to(DType::f32);
  ops::MoeOut f32 = ops::moe_forward(x32, w32, p);
  ASSERT_EQ(max_abs_diff(f32.experts, ops::moe_forward(x, w64, p).experts), 0.0) << "routing differs in f32";
  ops::MoeGrads g32 = ops::moe_backward(dy32, 1.0, x32, w32, p, f32);
  EXPECT_LT(relative_error(g32.dx, g64.dx), 1e-5);
  EXPECT_LT(relative_error(g32.dw.router, g64.dw.router), 1e-5);
  EXPECT_LT(relative_error(g32.dw.w_gate, g64.dw.w_gate), 1e-5);
  EXPECT_LT(relative_error(g32.dw.w_up, g64.dw.w_up), 1e-5);
  EXPECT_LT(relative_error(g32.dw.w_down, g64.dw.w_down), 1e-5);
  EXPECT_LT(relative_error(g32.dw.shared_gate, g64.dw.shared_gate), 1e-5);
  EXPECT_LT(relative_error(g32.dw.shared_down, g64.dw.shared_down), 1e-5);
}

TEST(Moe, ResultsDoNotDependOnThreadCount) {
  Tensor x = randn({300, 16}, 61), dy = randn({300, 16}, 62);
  ops::MoeWeights w = make_weights(4, 24, 16, 1, 8, 63);
  ops::MoeParams p{2};
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  ops::MoeOut one = ops::moe_forward(x, w, p);
  ops::MoeGrads g_one = ops::moe_backward(dy, 1.0, x, w, p, one);
  omp_set_num_threads(std::max(threads, 3));
  ops::MoeOut many = ops::moe_forward(x, w, p);
  ops::MoeGrads g_many = ops::moe_backward(dy, 1.0, x, w, p, many);
  omp_set_num_threads(threads);
  EXPECT_EQ(max_abs_diff(one.y, many.y), 0.0);
  EXPECT_EQ(max_abs_diff(g_one.dx, g_many.dx), 0.0);
  EXPECT_EQ(max_abs_diff(g_one.dw.w_gate, g_many.dw.w_gate), 0.0);
  EXPECT_EQ(max_abs_diff(g_one.dw.router, g_many.dw.router), 0.0);
}

TEST(Moe, Bf16StorageComputesInF32) {
  Tensor x = randn({20, 16}, 71);
  ops::MoeWeights w = make_weights(4, 8, 16, 1, 8, 72);
  ops::MoeWeights wb{w.router.to(DType::bf16),     w.w_gate.to(DType::bf16),      w.w_up.to(DType::bf16),
                     w.w_down.to(DType::bf16),     w.shared_gate.to(DType::bf16), w.shared_up.to(DType::bf16),
                     w.shared_down.to(DType::bf16)};
  Tensor xb = x.to(DType::bf16);
  // Reference: the same bf16-rounded values in f32, so both see the same routing.
  ops::MoeWeights wr{wb.router.to(DType::f32),     wb.w_gate.to(DType::f32),      wb.w_up.to(DType::f32),
                     wb.w_down.to(DType::f32),     wb.shared_gate.to(DType::f32), wb.shared_up.to(DType::f32),
                     wb.shared_down.to(DType::f32)};
  ops::MoeOut got = ops::moe_forward(xb, wb, {2});
  ops::MoeOut ref = ops::moe_forward(xb.to(DType::f32), wr, {2});
  EXPECT_EQ(got.y.dtype(), DType::bf16);
  EXPECT_EQ(got.probs.dtype(), DType::f32);
  EXPECT_LT(relative_error(got.y, ref.y), 1e-2);
  ops::MoeGrads g = ops::moe_backward(randn({20, 16}, 73).to(DType::bf16), 1.0, xb, wb, {2}, got);
  EXPECT_EQ(g.dx.dtype(), DType::bf16);
  EXPECT_EQ(g.dw.shared_up.dtype(), DType::bf16);
}

TEST(Moe, BadInputsGiveClearErrors) {
  Tensor x = randn({5, 16}, 81);
  ops::MoeWeights w = make_weights(4, 24, 16, 1, 8, 82);
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << "'" << msg << "' lacks '" << part << "'";
  };
  EXPECT_TRUE(has(error_of([&] { ops::moe_forward(x, w, {0}); }), "moe_forward: topk must be in [1, E = 4], got 0"));
  EXPECT_TRUE(has(error_of([&] { ops::moe_forward(x, w, {5}); }), "topk must be in [1, E = 4], got 5"));
  {
    ops::MoeWeights bad = w;
    bad.w_up = randn({4, 7, 16}, 1);
    EXPECT_TRUE(has(error_of([&] { ops::moe_forward(x, bad, {2}); }),
                    "moe_forward: 'w_up' has shape [4, 7, 16], expected [4, 24, 16]"));
  }
  {
    ops::MoeWeights bad = w;
    bad.w_down = randn({4, 24, 16}, 1);
    EXPECT_TRUE(
        has(error_of([&] { ops::moe_forward(x, bad, {2}); }), "'w_down' has shape [4, 24, 16], expected [4, 16, 24]"));
  }
  {
    ops::MoeWeights bad = w;
    bad.router = randn({4, 15}, 1);
    EXPECT_TRUE(has(error_of([&] { ops::moe_forward(x, bad, {2}); }), "'router' has shape [4, 15], expected [4, 16]"));
  }
  {
    ops::MoeWeights bad = w;
    bad.shared_down = randn({1, 8, 16}, 1);
    EXPECT_TRUE(has(error_of([&] { ops::moe_forward(x, bad, {2}); }),
                    "'shared_down' has shape [1, 8, 16], expected [1, 16, 8]"));
  }
  {
    ops::MoeWeights bad = w;
    bad.shared_up = Tensor();
    EXPECT_TRUE(has(error_of([&] { ops::moe_forward(x, bad, {2}); }),
                    "moe_forward: shared expert weights are partially defined (shared_gate defined, shared_up "
                    "undefined, shared_down defined)"));
  }
  {
    ops::MoeWeights bad = w;
    bad.w_gate = bad.w_gate.to(DType::f64);
    EXPECT_TRUE(has(error_of([&] { ops::moe_forward(x, bad, {2}); }), "'x' is f32 but 'w_gate' is f64"));
  }
  EXPECT_TRUE(has(error_of([&] { ops::moe_forward(randn({5, 2, 8}, 1), w, {2}); }), "'x' has shape [5, 2, 8]"));
  EXPECT_TRUE(has(error_of([&] { ops::moe_forward(Tensor::zeros({5, 16}, DType::i32), w, {2}); }), "'x'"));

  ops::MoeOut out = ops::moe_forward(x, w, {2});
  EXPECT_TRUE(has(error_of([&] {
                    ops::moe_backward(randn({5, 15}, 1), 1.0, x, w, {2}, out);
                  }),
                  "moe_backward: 'dy' has shape [5, 15], expected [5, 16]"));
  EXPECT_TRUE(has(error_of([&] {
                    ops::moe_backward(randn({5, 16}, 1), 1.0, x, w, {3}, out);
                  }),
                  "'fwd.experts' has shape [5, 2], expected [5, 3]"));
  ops::MoeOut corrupt = out;
  corrupt.experts = Tensor::from_i32({0, 1, 2, 3, 0, 1, 2, 9, 0, 1}, {5, 2});
  EXPECT_TRUE(has(error_of([&] {
                    ops::moe_backward(randn({5, 16}, 1), 1.0, x, w, {2}, corrupt);
                  }),
                  "moe_backward: 'fwd.experts' routes token 3 to expert 9, outside [0, 4)"));
  ops::MoeOut no_saved = out;
  no_saved.saved.clear();
  EXPECT_TRUE(has(error_of([&] {
                    ops::moe_backward(randn({5, 16}, 1), 1.0, x, w, {2}, no_saved);
                  }),
                  "'fwd.saved' holds 0 tensors, expected 2"));
}

TEST(Moe, NoTokensGiveZeroGradients) {
  ops::MoeWeights w = make_weights(4, 6, 8, 1, 5, 91);
  Tensor x = Tensor::zeros({0, 8});
  ops::MoeOut out = ops::moe_forward(x, w, {2});
  EXPECT_EQ(out.y.shape(), (Shape{0, 8}));
  EXPECT_EQ(out.aux_loss.item(), 0.0);
  ops::MoeGrads g = ops::moe_backward(Tensor::zeros({0, 8}), 1.0, x, w, {2}, out);
  EXPECT_EQ(max_abs_diff(g.dw.router, Tensor::zeros({4, 8})), 0.0);
  EXPECT_EQ(max_abs_diff(g.dw.w_gate, Tensor::zeros({4, 6, 8})), 0.0);
  EXPECT_EQ(max_abs_diff(g.dw.shared_down, Tensor::zeros({1, 8, 5})), 0.0);
}
