// WMMA sliding-window forward (swa_forward_kernel): the f32 path and the bf16 fallback; see
// swa_attention_kernels.cuh.
#include "cuda/swa_attention_kernels.cuh"

#include <cmath>

namespace hsa::cuda::swa_attn {

namespace {

template <class T, int D, int BQ, int BK>
struct FwdLayout {
  static constexpr int LDT = D + pad<T>(), LDS = BK + 4, LDP = BK + pad<T>(), LDO = D + 4;
  static constexpr size_t q = 0;
  static constexpr size_t k = q + align128(sizeof(T) * BQ * LDT);
  static constexpr size_t v = k + align128(sizeof(T) * BK * LDT);
  static constexpr size_t s = v + align128(sizeof(T) * BK * LDT);
  static constexpr size_t p = s + align128(sizeof(float) * BQ * LDS);
  static constexpr size_t o = p + align128(sizeof(T) * BQ * LDP);
  static constexpr size_t bytes = o + align128(sizeof(float) * BQ * LDO);
};

// Grid (query tiles, HQ, B).
template <class T, int D, int BQ, int BK>
__global__ void __launch_bounds__(kThreads) swa_forward_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                               const T* __restrict__ v, T* __restrict__ out,
                                                               float* __restrict__ lse, Dims d, float scale_log2) {
  using L = FwdLayout<T, D, BQ, BK>;
  constexpr int ROWS = BQ / kWarps, COLS = BK / 32;
  extern __shared__ __align__(128) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem + L::q);
  T* ks = reinterpret_cast<T*>(smem + L::k);
  T* vs = reinterpret_cast<T*>(smem + L::v);
  float* ss = reinterpret_cast<float*>(smem + L::s);
  T* ps = reinterpret_cast<T*>(smem + L::p);
  float* os = reinterpret_cast<float*>(smem + L::o);

  const int i0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
  const int kvh = h / (d.q_heads / d.kv_heads), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long q_stride = (long long)d.q_heads * D, k_stride = (long long)d.kv_heads * D;
  const T* qg = q + ((long long)b * d.q_len * d.q_heads + h) * D;
  const T* kg = k + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const T* vg = v + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  // Keys [lo, hi) that any row of the tile may see.
  const int i1 = min(i0 + BQ, d.q_len);
  const long long lo = max(0LL, i0 + d.rel - (d.window - 1));
  const long long hi = min((long long)d.k_len, (i1 - 1) + d.rel + 1);

  load_tile<T, BQ, D>(qs, L::LDT, qg, q_stride, i0, d.q_len);
  for (int idx = threadIdx.x; idx < BQ * L::LDO; idx += kThreads) os[idx] = 0.0f;
  float m[ROWS], l[ROWS];  // running max (log2 domain) and sum of the rows this warp owns: r = warp + kWarps * t
#pragma unroll
  for (int t = 0; t < ROWS; ++t) {
    m[t] = -INFINITY;
    l[t] = 0.0f;
  }

  for (long long j0 = lo; j0 < hi; j0 += BK) {
    __syncthreads();  // the previous tile's readers of ks, vs, ps are done
    load_tile<T, BK, D>(ks, L::LDT, kg, k_stride, j0, d.k_len);
    load_tile<T, BK, D>(vs, L::LDT, vg, k_stride, j0, d.k_len);
    __syncthreads();
    tile_mm<BQ, BK, D, false, true, false>(ss, L::LDS, qs, L::LDT, ks, L::LDT);
    __syncthreads();
#pragma unroll
    for (int t = 0; t < ROWS; ++t) {
      const int r = warp + kWarps * t;
      float x[COLS], mx = -INFINITY;
#pragma unroll
      for (int u = 0; u < COLS; ++u) {
        const int c = lane + 32 * u;
        x[u] = visible(d, i0 + r, j0 + c) ? ss[r * L::LDS + c] * scale_log2 : -INFINITY;
        mx = fmaxf(mx, x[u]);
      }
      const float m_new = fmaxf(m[t], warp_max(mx));
      float corr = 1.0f, sum = 0.0f;
      if (m_new != -INFINITY) {  // otherwise nothing visible yet: p = 0, keep the state
        corr = exp2f(m[t] - m_new);  // 0 when m was -inf
#pragma unroll
        for (int u = 0; u < COLS; ++u) {
          x[u] = exp2f(x[u] - m_new);
          sum += x[u];
        }
      } else {
#pragma unroll
        for (int u = 0; u < COLS; ++u) x[u] = 0.0f;
      }
      l[t] = l[t] * corr + warp_sum(sum);
      m[t] = m_new;
#pragma unroll
      for (int u = 0; u < COLS; ++u) ps[r * L::LDP + lane + 32 * u] = from_f32<T>(x[u]);
      if (corr != 1.0f)
        for (int c = lane; c < D; c += 32) os[r * L::LDO + c] *= corr;
    }
    __syncthreads();
    tile_mm<BQ, D, BK, false, false, true>(os, L::LDO, ps, L::LDP, vs, L::LDT);
  }
  __syncthreads();
#pragma unroll
  for (int t = 0; t < ROWS; ++t) {
    const int r = warp + kWarps * t, i = i0 + r;
    if (i >= d.q_len) continue;
    const long long row = ((long long)b * d.q_len + i) * d.q_heads + h;
    const float inv = l[t] > 0.0f ? 1.0f / l[t] : 0.0f;
    for (int c = lane; c < D; c += 32) out[row * D + c] = from_f32<T>(os[r * L::LDO + c] * inv);
    if (lane == 0) lse[row] = l[t] > 0.0f ? (m[t] + log2f(l[t])) * kLn2 : -INFINITY;
  }
}

}  // namespace

template <class T, int D>
void forward_wmma(const T* q, const T* k, const T* v, T* out, float* lse, const Dims& d, double scale) {
  constexpr int BQ = Tiles<T>::fwd_q, BK = Tiles<T>::fwd_k;
  using L = FwdLayout<T, D, BQ, BK>;
  auto kernel = swa_forward_kernel<T, D, BQ, BK>;
  allow_smem(kernel, L::bytes);
  dim3 grid((d.q_len + BQ - 1) / BQ, d.q_heads, d.batch);
  kernel<<<grid, kThreads, L::bytes, stream()>>>(q, k, v, out, lse, d, float(scale * 1.4426950408889634));
  check_launch("swa_forward");
}

template void forward_wmma<float, 32>(const float*, const float*, const float*, float*, float*,
                                      const Dims&, double);
template void forward_wmma<float, 64>(const float*, const float*, const float*, float*, float*,
                                      const Dims&, double);
template void forward_wmma<float, 128>(const float*, const float*, const float*, float*, float*,
                                       const Dims&, double);
template void forward_wmma<bf16_t, 32>(const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, float*,
                                       const Dims&, double);
template void forward_wmma<bf16_t, 64>(const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, float*,
                                       const Dims&, double);
template void forward_wmma<bf16_t, 128>(const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, float*,
                                        const Dims&, double);

}  // namespace hsa::cuda::swa_attn
