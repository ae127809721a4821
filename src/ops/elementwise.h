// Elementwise helpers the model needs around its ops: residual adds and scaling.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

Tensor add(const Tensor& a, const Tensor& b);                     // a + b, same shape and dtype
void add_(Tensor& dst, const Tensor& src, double alpha = 1.0);    // dst += alpha * src, in place
Tensor scale(const Tensor& x, double s);                          // s * x

}  // namespace hsa::ops
