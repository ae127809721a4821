// Rotary position embedding (RoPE), "rotate-half" convention, applied to q and k in SWA (docs/architecture.md §2.3).
// x, y, dy, dx [B, L, H, D], D even. For i < D/2 the pair (x[i], x[i + D/2]) of sequence index l is rotated by
//   angle = (position_offset + l) * theta^(-2i/D).
// position_offset places a chunk of a longer sequence (decoding, chunked prefill): angles are computed in
// double, so positions up to tens of millions stay accurate.
#pragma once
#include <hsa/tensor.h>

#include <cstdint>

namespace hsa::ops {

Tensor rope_forward(const Tensor& x, int64_t position_offset, double theta);

// dx = rotation of dy by the negative angle (a rotation's transpose is its inverse); needs nothing saved.
Tensor rope_backward(const Tensor& dy, int64_t position_offset, double theta);

}  // namespace hsa::ops
