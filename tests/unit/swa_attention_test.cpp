#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/swa_attention.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

struct Case {
  int64_t batch, q_len, k_len, q_heads, kv_heads, dim;
  ops::SwaParams params;
};

bool visible(const ops::SwaParams& p, int64_t i, int64_t j) {
  int64_t tq = p.q_start + i, tk = p.k_start + j;
  return tk <= tq && tq - tk < p.window;
}

// The definition, one (batch, row, head) at a time, in double.
struct Reference {
  std::vector<double> out, lse;  // [B, Lq, HQ, D], [B, Lq, HQ]
};
// Row-major flat accessors into [B, L, heads, D] values.
struct Flat {
  std::vector<double> x;
  int64_t len, heads, dim;
  double at(int64_t b, int64_t i, int64_t h, int64_t e) const { return x[size_t(((b * len + i) * heads + h) * dim + e)]; }
};
Flat flat(const Tensor& t) { return {t.to_vector(), t.dim(1), t.dim(2), t.dim(3)}; }

Reference naive_forward(const Case& c, const Tensor& qt, const Tensor& kt, const Tensor& vt) {
  const Flat q = flat(qt), k = flat(kt), v = flat(vt);
  Reference r{std::vector<double>(size_t(c.batch * c.q_len * c.q_heads * c.dim), 0.0),
              std::vector<double>(size_t(c.batch * c.q_len * c.q_heads), 0.0)};
  const int64_t group = c.q_heads / c.kv_heads;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < c.q_len; ++i)
      for (int64_t h = 0; h < c.q_heads; ++h) {
        const int64_t kvh = h / group;
        std::vector<double> s(size_t(c.k_len), -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c.k_len; ++j) {
          if (!visible(c.params, i, j)) continue;
          double dot = 0;
          for (int64_t e = 0; e < c.dim; ++e) dot += q.at(b, i, h, e) * k.at(b, j, kvh, e);
          s[size_t(j)] = dot * c.params.scale;
          mx = std::max(mx, s[size_t(j)]);
        }
        const size_t row = size_t((b * c.q_len + i) * c.q_heads + h);
        if (mx == -std::numeric_limits<double>::infinity()) {
          r.lse[row] = mx;
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < c.k_len; ++j) sum += std::exp(s[size_t(j)] - mx);
        r.lse[row] = mx + std::log(sum);
        for (int64_t j = 0; j < c.k_len; ++j) {
          double pj = std::exp(s[size_t(j)] - mx) / sum;
          if (pj == 0) continue;
          for (int64_t e = 0; e < c.dim; ++e) r.out[row * size_t(c.dim) + size_t(e)] += pj * v.at(b, j, kvh, e);
        }
      }
  return r;
}

// dq, dk, dv of loss = <out, dout>, from the probabilities of the definition.
struct RefGrads {
  std::vector<double> dq, dk, dv;
};
RefGrads naive_backward(const Case& c, const Tensor& qt, const Tensor& kt, const Tensor& vt, const Tensor& dt) {
  RefGrads g{std::vector<double>(size_t(qt.numel()), 0.0), std::vector<double>(size_t(kt.numel()), 0.0),
             std::vector<double>(size_t(vt.numel()), 0.0)};
  Reference f = naive_forward(c, qt, kt, vt);
  const Flat q = flat(qt), k = flat(kt), v = flat(vt), dout = flat(dt);
  const int64_t group = c.q_heads / c.kv_heads, D = c.dim;
  auto kidx = [&](int64_t b, int64_t j, int64_t kvh, int64_t e) {
    return size_t(((b * c.k_len + j) * c.kv_heads + kvh) * D + e);
  };
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < c.q_len; ++i)
      for (int64_t h = 0; h < c.q_heads; ++h) {
        const int64_t kvh = h / group;
        const size_t row = size_t((b * c.q_len + i) * c.q_heads + h);
        if (std::isinf(f.lse[row])) continue;
        double delta = 0;
        for (int64_t e = 0; e < D; ++e) delta += dout.at(b, i, h, e) * f.out[row * size_t(D) + size_t(e)];
        for (int64_t j = 0; j < c.k_len; ++j) {
          if (!visible(c.params, i, j)) continue;
          double s = 0, dp = 0;
          for (int64_t e = 0; e < D; ++e) {
            s += q.at(b, i, h, e) * k.at(b, j, kvh, e);
            dp += dout.at(b, i, h, e) * v.at(b, j, kvh, e);
          }
          const double p = std::exp(s * c.params.scale - f.lse[row]), ds = p * (dp - delta);
          for (int64_t e = 0; e < D; ++e) {
            g.dv[kidx(b, j, kvh, e)] += p * dout.at(b, i, h, e);
            g.dk[kidx(b, j, kvh, e)] += c.params.scale * ds * q.at(b, i, h, e);
            g.dq[row * size_t(D) + size_t(e)] += c.params.scale * ds * k.at(b, j, kvh, e);
          }
        }
      }
  return g;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::abs(got[i] - want[i]) / std::max(1.0, std::abs(want[i]));
    if (!(err <= worst)) {  // also catches NaN
      worst = err;
      at = i;
    }
  }
  EXPECT_LE(worst, tol) << what << ": element " << at << " is " << got[at] << ", expected " << want[at];
}

