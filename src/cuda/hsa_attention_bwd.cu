// Generic chunk-attention backward (hsa_bwd_kernel): the f32 path, and the bf16 fallback for shapes the register
// kernel (hsa_attention_bwd_mma.cu) does not take. Products through shared memory (cuda/tile_mm.cuh).
#include "cuda/hsa_attention_kernels.cuh"

#include <cmath>

namespace hsa::cuda::hsa_attn {

namespace {

template <class T>
struct BwdArgs {
  const T *q, *k, *v, *dout;
  const int32_t *flat, *begin;
  const float *weights, *lse;
  T *dq_part, *dk, *dv;
  float* dweights;
  Dims d;
  unsigned o_k, o_v, o_dk, o_dv, o_q, o_do, o_sc, o_dp, o_dq, o_wp, o_ds, o_dot;
};

// Block = item (b, r, c): it owns dK, dV of its chunk (f32 in shared memory across all its tiles).
template <class T>
__global__ void __launch_bounds__(kThreads) hsa_bwd_kernel(BwdArgs<T> a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int64_t item = blockIdx.x;
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * d.D;
  const int S = int(d.S), D = int(d.D);
  if (e_begin == e_end) {  // no token chose this chunk
    for (int idx = threadIdx.x; idx < S * D; idx += kThreads) {
      a.dk[chunk_off + (idx / D) * d.H * D + idx % D] = from_f32<T>(0.0f);
      a.dv[chunk_off + (idx / D) * d.H * D + idx % D] = from_f32<T>(0.0f);
    }
    return;
  }
  T* Ks = reinterpret_cast<T*>(smem + a.o_k);
  T* Vs = reinterpret_cast<T*>(smem + a.o_v);
  float* dKs = reinterpret_cast<float*>(smem + a.o_dk);
  float* dVs = reinterpret_cast<float*>(smem + a.o_dv);
  T* Qs = reinterpret_cast<T*>(smem + a.o_q);
  T* dOs = reinterpret_cast<T*>(smem + a.o_do);
  float* Sc = reinterpret_cast<float*>(smem + a.o_sc);
  float* dP = reinterpret_cast<float*>(smem + a.o_dp);
  float* dQs = reinterpret_cast<float*>(smem + a.o_dq);  // aliases Sc and dP (dead by then)
  T* wPs = reinterpret_cast<T*>(smem + a.o_wp);
  T* dSs = reinterpret_cast<T*>(smem + a.o_ds);
  float* rowdot = reinterpret_cast<float*>(smem + a.o_dot);
  load_rows(a.k + chunk_off, d.H * D, Ks, d.ldd, S, D);
  load_rows(a.v + chunk_off, d.H * D, Vs, d.ldd, S, D);
  for (int idx = threadIdx.x; idx < S * d.lfd; idx += kThreads) dKs[idx] = dVs[idx] = 0.0f;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int e0 = e_begin; e0 < e_end; e0 += d.ept) {
    const int ne = min(d.ept, e_end - e0), m = ne * int(d.G);
    gather_tile(a.q, a.flat, e0, m, b, r, d, Qs);
    gather_tile(a.dout, a.flat, e0, m, b, r, d, dOs);
    __syncthreads();
    tile_mm_any<false, true>(Sc, d.lfs, Qs, d.ldd, Ks, d.ldd, d.rows, S, D, false);   // Q K^T
    tile_mm_any<false, true>(dP, d.lfs, dOs, d.ldd, Vs, d.ldd, d.rows, S, D, false);  // dout V^T
    __syncthreads();
    for (int row = warp; row < d.rows; row += kWarps) {
      T *wp = wPs + row * d.lds, *ds = dSs + row * d.lds;
      if (row >= m) {
        for (int j = lane; j < S; j += 32) wp[j] = ds[j] = from_f32<T>(0.0f);
        continue;
      }
      const int64_t f = a.flat[e0 + row / d.G], g = row % d.G, i = f % d.K, t = (f / (d.H * d.K)) % d.L;
      const float lse = a.lse[((b * d.L + t) * d.HQ + r * d.G + g) * d.K + i], w = a.weights[f];
      float p[2], dpv[2], dot = 0;
      for (int u = 0; u < 2; ++u) {
        const int j = lane + 32 * u;
        p[u] = j < S ? expf(Sc[row * d.lfs + j] * d.scale - lse) : 0.0f;
        dpv[u] = j < S ? dP[row * d.lfs + j] : 0.0f;
        dot += p[u] * dpv[u];
      }
      dot = warp_sum(dot);  // <dout, o_i> for this head
      for (int u = 0; u < 2; ++u) {
        const int j = lane + 32 * u;
        if (j >= S) continue;
        const float wpj = w * p[u];
        wp[j] = from_f32<T>(wpj);
        ds[j] = from_f32<T>(wpj * (dpv[u] - dot) * d.scale);  // gradient at the raw score q . k_j
      }
      if (lane == 0) rowdot[row] = dot;
    }
    __syncthreads();
    if (threadIdx.x < ne) {  // dweights: the entry's G heads, in head order
      float dw = 0;
      for (int g = 0; g < d.G; ++g) dw += rowdot[threadIdx.x * d.G + g];
      a.dweights[a.flat[e0 + threadIdx.x]] = dw;
    }
    tile_mm_any<false, false>(dQs, d.lfd, dSs, d.lds, Ks, d.ldd, d.rows, D, S, false);  // dQ = dS K
    tile_mm_any<true, false>(dVs, d.lfd, wPs, d.lds, dOs, d.ldd, S, D, d.rows, true);  // dV += (wP)^T dout
    tile_mm_any<true, false>(dKs, d.lfd, dSs, d.lds, Qs, d.ldd, S, D, d.rows, true);   // dK += dS^T Q
    __syncthreads();
    T* dst = a.dq_part + int64_t(e0) * d.G * D;
    for (int idx = threadIdx.x; idx < m * D; idx += kThreads) dst[idx] = from_f32<T>(dQs[(idx / D) * d.lfd + idx % D]);
    __syncthreads();
  }
  for (int idx = threadIdx.x; idx < S * D; idx += kThreads) {
    const int j = idx / D, x = idx % D;
    a.dk[chunk_off + j * d.H * D + x] = from_f32<T>(dKs[j * d.lfd + x]);
    a.dv[chunk_off + j * d.H * D + x] = from_f32<T>(dVs[j * d.lfd + x]);
  }
}

template <class T>
size_t bwd_layout(const Dims& d, BwdArgs<T>* a) {
  Carver cv;
  const size_t kv = size_t(d.S) * d.ldd * sizeof(T), acc = size_t(d.S) * d.lfd * 4,
               q = size_t(d.rows) * d.ldd * sizeof(T), sc = size_t(d.rows) * d.lfs * 4,
               p = size_t(d.rows) * d.lds * sizeof(T), dq = size_t(d.rows) * d.lfd * 4;
  unsigned o_k = cv.take(kv), o_v = cv.take(kv), o_dk = cv.take(acc), o_dv = cv.take(acc), o_q = cv.take(q),
           o_do = cv.take(q), o_wp = cv.take(p), o_ds = cv.take(p), o_dot = cv.take(size_t(d.rows) * 4);
  unsigned o_sc = cv.take(sc), o_dp = cv.take(sc), o_dq = o_sc;
  if (o_sc + dq > cv.used) cv.used = unsigned(o_sc + (dq + 127) / 128 * 128);
  if (a) {
    *a = BwdArgs<T>{};
    a->d = d;
    a->o_k = o_k, a->o_v = o_v, a->o_dk = o_dk, a->o_dv = o_dv, a->o_q = o_q, a->o_do = o_do, a->o_sc = o_sc;
    a->o_dp = o_dp, a->o_dq = o_dq, a->o_wp = o_wp, a->o_ds = o_ds, a->o_dot = o_dot;
  }
  return cv.used;
}

}  // namespace

