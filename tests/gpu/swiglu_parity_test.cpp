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
