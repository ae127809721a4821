// Rotary position embedding on the GPU, rotate-half convention (see ops/rope.h). T = float | hsa::bf16.
// x, y [B, L, H, D], D even. Angles (position_offset + l) * theta^(-2i/D) and their cos/sin are computed in
// double once per (l, i), as on the CPU; sign = +1 rotates forward, -1 backward.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T>
void rope_rotate(const T* x, T* y, int64_t batch, int64_t seq_len, int64_t heads, int64_t head_dim,
                 int64_t position_offset, double theta, int sign);

}  // namespace hsa::cuda
