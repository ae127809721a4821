#include "gpu/parity.h"
#include "ops/cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;
using namespace hsa::testing;

namespace {
void check_cross_entropy(DType dtype, int64_t n, int64_t v, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = rng.below(4) == 0 ? -100 : static_cast<int32_t>(rng.below(static_cast<uint64_t>(v)));
  Tensor logits = random_input({n, v}, seed + 1, dtype, 3.0), targets = Tensor::from_i32(t, {n});
  poison_outputs({bytes_of({n}, DType::f32)});
  ops::CrossEntropyOut out = ops::cross_entropy_forward(gpu(logits), gpu(targets)),
                       ref = ops::cross_entropy_forward(logits, targets);
  EXPECT_EQ(out.count, ref.count);
  EXPECT_NEAR(out.loss, ref.loss, 1e-5 * std::max(1.0, std::abs(ref.loss)));
  expect_parity(out.lse, ref.lse, kF32Tol, "lse");
  poison_outputs({bytes_of({n, v}, dtype)});
  expect_parity(ops::cross_entropy_backward(0.7, gpu(logits), gpu(targets), out.lse),
                ops::cross_entropy_backward(0.7, logits, targets, ref.lse), tol_for(dtype), "dlogits");
}
}  // namespace

TEST(CrossEntropyParity, F32ForwardBackward) {
  HSA_REQUIRE_GPU();
  check_cross_entropy(DType::f32, 37, 1000, 1);
  check_cross_entropy(DType::f32, 3, 50257, 2);  // a GPT-2 sized vocabulary, not a power of two
  check_cross_entropy(DType::f32, 1, 1, 3);
}

TEST(CrossEntropyParity, Bf16ForwardBackward) {
  HSA_REQUIRE_GPU();
  check_cross_entropy(DType::bf16, 37, 1000, 4);
}

TEST(CrossEntropyParity, AllIgnoredGivesZeroLossAndZeroGradient) {
  HSA_REQUIRE_GPU();
  Tensor logits = gpu(randn({4, 9}, 1)), targets = gpu(Tensor::from_i32({-100, -100, -100, -100}, {4}));
  ops::CrossEntropyOut out = ops::cross_entropy_forward(logits, targets);
  EXPECT_EQ(out.count, 0);
  EXPECT_EQ(out.loss, 0.0);
  for (double g : host(ops::cross_entropy_backward(1.0, logits, targets, out.lse)).to_vector()) EXPECT_EQ(g, 0.0);
}

TEST(CrossEntropyParity, BadTargetThrowsInForward) {
  HSA_REQUIRE_GPU();
  Tensor logits = gpu(randn({3, 5}, 1)), targets = gpu(Tensor::from_i32({1, 5, 2}, {3}));
  try {
    ops::cross_entropy_forward(logits, targets);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cross_entropy_forward: 'targets'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("5 at flat index 1, outside [0, 5)"), std::string::npos) << e.what();
  }
}
