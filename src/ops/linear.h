// Linear layer without bias: y = x W^T (the model has no biases anywhere).
// x, dx [..., in]; w, dw [out, in]; y, dy [..., out].
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

Tensor linear_forward(const Tensor& x, const Tensor& w);

struct LinearGrads {
  Tensor dx;  // like x
  Tensor dw;  // like w
};
LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w);

}  // namespace hsa::ops
