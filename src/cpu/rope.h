// CPU RoPE kernel: rotates x [B, L, H, D] in place-free fashion into y; direction -1 applies the inverse.
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T>
void rope_rotate(const T* x, T* y, int64_t B, int64_t L, int64_t H, int64_t D, int64_t position_offset, double theta,
                 int direction);

}  // namespace hsa::cpu