struct Inputs {
  Tensor q, k, v;
};
Inputs make_inputs(const Case& c, uint64_t seed, DType dtype = DType::f32) {
  return {randn({c.batch, c.q_len, c.q_heads, c.dim}, seed, 1.0, dtype),
          randn({c.batch, c.k_len, c.kv_heads, c.dim}, seed + 1, 1.0, dtype),
          randn({c.batch, c.k_len, c.kv_heads, c.dim}, seed + 2, 1.0, dtype)};
}

// Forward (f32) against the definition; returns the kernel's result for further checks.
ops::SwaOut check_forward(const Case& c, uint64_t seed) {
  Inputs in = make_inputs(c, seed);
  ops::SwaOut got = ops::swa_forward(in.q, in.k, in.v, c.params);
  EXPECT_EQ(got.out.shape(), in.q.shape());
  EXPECT_EQ(got.lse.shape(), (Shape{c.batch, c.q_len, c.q_heads}));
  Reference want = naive_forward(c, in.q, in.k, in.v);
  expect_close(got.out.to_vector(), want.out, 2e-5, "out");
  std::vector<double> lse = got.lse.to_vector();
  for (size_t r = 0; r < lse.size(); ++r) {
    if (std::isinf(want.lse[r]))
      EXPECT_TRUE(std::isinf(lse[r]) && lse[r] < 0) << "row " << r << " sees no key, lse " << lse[r];
    else
      EXPECT_NEAR(lse[r], want.lse[r], 2e-5 * std::max(1.0, std::abs(want.lse[r]))) << "row " << r;
  }
  return got;
}

void check_backward(const Case& c, uint64_t seed) {
  Inputs in = make_inputs(c, seed);
  Tensor dout = randn(in.q.shape(), seed + 3);
  ops::SwaOut fwd = ops::swa_forward(in.q, in.k, in.v, c.params);
  ops::SwaGrads got = ops::swa_backward(dout, in.q, in.k, in.v, fwd, c.params);
  RefGrads want = naive_backward(c, in.q, in.k, in.v, dout);
  expect_close(got.dq.to_vector(), want.dq, 5e-5, "dq");
  expect_close(got.dk.to_vector(), want.dk, 5e-5, "dk");
  expect_close(got.dv.to_vector(), want.dv, 5e-5, "dv");
}

}  // namespace

TEST(SwaAttention, ForwardGqa1WindowBelowLength) { check_forward({2, 37, 37, 2, 2, 8, {5, 0.35}}, 1); }

TEST(SwaAttention, ForwardGqa4WindowBelowLength) { check_forward({1, 37, 37, 8, 2, 16, {10, 0.25}}, 2); }

TEST(SwaAttention, ForwardWindowOneIsValueOfOwnPosition) {
  Case c{1, 37, 37, 4, 1, 8, {1, 0.35}};
  Inputs in = make_inputs(c, 3);
  ops::SwaOut got = check_forward(c, 3);
  // Only the key at the query's own position is visible: out = v there, lse = its scaled score.
  for (int64_t i = 0; i < c.q_len; i += 9)
    for (int64_t h = 0; h < c.q_heads; ++h) EXPECT_NEAR(got.out.item({0, i, h, 3}), in.v.item({0, i, 0, 3}), 1e-6);
}

TEST(SwaAttention, ForwardWindowLongerThanSequence) {
  check_forward({2, 37, 37, 4, 1, 8, {100, 0.35}}, 4);
  check_forward({1, 37, 37, 2, 2, 8, {37, 0.35}}, 5);
}

// Several query blocks and several key blocks per query block, lengths not multiples of either.
TEST(SwaAttention, ForwardAcrossBlocks) {
  check_forward({1, 300, 300, 4, 1, 8, {200, 0.35}}, 6);
  check_forward({1, 211, 211, 16, 1, 4, {150, 0.5}}, 7);
}

// Decode: a few new queries against a key cache of recent positions, which also holds later positions that must
// stay masked.
TEST(SwaAttention, ForwardDecodeOffsets) {
  check_forward({2, 1, 20, 4, 2, 8, {8, 0.35, 50, 35}}, 8);
  check_forward({1, 3, 20, 4, 1, 8, {8, 0.35, 50, 35}}, 9);
  check_forward({1, 3, 20, 2, 2, 8, {100, 0.35, 50, 35}}, 10);
}

