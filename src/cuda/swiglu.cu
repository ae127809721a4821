#include "cuda/swiglu.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

// silu(g) * u.
struct SwigluOp {
  __device__ float operator()(float g, float u) const { return u * (g * (1.f / (1.f + expf(-g)))); }
};

// d silu(g)/dg = sig * (1 + g * (1 - sig)).
template <class T>
__global__ void swiglu_backward_kernel(const T* dout, const T* gate, const T* up, T* dgate, T* dup, int64_t n,
                                       bool packed) {
  for_each_pack<kPack<T>>(n, packed, [=](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    float d[W], g[W], u[W];
    load_pack<W>(dout + i, d);
    load_pack<W>(gate + i, g);
    load_pack<W>(up + i, u);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      float sig = 1.f / (1.f + expf(-g[k]));
      float du = d[k] * g[k] * sig;
      g[k] = d[k] * u[k] * sig * (1.f + g[k] * (1.f - sig));
      u[k] = du;
    }
    store_pack<W>(dup + i, u);
    store_pack<W>(dgate + i, g);
  });
}

}  // namespace

template <class T> void swiglu_forward(const T* gate, const T* up, T* out, int64_t n) {
  zip_packs(dev(gate), dev(up), dev(out), n, SwigluOp{}, "swiglu_forward (zip_packs_kernel)");
}

template <class T> void swiglu_backward(const T* dout, const T* gate, const T* up, T* dgate, T* dup, int64_t n) {
  if (n == 0) return;
  const bool packed = packs_aligned<kPack<T>>(dout, gate, up, dgate, dup);
  swiglu_backward_kernel<<<grid_for_packs(n, kPack<T>, 256), 256, 0, stream()>>>(dev(dout), dev(gate), dev(up),
                                                                                dev(dgate), dev(dup), n, packed);
  check_launch("swiglu_backward_kernel");
}

template void swiglu_forward<float>(const float*, const float*, float*, int64_t);
template void swiglu_forward<bf16>(const bf16*, const bf16*, bf16*, int64_t);
template void swiglu_backward<float>(const float*, const float*, const float*, float*, float*, int64_t);
template void swiglu_backward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, bf16*, int64_t);

}  // namespace hsa::cuda
