// RMSNorm over the last axis: y = x / sqrt(mean(x^2) + eps) * weight.
// x [..., dim], weight [dim]; rstd [...] (1/rms per row) is kept for the backward pass.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

struct RmsNormOut {
  Tensor y;     // like x
  Tensor rstd;  // x's shape without the last axis, compute dtype
};
RmsNormOut rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps);

struct RmsNormGrads {
  Tensor dx;       // like x
  Tensor dweight;  // like weight
};
RmsNormGrads rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd);

}  // namespace hsa::ops