TEST(SwaAttention, QueryWithoutVisibleKeyGivesZeros) {
  // Rows at positions 8 and 9 precede every key (keys start at 10); rows at 10..12 see some.
  Case c{1, 5, 6, 2, 1, 4, {3, 0.5, 8, 10}};
  ops::SwaOut got = check_forward(c, 11);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t h = 0; h < 2; ++h) {
      EXPECT_TRUE(std::isinf(got.lse.item({0, i, h})) && got.lse.item({0, i, h}) < 0);
      for (int64_t e = 0; e < 4; ++e) EXPECT_EQ(got.out.item({0, i, h, e}), 0.0);
    }
  // Every key is too old for the window.
  Case old{1, 2, 10, 2, 2, 4, {5, 0.5, 100, 0}};
  ops::SwaOut none = check_forward(old, 12);
  for (double x : none.out.to_vector()) EXPECT_EQ(x, 0.0);
  // And the backward pass gives zeros, not NaN, for those rows.
  Inputs in = make_inputs(c, 11);
  ops::SwaGrads g = ops::swa_backward(randn(in.q.shape(), 13), in.q, in.k, in.v, got, c.params);
  for (double x : g.dq.to_vector()) EXPECT_TRUE(std::isfinite(x));
  for (int64_t e = 0; e < 4; ++e) EXPECT_EQ(g.dq.item({0, 0, 1, e}), 0.0);
}

TEST(SwaAttention, BackwardMatchesDefinitionAcrossBlocks) {
  check_backward({1, 300, 300, 4, 1, 8, {200, 0.35}}, 20);
  check_backward({2, 130, 130, 2, 2, 4, {20, 0.5}}, 21);
  check_backward({1, 3, 20, 4, 1, 8, {8, 0.35, 50, 35}}, 22);
}

// Many query blocks that each see the whole (short) key cache: the backward pass then groups query blocks into
// longer runs to bound its private dk/dv accumulators.
TEST(SwaAttention, BackwardLongQueriesShortCache) { check_backward({1, 1100, 16, 1, 1, 4, {5000, 0.5, 1000, 0}}, 23); }

TEST(SwaAttention, EmptyQueriesOrKeys) {
  ops::SwaParams p{4, 0.5};
  Tensor q = randn({1, 3, 2, 4}, 1), k0 = randn({1, 0, 1, 4}, 2);
  ops::SwaOut f = ops::swa_forward(q, k0, k0, p);  // no keys at all: every row outputs zeros
  for (double x : f.out.to_vector()) EXPECT_EQ(x, 0.0);
  for (double x : f.lse.to_vector()) EXPECT_TRUE(std::isinf(x) && x < 0);
  ops::SwaGrads g = ops::swa_backward(randn(q.shape(), 3), q, k0, k0, f, p);
  for (double x : g.dq.to_vector()) EXPECT_EQ(x, 0.0);
  EXPECT_EQ(g.dk.shape(), k0.shape());

  Tensor q0 = randn({1, 0, 2, 4}, 4), k = randn({1, 5, 1, 4}, 5);
  ops::SwaOut f0 = ops::swa_forward(q0, k, k, p);
  EXPECT_EQ(f0.out.shape(), q0.shape());
  ops::SwaGrads g0 = ops::swa_backward(q0, q0, k, k, f0, p);  // no queries: no gradient reaches any key
  for (double x : g0.dk.to_vector()) EXPECT_EQ(x, 0.0);
  for (double x : g0.dv.to_vector()) EXPECT_EQ(x, 0.0);
}

