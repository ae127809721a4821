// Moving data between tensors without arithmetic: concatenation and slice copies. Device-agnostic.
#pragma once
#include <hsa/tensor.h>

#include <vector>

namespace hsa::ops {

// Concatenates along `axis`; every other axis must agree. Undefined or empty inputs are skipped.
Tensor concat(const std::vector<Tensor>& parts, int axis);

// A contiguous copy of x[..., start:end, ...] along axis (views are cheap, but kernels want contiguous inputs).
Tensor slice_copy(const Tensor& x, int axis, int64_t start, int64_t end);

// The backward of slice_copy: a zero tensor of `full_shape` with `part` written at [start, start+len) on axis.
Tensor pad_slice(const Tensor& part, const Shape& full_shape, int axis, int64_t start);

}  // namespace hsa::ops
