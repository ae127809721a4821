#include "gpu/parity.h"
#include "ops/swiglu.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(SwigluParity, ForwardBackwardF32AndBf16) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    Shape shape{3, 17, 129};
    Tensor gate = random_input(shape, 1, dtype, 3.0), up = random_input(shape, 2, dtype),
           dout = random_input(shape, 3, dtype);
    poison_outputs({bytes_of(shape, dtype)});
    expect_parity(ops::swiglu_forward(gpu(gate), gpu(up)), ops::swiglu_forward(gate, up), tol_for(dtype), "out");
    poison_outputs({bytes_of(shape, dtype), bytes_of(shape, dtype)});
    ops::SwigluGrads g = ops::swiglu_backward(gpu(dout), gpu(gate), gpu(up)),
                     ref = ops::swiglu_backward(dout, gate, up);
    expect_parity(g.dgate, ref.dgate, tol_for(dtype), "dgate");
    expect_parity(g.dup, ref.dup, tol_for(dtype), "dup");
  }
}

// Sizes around the 16-byte pack (the tail) and inputs one element off alignment (the width-1 path).
TEST(SwigluParity, PackTailsAndMisalignedInputs) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(8), int64_t(13), int64_t(4101)})
      for (bool misaligned : {false, true}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " n=" << n << " misaligned=" << misaligned);
        auto to_gpu = [&](const Tensor& t) { return misaligned ? gpu_misaligned(t) : gpu(t); };
        Tensor gate = random_input({n}, 1 + n, dtype, 3.0), up = random_input({n}, 2 + n, dtype),
               dout = random_input({n}, 3 + n, dtype);
        poison_outputs({bytes_of({n}, dtype)});
        expect_parity(ops::swiglu_forward(to_gpu(gate), to_gpu(up)), ops::swiglu_forward(gate, up), tol_for(dtype),
                      "out");
        poison_outputs({bytes_of({n}, dtype), bytes_of({n}, dtype)});
        ops::SwigluGrads g = ops::swiglu_backward(to_gpu(dout), to_gpu(gate), to_gpu(up)),
                         ref = ops::swiglu_backward(dout, gate, up);
        expect_parity(g.dgate, ref.dgate, tol_for(dtype), "dgate");
        expect_parity(g.dup, ref.dup, tol_for(dtype), "dup");
      }
}
