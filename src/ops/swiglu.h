// SwiGLU gate: out = silu(gate) * up, elementwise (the FFN is linear -> swiglu -> linear).
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

Tensor swiglu_forward(const Tensor& gate, const Tensor& up);

struct SwigluGrads {
  Tensor dgate;
  Tensor dup;
};
SwigluGrads swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up);

}  // namespace hsa::ops
