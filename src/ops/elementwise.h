// Small elementwise ops the model code needs (residual adds, gradient accumulation, scaling).
// Every tensor argument has one shape and one floating dtype; no broadcasting.
#pragma once
#include <hsa/tensor.h>

#include <vector>

namespace hsa::ops {

// a + b, a new tensor of a's shape and dtype.
Tensor add(const Tensor& a, const Tensor& b);

// dst += alpha * src, in place (dst may be a strided view; bf16 dst is updated through f32). f64 on cuda: contiguous
// dst only (device-side f64 sums such as the model's MoE aux loss).
void add_(Tensor& dst, const Tensor& src, double alpha = 1.0);

// s * x, a new tensor of x's shape and dtype.
Tensor scale(const Tensor& x, double s);

// sum over every tensor of sum_i x_i^2, accumulated in f64 (gradient norms). All tensors on one device; on the
// GPU the partial sums stay on the device and one value comes back.
double sum_of_squares(const std::vector<Tensor>& xs);

}  // namespace hsa::ops
