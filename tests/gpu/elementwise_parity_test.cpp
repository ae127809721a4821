#include "gpu/parity.h"
#include "ops/elementwise.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(ElementwiseParity, AddScaleAddInPlace) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    Shape shape{7, 1031};
    Tensor a = random_input(shape, 1, dtype), b = random_input(shape, 2, dtype);
    poison_outputs({bytes_of(shape, dtype)});
    expect_parity(ops::add(gpu(a), gpu(b)), ops::add(a, b), tol_for(dtype), "add");
    poison_outputs({bytes_of(shape, dtype)});
    expect_parity(ops::scale(gpu(a), -0.37), ops::scale(a, -0.37), tol_for(dtype), "scale");
    Tensor dst_gpu = gpu(a), dst_cpu = a.clone();
    ops::add_(dst_gpu, gpu(b), 0.5);
    ops::add_(dst_cpu, b, 0.5);
    expect_parity(dst_gpu, dst_cpu, tol_for(dtype), "add_");
  }
}

TEST(ElementwiseParity, AddInPlaceIntoAStridedView) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor base = random_input({5, 6, 11}, 3, dtype), src = random_input({5, 3, 11}, 4, dtype);
    Tensor base_gpu = gpu(base);
    Tensor view_gpu = base_gpu.slice(1, 2, 5), view_cpu = base.slice(1, 2, 5);
    ASSERT_FALSE(view_gpu.is_contiguous());
    ops::add_(view_gpu, gpu(src), 2.0);
    ops::add_(view_cpu, src, 2.0);
    // The whole base: the slice updated, everything outside it untouched.
    expect_parity(base_gpu, base, tol_for(dtype), "strided add_");
  }
}
