#include "gpu/parity.h"
#include "ops/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;
using namespace hsa::testing;

TEST(AdamWParity, SeveralStepsWithF32AndBf16Grads) {
  HSA_REQUIRE_GPU();
  for (DType grad_dtype : {DType::f32, DType::bf16}) {
    Shape shape{37, 41};
    Tensor p = random_input(shape, 1, DType::f32), m = Tensor::zeros(shape), v = Tensor::zeros(shape);
    Tensor p0 = p.clone(), pg = gpu(p), mg = gpu(m), vg = gpu(v);
    ops::AdamWConfig cfg{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
    for (int64_t step = 1; step <= 4; ++step) {
      Tensor g = random_input(shape, 10 + step, grad_dtype);
      ops::adamw_step(p, g, m, v, step, cfg);
      ops::adamw_step(pg, gpu(g), mg, vg, step, cfg);
    }
    // The parameters move by ~lr per step: compare the update itself, not only the parameter.
    expect_parity(pg, p, kF32Tol, "param");
    Tensor got_update = host(pg), want_update = p.clone();
    for (int64_t i = 0; i < p.numel(); ++i) {
      got_update.set_flat(i, got_update.get_flat(i) - p0.get_flat(i));
      want_update.set_flat(i, want_update.get_flat(i) - p0.get_flat(i));
    }
    EXPECT_LT(relative_error(got_update, want_update), 1e-4) << "update";
    expect_parity(mg, m, kF32Tol, "m");
    expect_parity(vg, v, kF32Tol, "v");
  }
}

// Sizes around the pack of 4 (the tail) and a gradient one element off alignment (the width-1 path).
TEST(AdamWParity, PackTailsAndMisalignedGrads) {
  HSA_REQUIRE_GPU();
  for (DType grad_dtype : {DType::f32, DType::bf16})
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(4099)})
      for (bool misaligned : {false, true}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(grad_dtype) << " n=" << n << " misaligned=" << misaligned);
        Tensor p = random_input({n}, 1 + n, DType::f32), m = random_input({n}, 2 + n, DType::f32, 0.1),
               v = random_input({n}, 3 + n, DType::f32, 0.1), g = random_input({n}, 4 + n, grad_dtype);
        for (int64_t i = 0; i < n; ++i) v.set_flat(i, std::abs(v.get_flat(i)));
        Tensor pg = gpu(p), mg = gpu(m), vg = gpu(v);
        ops::AdamWConfig cfg{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
        ops::adamw_step(p, g, m, v, 3, cfg);
        ops::adamw_step(pg, misaligned ? gpu_misaligned(g) : gpu(g), mg, vg, 3, cfg);
        expect_parity(pg, p, kF32Tol, "param");
        expect_parity(mg, m, kF32Tol, "m");
        expect_parity(vg, v, kF32Tol, "v");
      }
}

TEST(AdamWParity, F64ParamsAreCpuOnly) {
  HSA_REQUIRE_GPU();
  Tensor p = gpu(randn({4}, 1, 1.0, DType::f64)), m = gpu(Tensor::zeros({4}, DType::f64)),
         v = gpu(Tensor::zeros({4}, DType::f64));
  EXPECT_THROW(ops::adamw_step(p, p, m, v, 1, ops::AdamWConfig{.lr = 1e-3}), Error);
}
