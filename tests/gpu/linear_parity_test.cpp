#include "gpu/parity.h"
#include "ops/linear.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {
void check_linear(DType dtype, const Shape& x_shape, int64_t out, uint64_t seed) {
  Shape w_shape{out, x_shape.back()}, y_shape = x_shape;
  y_shape.back() = out;
  Tensor x = random_input(x_shape, seed, dtype), w = random_input(w_shape, seed + 1, dtype, 0.2),
         dy = random_input(y_shape, seed + 2, dtype);
  Tensor dx_ = gpu(x), dw_ = gpu(w), ddy = gpu(dy);
  poison_outputs({bytes_of(y_shape, dtype)});
  expect_parity(ops::linear_forward(dx_, dw_), ops::linear_forward(x, w), tol_for(dtype), "y");
  poison_outputs({bytes_of(x_shape, dtype), bytes_of(w_shape, dtype)});
  ops::LinearGrads g = ops::linear_backward(ddy, dx_, dw_), ref = ops::linear_backward(dy, x, w);
  expect_parity(g.dx, ref.dx, tol_for(dtype), "dx");
  expect_parity(g.dw, ref.dw, tol_for(dtype), "dw");
}
}  // namespace

TEST(LinearParity, F32ForwardBackward) {
  HSA_REQUIRE_GPU();
  check_linear(DType::f32, {3, 37, 100}, 70, 1);
  check_linear(DType::f32, {1, 1}, 1, 2);
  check_linear(DType::f32, {5, 257}, 129, 3);
}

TEST(LinearParity, Bf16ForwardBackward) {
  HSA_REQUIRE_GPU();
  check_linear(DType::bf16, {3, 37, 100}, 70, 4);
  check_linear(DType::bf16, {130, 96}, 33, 5);
}

TEST(LinearParity, MixedDevicesAreRejected) {
  HSA_REQUIRE_GPU();
  Tensor x = randn({2, 4}, 1), w = randn({3, 4}, 2);
  try {
    ops::linear_forward(gpu(x), w);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linear_forward: 'w' is on cpu but 'x' is on cuda"), std::string::npos)
        << e.what();
  }
}
