// CUDA sliding-window attention with GQA (see swa_attention.h for shapes and semantics): entry points, the delta
// kernel both backward paths start with, and the choice between the bf16 register kernels and the WMMA kernels
// (code paths and their design: swa_attention_kernels.cuh).
#include "cuda/swa_attention.h"

#include "cuda/swa_attention_kernels.cuh"

#include <hsa/dtype.h>
#include <hsa/error.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace hsa::cuda {

namespace {

using namespace swa_attn;

// delta[row] = sum_c dout[row, c] * out[row, c], one warp per (b, i, h) row.
template <class T, int D>
__global__ void __launch_bounds__(kThreads) swa_delta_kernel(const T* __restrict__ dout, const T* __restrict__ out,
                                                             float* __restrict__ delta, long long rows) {
  const long long row = (long long)blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  float s = 0.0f;
  for (int c = lane; c < D; c += 32) s += to_f32(dout[row * D + c]) * to_f32(out[row * D + c]);
  s = warp_sum(s);
  if (lane == 0) delta[row] = s;
}

Dims device_dims(const SwaDims& s) {
  HSA_CHECK(s.q_len < (1LL << 31) && s.k_len < (1LL << 31) && s.batch < 65536 && s.q_heads < 65536,
            "swa_attention (cuda): dimensions too large (B = {}, Lq = {}, Lk = {}, HQ = {})", s.batch, s.q_len,
            s.k_len, s.q_heads);
  // A window longer than 2^40 positions is unbounded in practice; clamping keeps the tile-range sums in range.
  return {int(s.batch), int(s.q_len), int(s.k_len), int(s.q_heads), int(s.kv_heads),
          (long long)std::min<int64_t>(s.window, int64_t(1) << 40), (long long)(s.q_start - s.k_start)};
}

template <class T, int D>
void forward_impl(const T* q, const T* k, const T* v, T* out, float* lse, const Dims& d, double scale) {
  if constexpr (std::is_same_v<T, bf16_t>)
    if (forward_mma_fits<D>(d)) return forward_mma<D>(q, k, v, out, lse, d, scale);
  forward_wmma<T, D>(q, k, v, out, lse, d, scale);
}

template <class T, int D>
void backward_impl(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, float* delta,
                   T* dq, T* dk, T* dv, const Dims& d, double scale) {
  const long long rows = (long long)d.batch * d.q_len * d.q_heads;
  swa_delta_kernel<T, D><<<unsigned((rows + kWarps - 1) / kWarps), kThreads, 0, stream()>>>(dout, out, delta, rows);
  check_launch("swa_backward (delta)");
  if constexpr (std::is_same_v<T, bf16_t>)
    if (backward_mma_fits<D>(d)) return backward_mma<D>(dout, q, k, v, lse, delta, dq, dk, dv, d, scale);
  backward_wmma<T, D>(dout, q, k, v, lse, delta, dq, dk, dv, d, scale);
}

}  // namespace

template <class T>
void swa_forward(const T* q, const T* k, const T* v, T* out, float* lse, const SwaDims& s, double scale) {
  if (s.batch == 0 || s.q_len == 0 || s.q_heads == 0) return;
  const Dims d = device_dims(s);
  switch (s.head_dim) {
    case 32: return forward_impl<device_t<T>, 32>(dev(q), dev(k), dev(v), dev(out), lse, d, scale);
    case 64: return forward_impl<device_t<T>, 64>(dev(q), dev(k), dev(v), dev(out), lse, d, scale);
    case 128: return forward_impl<device_t<T>, 128>(dev(q), dev(k), dev(v), dev(out), lse, d, scale);
    default: fail("swa_forward: no cuda kernel for head dim {} (32, 64 or 128)", s.head_dim);
  }
}

template <class T>
void swa_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, float* delta,
                  T* dq, T* dk, T* dv, const SwaDims& s, double scale) {
  if (s.batch == 0 || s.q_heads == 0) return;
  if (s.q_len == 0) {  // nothing sees the keys
    const size_t bytes = size_t(s.batch * s.k_len * s.kv_heads * s.head_dim) * sizeof(T);
    if (bytes) {
      cudaMemsetAsync(dk, 0, bytes, stream());
      cudaMemsetAsync(dv, 0, bytes, stream());
      check_launch("swa_backward (zero dk, dv)");
    }
    return;
  }
  const Dims d = device_dims(s);
#define HSA_SWA_BACKWARD(D)                                                                                   \
  backward_impl<device_t<T>, D>(dev(dout), dev(q), dev(k), dev(v), dev(out), lse, delta, dev(dq), dev(dk), dev(dv), d, \
                             scale)
  switch (s.head_dim) {
    case 32: return HSA_SWA_BACKWARD(32);
    case 64: return HSA_SWA_BACKWARD(64);
    case 128: return HSA_SWA_BACKWARD(128);
    default: fail("swa_backward: no cuda kernel for head dim {} (32, 64 or 128)", s.head_dim);
  }
#undef HSA_SWA_BACKWARD
}

template void swa_forward<float>(const float*, const float*, const float*, float*, float*, const SwaDims&,
                                 double);
template void swa_forward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, float*, const SwaDims&, double);
template void swa_backward<float>(const float*, const float*, const float*, const float*, const float*, const float*,
                                  float*, float*, float*, float*, const SwaDims&, double);
template void swa_backward<bf16>(const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, const float*,
                                 float*, bf16*, bf16*, bf16*, const SwaDims&, double);

}  // namespace hsa::cuda

