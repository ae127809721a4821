#include "cuda/swiglu.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

template <class T> __global__ void swiglu_forward_kernel(const T* gate, const T* up, T* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    float g = to_f32(gate[i]);
    float sig = 1.f / (1.f + expf(-g));
    out[i] = from_f32<T>(g * sig * to_f32(up[i]));
  }
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)).
template <class T>
__global__ void swiglu_backward_kernel(const T* dout, const T* gate, const T* up, T* dgate, T* dup, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    float g = to_f32(gate[i]), d = to_f32(dout[i]);
    float sig = 1.f / (1.f + expf(-g));
    dup[i] = from_f32<T>(d * g * sig);
    dgate[i] = from_f32<T>(d * to_f32(up[i]) * sig * (1.f + g * (1.f - sig)));
  }
}

}  // namespace

template <class T> void swiglu_forward(const T* gate, const T* up, T* out, int64_t n) {
  if (n == 0) return;
  swiglu_forward_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(gate), dev(up), dev(out), n);
  check_launch("swiglu_forward_kernel");
}

template <class T> void swiglu_backward(const T* dout, const T* gate, const T* up, T* dgate, T* dup, int64_t n) {
  if (n == 0) return;
  swiglu_backward_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(dout), dev(gate), dev(up), dev(dgate), dev(dup),
                                                                 n);
  check_launch("swiglu_backward_kernel");
}

template void swiglu_forward<float>(const float*, const float*, float*, int64_t);
template void swiglu_forward<bf16>(const bf16*, const bf16*, bf16*, int64_t);
template void swiglu_backward<float>(const float*, const float*, const float*, float*, float*, int64_t);
template void swiglu_backward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, bf16*, int64_t);

}  // namespace hsa::cuda
