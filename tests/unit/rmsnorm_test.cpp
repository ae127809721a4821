#include "common/gradcheck.h"
#include "ops/rmsnorm.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;
using namespace hsa::testing;

TEST(RmsNorm, ForwardMatchesFormula) {
  Tensor x = randn({5, 16}, 11), w = randn({16}, 12);
  auto out = ops::rmsnorm_forward(x, w, 1e-5);
  for (int64_t r = 0; r < 5; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < 16; ++i) ss += x.item({r, i}) * x.item({r, i});
    double s = 1.0 / std::sqrt(ss / 16 + 1e-5);
    EXPECT_NEAR(out.rstd.item({r}), s, 1e-5 * s);
    for (int64_t i = 0; i < 16; ++i) EXPECT_NEAR(out.y.item({r, i}), x.item({r, i}) * s * w.item({i}), 1e-5);
  }
}

TEST(RmsNorm, Bf16StorageComputesInF32) {
  Tensor x = randn({4, 8}, 1), w = randn({8}, 2);
  auto ref = ops::rmsnorm_forward(x, w, 1e-5).y;
  auto got = ops::rmsnorm_forward(x.to(DType::bf16), w.to(DType::bf16), 1e-5).y;
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_LT(relative_error(got, ref), 1e-2);
}

TEST(RmsNorm, BadInputsGiveClearErrors) {
  Tensor x = randn({4, 8}, 1);
  try {
    ops::rmsnorm_forward(x, randn({7}, 2), 1e-5);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rmsnorm_forward: 'weight' has shape [7], expected [8]"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ops::rmsnorm_forward(x, randn({8}, 2, 1.0, DType::f64), 1e-5), Error);
  EXPECT_THROW(ops::rmsnorm_forward(Tensor::zeros({4, 8}, DType::i32), Tensor::zeros({8}, DType::i32), 1e-5), Error);
}