template <class T> size_t bwd_smem_bytes(const Dims& d) { return bwd_layout<T>(d, nullptr); }

template <class T>
void backward_generic(const T* dout, const T* q, const T* mem_k, const T* mem_v, const float* weights,
                      const float* lse, const Dims& d, const Routing& rt, T* dq_part, T* dmem_k, T* dmem_v,
                      float* dweights) {
  BwdArgs<T> a;
  const size_t smem = bwd_layout<T>(d, &a);
  a.q = q, a.k = mem_k, a.v = mem_v, a.dout = dout, a.flat = rt.flat, a.begin = rt.begin, a.weights = weights;
  a.lse = lse, a.dq_part = dq_part, a.dk = dmem_k, a.dv = dmem_v, a.dweights = dweights;
  HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_bwd_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  hsa_bwd_kernel<T><<<unsigned(rt.items), kThreads, smem, stream()>>>(a);
  check_launch("hsa_bwd_kernel");
}

template size_t bwd_smem_bytes<float>(const Dims&);
template size_t bwd_smem_bytes<__nv_bfloat16>(const Dims&);
template void backward_generic<float>(const float*, const float*, const float*, const float*, const float*,
                                      const float*, const Dims&, const Routing&, float*, float*, float*, float*);
template void backward_generic<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                              const __nv_bfloat16*, const float*, const float*, const Dims&,
                                              const Routing&, __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*,
                                              float*);

}  // namespace hsa::cuda::hsa_attn
