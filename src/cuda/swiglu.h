// SwiGLU on the GPU: out = silu(gate) * up, elementwise over n values. T = float | hsa::bf16.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T> void swiglu_forward(const T* gate, const T* up, T* out, int64_t n);
template <class T> void swiglu_backward(const T* dout, const T* gate, const T* up, T* dgate, T* dup, int64_t n);

}  // namespace hsa::cuda
