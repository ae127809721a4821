#include "gpu/parity.h"
#include "ops/rmsnorm.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {
void check_rmsnorm(DType dtype, const Shape& shape, uint64_t seed) {
  Shape rows(shape.begin(), shape.end() - 1);
  Tensor x = random_input(shape, seed, dtype, 2.0), w = random_input({shape.back()}, seed + 1, dtype),
         dy = random_input(shape, seed + 2, dtype);
  poison_outputs({bytes_of(shape, dtype), bytes_of(rows, DType::f32)});
  ops::RmsNormOut out = ops::rmsnorm_forward(gpu(x), gpu(w), 1e-5), ref = ops::rmsnorm_forward(x, w, 1e-5);
  expect_parity(out.y, ref.y, tol_for(dtype), "y");
  expect_parity(out.rstd, ref.rstd, kF32Tol, "rstd");  // f32 for both dtypes
  poison_outputs({bytes_of(shape, dtype), bytes_of({shape.back()}, dtype)});
  ops::RmsNormGrads g = ops::rmsnorm_backward(gpu(dy), gpu(x), gpu(w), out.rstd),
                    rg = ops::rmsnorm_backward(dy, x, w, ref.rstd);
  expect_parity(g.dx, rg.dx, tol_for(dtype), "dx");
  expect_parity(g.dweight, rg.dweight, tol_for(dtype), "dweight");
}
}  // namespace

TEST(RmsNormParity, F32ForwardBackward) {
  HSA_REQUIRE_GPU();
  check_rmsnorm(DType::f32, {3, 37, 100}, 1);
  check_rmsnorm(DType::f32, {1, 1}, 2);
  check_rmsnorm(DType::f32, {1000, 1500}, 3);  // many rows: several dweight chunks; wide rows
}

TEST(RmsNormParity, Bf16ForwardBackward) {
  HSA_REQUIRE_GPU();
  check_rmsnorm(DType::bf16, {3, 37, 100}, 4);
  check_rmsnorm(DType::bf16, {257, 65}, 5);
}
