// AdamW has no gradient of its own to check; its "gradcheck" is (1) agreement in f64 with a direct double
// reimplementation over several steps, and (2) that it actually minimises a convex quadratic.
#include "common/gradcheck.h"
#include "ops/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;
using namespace hsa::testing;

TEST(AdamWGradcheck, MatchesDoublePrecisionReference) {
  const int64_t n = 37;
  Tensor p = randn64({n}, 1), m = Tensor::zeros({n}, DType::f64), v = Tensor::zeros({n}, DType::f64);
  std::vector<double> rp = p.to_vector(), rm(n, 0.0), rv(n, 0.0);
  const ops::AdamWConfig cfg{3e-2, 0.8, 0.9, 1e-6, 0.05};
  for (int64_t step = 1; step <= 7; ++step) {
    Tensor g = randn64({n}, 100 + step);
    std::vector<double> gv = g.to_vector();
    ops::adamw_step(p, g, m, v, step, cfg);
    for (int64_t i = 0; i < n; ++i) {
      rp[i] -= cfg.lr * cfg.weight_decay * rp[i];
      rm[i] = cfg.beta1 * rm[i] + (1 - cfg.beta1) * gv[i];
      rv[i] = cfg.beta2 * rv[i] + (1 - cfg.beta2) * gv[i] * gv[i];
      double mhat = rm[i] / (1 - std::pow(cfg.beta1, double(step)));
      double vhat = rv[i] / (1 - std::pow(cfg.beta2, double(step)));
      rp[i] -= cfg.lr * mhat / (std::sqrt(vhat) + cfg.eps);
    }
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(p.get_flat(i), rp[i], 1e-12) << "step " << step << " element " << i;
      ASSERT_NEAR(m.get_flat(i), rm[i], 1e-12);
      ASSERT_NEAR(v.get_flat(i), rv[i], 1e-12);
    }
  }
}

TEST(AdamWGradcheck, MinimisesConvexQuadratic) {
  // f(p) = 1/2 sum_i a_i (p_i - c_i)^2 with curvatures a_i in [0.5, 2], from a random start.
  for (DType dtype : {DType::f64, DType::f32}) {
    const int64_t n = 64;
    Tensor a = rand_uniform({n}, 1, 0.5, 2.0, DType::f64), c = randn64({n}, 2);
    Tensor p = randn({n}, 3, 1.0, dtype), m = Tensor::zeros({n}, dtype), v = Tensor::zeros({n}, dtype);
    auto loss_and_grad = [&](Tensor* grad) {
      double f = 0;
      for (int64_t i = 0; i < n; ++i) {
        double d = p.get_flat(i) - c.get_flat(i);
        f += 0.5 * a.get_flat(i) * d * d;
        if (grad) grad->set_flat(i, a.get_flat(i) * d);
      }
      return f;
    };
    double initial = loss_and_grad(nullptr);
    Tensor g = Tensor::empty({n}, dtype);
    for (int64_t step = 1; step <= 200; ++step) {
      loss_and_grad(&g);
      ops::adamw_step(p, g, m, v, step, {0.05, 0.9, 0.95, 1e-8, 0.0});
    }
    double final_loss = loss_and_grad(nullptr);
    EXPECT_LT(final_loss * 100, initial) << dtype_name(dtype) << ": " << initial << " -> " << final_loss;
  }
}
