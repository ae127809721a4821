// Rotary position embedding, rotate-half convention: for i < D/2 the pair (x[i], x[i + D/2]) is rotated by
// pos * theta^(-2i/D), pos = position_offset + l.  x, y [B, L, H, D], D even.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

Tensor rope_forward(const Tensor& x, int64_t position_offset, double theta);
// The inverse rotation (the Jacobian of a rotation is its transpose).
Tensor rope_backward(const Tensor& dy, int64_t position_offset, double theta);

}  // namespace hsa::ops
