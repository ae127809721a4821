// CPU SwiGLU kernels over n contiguous elements: out = silu(gate) * up.
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T> void swiglu_forward(const T* gate, const T* up, T* out, int64_t n);
template <class T> void swiglu_backward(const T* dout, const T* gate, const T* up, T* dgate, T* dup, int64_t n);

}  // namespace hsa::cpu
