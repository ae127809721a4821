#include "gpu/parity.h"
#include "ops/rmsnorm.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {
// misaligned: x, weight and dy start one element off alignment (the kernels' width-1 path).
void check_rmsnorm(DType dtype, const Shape& shape, uint64_t seed, bool misaligned = false) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << shape_str(shape) << " misaligned=" << misaligned);
  auto to_gpu = [&](const Tensor& t) { return misaligned ? gpu_misaligned(t) : gpu(t); };
  Shape rows(shape.begin(), shape.end() - 1);
  Tensor x = random_input(shape, seed, dtype, 2.0), w = random_input({shape.back()}, seed + 1, dtype),
         dy = random_input(shape, seed + 2, dtype);
  poison_outputs({bytes_of(shape, dtype), bytes_of(rows, DType::f32)});
  ops::RmsNormOut out = ops::rmsnorm_forward(to_gpu(x), to_gpu(w), 1e-5), ref = ops::rmsnorm_forward(x, w, 1e-5);
  expect_parity(out.y, ref.y, tol_for(dtype), "y");
  expect_parity(out.rstd, ref.rstd, kF32Tol, "rstd");  // f32 for both dtypes
  poison_outputs({bytes_of(shape, dtype), bytes_of({shape.back()}, dtype)});
  ops::RmsNormGrads g = ops::rmsnorm_backward(to_gpu(dy), to_gpu(x), to_gpu(w), out.rstd),
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

// The shapes of the model: the per-head q/k norm (rows = 16K tokens x 12 heads, dim 64: 4 rows per warp) and the
// hidden-size norm; then dims that are not a multiple of the pack, a single pack per row, and misaligned inputs.
TEST(RmsNormParity, ModelShapesOddDimsAndMisalignedInputs) {
  HSA_REQUIRE_GPU();
  check_rmsnorm(DType::bf16, {16384, 12, 64}, 6);
  check_rmsnorm(DType::bf16, {4096, 768}, 7);
  check_rmsnorm(DType::f32, {2048, 12, 64}, 8);
  for (DType dtype : {DType::f32, DType::bf16}) {
    check_rmsnorm(dtype, {67, 8}, 9);    // one bf16 pack per row (one lane per row), two f32 packs
    check_rmsnorm(dtype, {129, 33}, 10);  // not a multiple of any pack
    check_rmsnorm(dtype, {300, 3}, 11);
    check_rmsnorm(dtype, {70, 64}, 12, true);
    check_rmsnorm(dtype, {33, 768}, 13, true);
  }
}
