// CPU rotary position embedding, "rotate-half" layout. x, y [B, L, H, D], D even, contiguous.
// For i < D/2 the pair (x[i], x[i + D/2]) at sequence index l is rotated by the angle
//   a = (position_offset + l) * theta^(-2i/D),
// y[i] = x[i] cos a - x[i + D/2] sin a;  y[i + D/2] = x[i] sin a + x[i + D/2] cos a.
#pragma once
#include <cstdint>

namespace hsa::cpu {

// sign = +1 rotates by +a (forward); sign = -1 by -a (the backward pass: the transpose of a rotation is its
// inverse). Angles are formed and reduced in double, so positions in the millions keep their accuracy even
// when T is float.
template <class T>
void rope_rotate(const T* x, T* y, int64_t batch, int64_t seq_len, int64_t heads, int64_t head_dim,
                 int64_t position_offset, double theta, int sign);

}  // namespace hsa::cpu
