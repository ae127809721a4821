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

// Sizes around the 16-byte pack (4 f32, 8 bf16: the n % pack tail) and inputs one element off alignment (the
// width-1 path), for every contiguous elementwise kernel.
TEST(ElementwiseParity, PackTailsAndMisalignedInputs) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(7), int64_t(8), int64_t(9), int64_t(17), int64_t(4103)})
      for (bool misaligned : {false, true}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " n=" << n << " misaligned=" << misaligned);
        Tensor a = random_input({n}, 10 + n, dtype), b = random_input({n}, 20 + n, dtype);
        Tensor ag = misaligned ? gpu_misaligned(a) : gpu(a), bg = misaligned ? gpu_misaligned(b) : gpu(b);
        poison_outputs({bytes_of({n}, dtype)});
        expect_parity(ops::add(ag, bg), ops::add(a, b), tol_for(dtype), "add");
        poison_outputs({bytes_of({n}, dtype)});
        expect_parity(ops::scale(ag, 1.5), ops::scale(a, 1.5), tol_for(dtype), "scale");
        Tensor dst_cpu = a.clone();
        ops::add_(ag, bg, -0.25);
        ops::add_(dst_cpu, b, -0.25);
        expect_parity(ag, dst_cpu, tol_for(dtype), "add_");
      }
}

// Hundreds of tensors of mixed sizes and both dtypes (some misaligned) in one call, as clip_grad_norm does:
// matches the CPU and gives the same bits every time.
TEST(ElementwiseParity, SumOfSquaresOverManyTensorsIsDeterministic) {
  HSA_REQUIRE_GPU();
  std::vector<Tensor> cpu_parts, gpu_parts;
  for (int i = 0; i < 240; ++i) {
    DType dtype = i % 3 == 0 ? DType::bf16 : DType::f32;
    int64_t n = i % 7 == 0 ? 70000 + 13 * i : 1 + 37 * i;  // some span several 16K-element blocks
    Tensor t = random_input({n}, 100 + i, dtype);
    cpu_parts.push_back(t);
    gpu_parts.push_back(i % 5 == 0 ? gpu_misaligned(t) : gpu(t));
  }
  double want = ops::sum_of_squares(cpu_parts), got = ops::sum_of_squares(gpu_parts);
  EXPECT_NEAR(got, want, 1e-5 * want);
  for (int run = 0; run < 3; ++run) EXPECT_EQ(ops::sum_of_squares(gpu_parts), got) << "run " << run;
}
