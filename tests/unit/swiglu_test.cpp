#include "ops/swiglu.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;

TEST(Swiglu, ForwardMatchesFormula) {
  Tensor gate = Tensor::from_values({-3, -0.5, 0, 0.5, 3, 10}, {2, 3});
  Tensor up = Tensor::from_values({1, 2, 3, -1, -2, 0.5}, {2, 3});
  Tensor out = ops::swiglu_forward(gate, up);
  std::vector<double> g = gate.to_vector(), u = up.to_vector(), o = out.to_vector();
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(o[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-6);
}

TEST(Swiglu, MismatchedShapesAreAnError) {
  EXPECT_THROW(ops::swiglu_forward(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})), Error);
}
