// Tensor copies on the GPU: strided views, dtype conversion, fills and zeros give exactly what the CPU gives
// (conversions round the same way on both devices), and the gradient-norm reduction matches the CPU.
#include "gpu/parity.h"
#include "ops/elementwise.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(TensorCopyParity, StridedViewsConvertExactlyAsOnTheCpu) {
  HSA_REQUIRE_GPU();
  Tensor x = random_input({5, 7, 9}, 11, DType::f32);
  Tensor x_gpu = gpu(x);
  // A slice (non-contiguous) and a select of it, each made contiguous, converted, and converted back.
  for (auto view : {+[](const Tensor& t) { return t.slice(1, 2, 6); },
                    +[](const Tensor& t) { return t.slice(2, 1, 8).select(0, 3); }}) {
    Tensor got = view(x_gpu), want = view(x);
    ASSERT_FALSE(got.is_contiguous());
    EXPECT_EQ(max_abs_diff(host(got.contiguous()), want.contiguous()), 0.0);
    EXPECT_EQ(max_abs_diff(host(got.to(DType::bf16)), want.to(DType::bf16)), 0.0);
    EXPECT_EQ(max_abs_diff(host(got.to(DType::bf16).to(DType::f32)), want.to(DType::bf16).to(DType::f32)), 0.0);
    EXPECT_EQ(max_abs_diff(host(got.clone()), want.clone()), 0.0);
  }
  Tensor ids = Tensor::from_i32({3, -1, 7, 259}, {2, 2});
  EXPECT_EQ(max_abs_diff(host(gpu(ids).to(DType::f32)), ids.to(DType::f32)), 0.0);
}

// The copy fast path (innermost axis contiguous on both sides, rows copied in 16-byte packs) against the CPU, bit
// for bit: slices along outer and inner axes with row lengths on and off the pack, every f32/bf16 pair, clones of
// sizes around the pack, a misaligned source, and a slice written into a strided destination.
TEST(TensorCopyParity, RowCopiesInPacksAndOffThem) {
  HSA_REQUIRE_GPU();
  for (DType src_dtype : {DType::f32, DType::bf16})
    for (DType dst_dtype : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(src_dtype) << " -> " << dtype_name(dst_dtype));
      Tensor x = random_input({3, 40, 2, 96}, 21, src_dtype), x_gpu = gpu(x);
      // [B, L, H, D] views: a block of heads or of positions (packed rows), a column range at a pack boundary
      // (packed) and off it (width 1), and a select.
      for (auto view : {+[](const Tensor& t) { return t.slice(2, 1, 2); },
                        +[](const Tensor& t) { return t.slice(1, 5, 37); },
                        +[](const Tensor& t) { return t.slice(3, 16, 80); },
                        +[](const Tensor& t) { return t.slice(3, 3, 70); },
                        +[](const Tensor& t) { return t.select(1, 7).slice(2, 8, 96); }}) {
        Tensor got = view(x_gpu), want = view(x);
        EXPECT_EQ(max_abs_diff(host(got.to(dst_dtype).contiguous()), want.to(dst_dtype).contiguous()), 0.0);
        Tensor dst_gpu = gpu(Tensor::zeros(want.shape(), dst_dtype));
        dst_gpu.copy_from(got);
        EXPECT_EQ(max_abs_diff(host(dst_gpu), want.to(dst_dtype)), 0.0);
      }
      for (int64_t n : {int64_t(1), int64_t(5), int64_t(8), int64_t(4097)}) {
        Tensor y = random_input({n}, 22 + n, src_dtype);
        EXPECT_EQ(max_abs_diff(host(gpu(y).to(dst_dtype)), y.to(dst_dtype)), 0.0) << "n=" << n;
        EXPECT_EQ(max_abs_diff(host(gpu_misaligned(y).to(dst_dtype)), y.to(dst_dtype)), 0.0) << "misaligned n=" << n;
      }
      // Into a slice of a bigger destination along the outer and the inner axis.
      Tensor base = random_input({4, 10, 24}, 23, dst_dtype), part = random_input({4, 3, 24}, 24, src_dtype);
      Tensor base_gpu = gpu(base);
      base_gpu.slice(1, 2, 5).copy_from(gpu(part));
      base.slice(1, 2, 5).copy_from(part);
      Tensor cols = random_input({4, 10, 9}, 25, src_dtype);
      base_gpu.slice(2, 15, 24).copy_from(gpu(cols));
      base.slice(2, 15, 24).copy_from(cols);
      EXPECT_EQ(max_abs_diff(host(base_gpu), base), 0.0);
    }
}

TEST(TensorCopyParity, CopyIntoAStridedDestinationFromEitherDevice) {
  HSA_REQUIRE_GPU();
  for (Device src_device : {Device::cpu, Device::cuda}) {
    Tensor base = random_input({4, 10, 6}, 12, DType::bf16), part = random_input({4, 3, 6}, 13, DType::f32);
    Tensor base_gpu = gpu(base);
    Tensor dst_gpu = base_gpu.slice(1, 5, 8), dst_cpu = base.slice(1, 5, 8);
    dst_gpu.copy_from(part.to(src_device));
    dst_cpu.copy_from(part);
    // The slice converted to bf16 as on the cpu; everything outside it untouched.
    EXPECT_EQ(max_abs_diff(host(base_gpu), base), 0.0) << device_name(src_device);
  }
  // And from a strided device source into a cpu tensor.
  Tensor x = random_input({6, 8}, 14, DType::f32);
  Tensor dst = Tensor::zeros({6, 3});
  dst.copy_from(gpu(x).slice(1, 4, 7));
  EXPECT_EQ(max_abs_diff(dst, x.slice(1, 4, 7).contiguous()), 0.0);
}

TEST(TensorCopyParity, FillAndZeroOnViewsAndZerosTensors) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16, DType::i32}) {
    Tensor base = Tensor::full({3, 5, 4}, 2.0, dtype), base_gpu = gpu(base);
    Tensor view_gpu = base_gpu.slice(1, 1, 3), view_cpu = base.slice(1, 1, 3);
    view_gpu.fill(-1.5);
    view_cpu.fill(-1.5);
    EXPECT_EQ(max_abs_diff(host(base_gpu), base), 0.0) << dtype_name(dtype);
    base_gpu.slice(2, 0, 2).zero();
    base.slice(2, 0, 2).zero();
    EXPECT_EQ(max_abs_diff(host(base_gpu), base), 0.0) << dtype_name(dtype);
  }
  poison_outputs({bytes_of({1000, 33}, DType::f32)});
  Tensor z = Tensor::zeros({1000, 33}, DType::f32, Device::cuda);
  EXPECT_EQ(ops::sum_of_squares({z}), 0.0);
}

TEST(TensorCopyParity, SumOfSquaresMatchesTheCpu) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    std::vector<Tensor> cpu_parts{random_input({1}, 1, dtype), random_input({257, 3}, 2, dtype),
                                  random_input({4099, 131}, 3, dtype)};
    std::vector<Tensor> gpu_parts;
    for (const Tensor& t : cpu_parts) gpu_parts.push_back(gpu(t));
    double want = ops::sum_of_squares(cpu_parts), got = ops::sum_of_squares(gpu_parts);
    EXPECT_NEAR(got, want, 1e-5 * want) << dtype_name(dtype);
  }
  EXPECT_EQ(ops::sum_of_squares({}), 0.0);
}