// Block and run boundaries depend on the shapes only, and every output element is summed in a fixed order, so
// the thread count cannot change a single bit.
TEST(SwaAttention, ResultsDoNotDependOnThreadCount) {
  Case c{2, 300, 300, 4, 2, 8, {150, 0.35}};
  Inputs in = make_inputs(c, 40);
  Tensor dout = randn(in.q.shape(), 41);
  auto run = [&] {
    ops::SwaOut f = ops::swa_forward(in.q, in.k, in.v, c.params);
    ops::SwaGrads g = ops::swa_backward(dout, in.q, in.k, in.v, f, c.params);
    return std::vector<std::vector<double>>{f.out.to_vector(), f.lse.to_vector(), g.dq.to_vector(),
                                            g.dk.to_vector(), g.dv.to_vector()};
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto serial = run();
  omp_set_num_threads(std::max(threads, 3));
  auto parallel = run();
  omp_set_num_threads(threads);
  for (size_t t = 0; t < serial.size(); ++t) EXPECT_EQ(serial[t], parallel[t]) << "output " << t;
}

TEST(SwaAttention, Bf16StorageComputesInF32) {
  Case c{1, 37, 37, 8, 2, 16, {12, 0.25}};
  Inputs in = make_inputs(c, 30);
  ops::SwaOut ref = ops::swa_forward(in.q, in.k, in.v, c.params);
  ops::SwaOut got =
      ops::swa_forward(in.q.to(DType::bf16), in.k.to(DType::bf16), in.v.to(DType::bf16), c.params);
  EXPECT_EQ(got.out.dtype(), DType::bf16);
  EXPECT_EQ(got.lse.dtype(), DType::f32);
  EXPECT_LT(relative_error(got.out, ref.out), 1e-2);
  Tensor dout = randn(in.q.shape(), 31);
  ops::SwaGrads gref = ops::swa_backward(dout, in.q, in.k, in.v, ref, c.params);
  ops::SwaGrads gbf = ops::swa_backward(dout.to(DType::bf16), in.q.to(DType::bf16), in.k.to(DType::bf16),
                                        in.v.to(DType::bf16), got, c.params);
  EXPECT_EQ(gbf.dk.dtype(), DType::bf16);
  EXPECT_LT(relative_error(gbf.dq, gref.dq), 3e-2);
  EXPECT_LT(relative_error(gbf.dk, gref.dk), 3e-2);
  EXPECT_LT(relative_error(gbf.dv, gref.dv), 3e-2);
}

TEST(SwaAttention, BadInputsGiveClearErrors) {
  ops::SwaParams p{4, 0.5};
  Tensor q = randn({1, 5, 6, 8}, 1), k = randn({1, 5, 4, 8}, 2), v = randn({1, 5, 4, 8}, 3);
  std::string e = error_of([&] { ops::swa_forward(q, k, v, p); });
  EXPECT_NE(e.find("swa_forward: query heads HQ = 6 ('q' [1, 5, 6, 8]) must be a positive multiple of KV heads "
                   "H = 4 ('k' [1, 5, 4, 8])"),
            std::string::npos)
      << e;

  Tensor q4 = randn({1, 5, 4, 8}, 1);
  e = error_of([&] { ops::swa_forward(q4, k, v, {0, 0.5}); });
  EXPECT_NE(e.find("swa_forward: window must be >= 1, got 0"), std::string::npos) << e;

  Tensor k7 = randn({1, 5, 4, 7}, 2);
  e = error_of([&] { ops::swa_forward(q4, k7, k7, p); });
  EXPECT_NE(e.find("swa_forward: 'k' has shape [1, 5, 4, 7], expected [B, Lk, H, D] with B = 1 and D = 8 as in "
                   "'q' [1, 5, 4, 8]"),
            std::string::npos)
      << e;

  Tensor k2 = randn({2, 5, 4, 8}, 2);
  e = error_of([&] { ops::swa_forward(q4, k2, k2, p); });
  EXPECT_NE(e.find("swa_forward: 'k' has shape [2, 5, 4, 8]"), std::string::npos) << e;

  e = error_of([&] { ops::swa_forward(q4, k, randn({1, 6, 4, 8}, 3), p); });
  EXPECT_NE(e.find("swa_forward: 'v' has shape [1, 6, 4, 8], expected [1, 5, 4, 8]"), std::string::npos) << e;

  Tensor qi = Tensor::zeros({1, 5, 4, 8}, DType::i32);
  e = error_of([&] { ops::swa_forward(qi, k, v, p); });
  EXPECT_NE(e.find("swa_forward: 'q' has dtype i32"), std::string::npos) << e;

  e = error_of([&] { ops::swa_forward(q4, k.to(DType::f64), v, p); });
  EXPECT_NE(e.find("swa_forward: 'q' is f32 but 'k' is f64"), std::string::npos) << e;

  e = error_of([&] { ops::swa_forward(randn({5, 4, 8}, 1), k, v, p); });
  EXPECT_NE(e.find("swa_forward: 'q' has shape [5, 4, 8] (3 dims), expected 4 dims"), std::string::npos) << e;

  ops::SwaOut fwd = ops::swa_forward(q4, k, v, p);
  e = error_of([&] { ops::swa_backward(randn({1, 5, 4, 7}, 4), q4, k, v, fwd, p); });
  EXPECT_NE(e.find("swa_backward: 'dout' has shape [1, 5, 4, 7], expected [1, 5, 4, 8]"), std::string::npos) << e;
  ops::SwaOut bad_lse{fwd.out, randn({1, 5, 3}, 5)};
  e = error_of([&] { ops::swa_backward(fwd.out, q4, k, v, bad_lse, p); });
  EXPECT_NE(e.find("swa_backward: 'fwd.lse' has shape [1, 5, 3], expected [1, 5, 4]"), std::string::npos) << e;
  e = error_of([&] { ops::swa_backward(fwd.out, q4, k, v, fwd, {0, 0.5}); });
  EXPECT_NE(e.find("swa_backward: window must be >= 1"), std::string::npos) << e;
}
