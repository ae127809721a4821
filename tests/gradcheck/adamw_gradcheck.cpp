// AdamW has no gradient of its own to check; its "gradcheck" compares the update in f64 with a direct
// double-precision reimplementation, and checks that it minimises a convex quadratic.
#include "common/gradcheck.h"
#include "ops/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;
using namespace hsa::testing;

TEST(AdamWGradcheck, MatchesReferenceUpdate) {
  Tensor p = randn64({10}, 1), m = Tensor::zeros({10}, DType::f64), v = Tensor::zeros({10}, DType::f64);
  std::vector<double> rp = p.to_vector(), rm(10, 0), rv(10, 0);
  ops::AdamWConfig c{0.01, 0.9, 0.99, 1e-8, 0.1};
  for (int64_t step = 1; step <= 5; ++step) {
    Tensor g = randn64({10}, 100 + step);
    ops::adamw_step(p, g, m, v, step, c);
    std::vector<double> gv = g.to_vector();
    for (int i = 0; i < 10; ++i) {
      rm[i] = 0.9 * rm[i] + 0.1 * gv[i];
      rv[i] = 0.99 * rv[i] + 0.01 * gv[i] * gv[i];
      double mh = rm[i] / (1 - std::pow(0.9, step)), vh = rv[i] / (1 - std::pow(0.99, step));
      rp[i] -= 0.01 * (mh / (std::sqrt(vh) + 1e-8) + 0.1 * rp[i]);
    }
  }
  std::vector<double> got = p.to_vector();
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(got[i], rp[i], 1e-12);
}

TEST(AdamWGradcheck, MinimisesAQuadratic) {
  Tensor target = randn64({8}, 2), p = randn64({8}, 3), m = Tensor::zeros({8}, DType::f64),
         v = Tensor::zeros({8}, DType::f64);
  auto loss = [&] {
    double s = 0;
    for (int i = 0; i < 8; ++i) s += std::pow(p.get_flat(i) - target.get_flat(i), 2);
    return s;
  };
  double start = loss();
  for (int64_t step = 1; step <= 200; ++step) {
    Tensor g = Tensor::empty({8}, DType::f64);
    for (int i = 0; i < 8; ++i) g.set_flat(i, 2 * (p.get_flat(i) - target.get_flat(i)));
    ops::adamw_step(p, g, m, v, step, {0.05, 0.9, 0.99, 1e-8, 0.0});
  }
  EXPECT_LT(loss(), start / 100);
}

TEST(AdamW, BadInputsAreErrors) {
  Tensor p = Tensor::zeros({4}), m = Tensor::zeros({4}), v = Tensor::zeros({4});
  EXPECT_THROW(ops::adamw_step(p, Tensor::zeros({5}), m, v, 1, {}), Error);
  EXPECT_THROW(ops::adamw_step(p, Tensor::zeros({4}), m, v, 0, {}), Error);
}
