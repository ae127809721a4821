// WMMA sliding-window backward (swa_dq_kernel, swa_dkv_kernel, after the delta kernel): the f32 path and the bf16
// fallback; see swa_attention_kernels.cuh.
#include "cuda/swa_attention_kernels.cuh"

#include <cmath>

namespace hsa::cuda::swa_attn {

namespace {

template <class T, int D, int BQ, int BK>
struct BwdLayout {
  static constexpr int LDT = D + pad<T>(), LDS = BK + 4, LDP = BK + pad<T>(), LDO = D + 4;
  static constexpr size_t q = 0;
  static constexpr size_t dout = q + align128(sizeof(T) * BQ * LDT);
  static constexpr size_t k = dout + align128(sizeof(T) * BQ * LDT);
  static constexpr size_t v = k + align128(sizeof(T) * BK * LDT);
  static constexpr size_t s = v + align128(sizeof(T) * BK * LDT);
  static constexpr size_t dp = s + align128(sizeof(float) * BQ * LDS);
  static constexpr size_t p = dp + align128(sizeof(float) * BQ * LDS);
  static constexpr size_t ds = p + align128(sizeof(T) * BQ * LDP);
  static constexpr size_t lse = ds + align128(sizeof(T) * BQ * LDP);
  static constexpr size_t delta = lse + align128(sizeof(float) * BQ);
  static constexpr size_t acc = delta + align128(sizeof(float) * BQ);  // dq [BQ][LDO], or dk and dv [BK][LDO]
  static constexpr size_t dq_bytes = acc + align128(sizeof(float) * BQ * LDO);
  static constexpr size_t dkv_bytes = acc + 2 * align128(sizeof(float) * BK * LDO);
};

// Loads the query-side tiles of rows [i0, i0 + BQ) of head h: q, dout, lse (log2 domain), delta.
template <class T, int D, int BQ, int BK>
__device__ __forceinline__ void load_query_side(unsigned char* smem, const T* q, const T* dout, const float* lse,
                                                const float* delta, const Dims& d, int b, int h, long long i0) {
  using L = BwdLayout<T, D, BQ, BK>;
  const long long q_stride = (long long)d.q_heads * D, base = (long long)b * d.q_len * d.q_heads + h;
  load_tile<T, BQ, D>(reinterpret_cast<T*>(smem + L::q), L::LDT, q + base * D, q_stride, i0, d.q_len);
  load_tile<T, BQ, D>(reinterpret_cast<T*>(smem + L::dout), L::LDT, dout + base * D, q_stride, i0, d.q_len);
  float* ls = reinterpret_cast<float*>(smem + L::lse);
  float* dl = reinterpret_cast<float*>(smem + L::delta);
  for (int r = threadIdx.x; r < BQ; r += kThreads) {
    const long long i = i0 + r;
    const bool ok = i < d.q_len;
    ls[r] = ok ? lse[base + i * d.q_heads] * kLog2e : -INFINITY;
    dl[r] = ok ? delta[base + i * d.q_heads] : 0.0f;
  }
}

// With q, dout, k, v staged: S = q k^T and dP = dout v^T, then P = exp(S - lse) (0 where masked or where the row
// sees nothing, lse = -inf) and dS = P (dP - delta), both stored as T. Ends with a barrier.
template <class T, int D, int BQ, int BK>
__device__ __forceinline__ void probabilities(unsigned char* smem, const Dims& d, long long i0, long long j0,
                                              float scale_log2) {
  using L = BwdLayout<T, D, BQ, BK>;
  const T* qs = reinterpret_cast<const T*>(smem + L::q);
  const T* dos = reinterpret_cast<const T*>(smem + L::dout);
  const T* ks = reinterpret_cast<const T*>(smem + L::k);
  const T* vs = reinterpret_cast<const T*>(smem + L::v);
  float* ss = reinterpret_cast<float*>(smem + L::s);
  float* dps = reinterpret_cast<float*>(smem + L::dp);
  T* ps = reinterpret_cast<T*>(smem + L::p);
  T* dss = reinterpret_cast<T*>(smem + L::ds);
  const float* ls = reinterpret_cast<const float*>(smem + L::lse);
  const float* dl = reinterpret_cast<const float*>(smem + L::delta);
  tile_mm<BQ, BK, D, false, true, false>(ss, L::LDS, qs, L::LDT, ks, L::LDT);
  tile_mm<BQ, BK, D, false, true, false>(dps, L::LDS, dos, L::LDT, vs, L::LDT);
  __syncthreads();
  for (int idx = threadIdx.x; idx < BQ * BK; idx += kThreads) {
    const int r = idx / BK, c = idx % BK;
    const bool on = visible(d, i0 + r, j0 + c) && ls[r] != -INFINITY;
    const float p = on ? exp2f(ss[r * L::LDS + c] * scale_log2 - ls[r]) : 0.0f;
    ps[r * L::LDP + c] = from_f32<T>(p);
    dss[r * L::LDP + c] = from_f32<T>(p * (dps[r * L::LDS + c] - dl[r]));
  }
  __syncthreads();
}

// dq: grid (query tiles, HQ, B).
template <class T, int D, int BQ, int BK>
__global__ void __launch_bounds__(kThreads) swa_dq_kernel(const T* __restrict__ dout, const T* __restrict__ q,
                                                          const T* __restrict__ k, const T* __restrict__ v,
                                                          const float* __restrict__ lse,
                                                          const float* __restrict__ delta, T* __restrict__ dq, Dims d,
                                                          float scale, float scale_log2) {
  using L = BwdLayout<T, D, BQ, BK>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* ks = reinterpret_cast<T*>(smem + L::k);
  T* vs = reinterpret_cast<T*>(smem + L::v);
  const T* dss = reinterpret_cast<const T*>(smem + L::ds);
  float* dqs = reinterpret_cast<float*>(smem + L::acc);
  const int i0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
  const int kvh = h / (d.q_heads / d.kv_heads);
  const long long k_stride = (long long)d.kv_heads * D;
  const T* kg = k + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const T* vg = v + ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const int i1 = min(i0 + BQ, d.q_len);
  const long long lo = max(0LL, i0 + d.rel - (d.window - 1));
  const long long hi = min((long long)d.k_len, (i1 - 1) + d.rel + 1);

  load_query_side<T, D, BQ, BK>(smem, q, dout, lse, delta, d, b, h, i0);
  for (int idx = threadIdx.x; idx < BQ * L::LDO; idx += kThreads) dqs[idx] = 0.0f;
  for (long long j0 = lo; j0 < hi; j0 += BK) {
    __syncthreads();
    load_tile<T, BK, D>(ks, L::LDT, kg, k_stride, j0, d.k_len);
    load_tile<T, BK, D>(vs, L::LDT, vg, k_stride, j0, d.k_len);
    __syncthreads();
    probabilities<T, D, BQ, BK>(smem, d, i0, j0, scale_log2);
    tile_mm<BQ, D, BK, false, false, true>(dqs, L::LDO, dss, L::LDP, ks, L::LDT);  // dq += dS k
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < BQ * D; idx += kThreads) {
    const int r = idx / D, c = idx % D, i = i0 + r;
    if (i < d.q_len)
      dq[(((long long)b * d.q_len + i) * d.q_heads + h) * D + c] = from_f32<T>(dqs[r * L::LDO + c] * scale);
  }
}

// dk, dv: grid (key tiles, H, B). Loops over the query tiles that see the key tile and the G heads of the group.
template <class T, int D, int BQ, int BK>
__global__ void __launch_bounds__(kThreads) swa_dkv_kernel(const T* __restrict__ dout, const T* __restrict__ q,
                                                           const T* __restrict__ k, const T* __restrict__ v,
                                                           const float* __restrict__ lse,
                                                           const float* __restrict__ delta, T* __restrict__ dk,
                                                           T* __restrict__ dv, Dims d, float scale, float scale_log2) {
  using L = BwdLayout<T, D, BQ, BK>;
  extern __shared__ __align__(128) unsigned char smem[];
  const T* qs = reinterpret_cast<const T*>(smem + L::q);
  const T* dos = reinterpret_cast<const T*>(smem + L::dout);
  T* ks = reinterpret_cast<T*>(smem + L::k);
  T* vs = reinterpret_cast<T*>(smem + L::v);
  const T* ps = reinterpret_cast<const T*>(smem + L::p);
  const T* dss = reinterpret_cast<const T*>(smem + L::ds);
  float* dks = reinterpret_cast<float*>(smem + L::acc);
  float* dvs = reinterpret_cast<float*>(smem + L::acc + align128(sizeof(float) * BK * L::LDO));
  const int j0 = blockIdx.x * BK, kvh = blockIdx.y, b = blockIdx.z;
  const int group = d.q_heads / d.kv_heads;
  const long long k_stride = (long long)d.kv_heads * D, kbase = ((long long)b * d.k_len * d.kv_heads + kvh) * D;
  const int j1 = min(j0 + BK, d.k_len);
  // Query row i sees key j iff j - rel <= i <= j - rel + window - 1.
  const long long ilo = max(0LL, j0 - d.rel);
  const long long ihi = min((long long)d.q_len, (j1 - 1) - d.rel + d.window);  // exclusive

  load_tile<T, BK, D>(ks, L::LDT, k + kbase, k_stride, j0, d.k_len);
  load_tile<T, BK, D>(vs, L::LDT, v + kbase, k_stride, j0, d.k_len);
  for (int idx = threadIdx.x; idx < BK * L::LDO; idx += kThreads) {
    dks[idx] = 0.0f;
    dvs[idx] = 0.0f;
  }
  for (long long i0 = ilo; i0 < ihi; i0 += BQ)
    for (int hh = 0; hh < group; ++hh) {
      __syncthreads();  // the previous step's readers of the query-side tiles are done
      load_query_side<T, D, BQ, BK>(smem, q, dout, lse, delta, d, b, kvh * group + hh, i0);
      __syncthreads();
      probabilities<T, D, BQ, BK>(smem, d, i0, j0, scale_log2);
      tile_mm<BK, D, BQ, true, false, true>(dvs, L::LDO, ps, L::LDP, dos, L::LDT);  // dv += P^T dout
      tile_mm<BK, D, BQ, true, false, true>(dks, L::LDO, dss, L::LDP, qs, L::LDT);  // dk += dS^T q
    }
  __syncthreads();
  for (int idx = threadIdx.x; idx < BK * D; idx += kThreads) {
    const int r = idx / D, c = idx % D, j = j0 + r;
    if (j >= d.k_len) continue;
    const long long off = kbase + (long long)j * k_stride + c;
    dk[off] = from_f32<T>(dks[r * L::LDO + c] * scale);
    dv[off] = from_f32<T>(dvs[r * L::LDO + c]);
  }
}

}  // namespace

template <class T, int D>
void backward_wmma(const T* dout, const T* q, const T* k, const T* v, const float* lse, const float* delta, T* dq,
                   T* dk, T* dv, const Dims& d, double scale) {
  constexpr int BQ = Tiles<T>::bwd_q, BK = Tiles<T>::bwd_k;
  using L = BwdLayout<T, D, BQ, BK>;
  const float s = float(scale), sl = float(scale * 1.4426950408889634);
  auto dq_kernel = swa_dq_kernel<T, D, BQ, BK>;
  allow_smem(dq_kernel, L::dq_bytes);
  dq_kernel<<<dim3((d.q_len + BQ - 1) / BQ, d.q_heads, d.batch), kThreads, L::dq_bytes, stream()>>>(
      dout, q, k, v, lse, delta, dq, d, s, sl);
  check_launch("swa_backward (dq)");
  if (d.k_len == 0) return;
  auto dkv_kernel = swa_dkv_kernel<T, D, BQ, BK>;
  allow_smem(dkv_kernel, L::dkv_bytes);
  dkv_kernel<<<dim3((d.k_len + BK - 1) / BK, d.kv_heads, d.batch), kThreads, L::dkv_bytes, stream()>>>(
      dout, q, k, v, lse, delta, dk, dv, d, s, sl);
  check_launch("swa_backward (dk, dv)");
}

template void backward_wmma<float, 32>(const float*, const float*, const float*, const float*, const float*,
                                         const float*, float*, float*, float*, const Dims&, double);
template void backward_wmma<float, 64>(const float*, const float*, const float*, const float*, const float*,
                                         const float*, float*, float*, float*, const Dims&, double);
template void backward_wmma<float, 128>(const float*, const float*, const float*, const float*, const float*,
                                         const float*, float*, float*, float*, const Dims&, double);
template void backward_wmma<bf16_t, 32>(const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, const float*,
                                         const float*, bf16_t*, bf16_t*, bf16_t*, const Dims&, double);
template void backward_wmma<bf16_t, 64>(const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, const float*,
                                         const float*, bf16_t*, bf16_t*, bf16_t*, const Dims&, double);
template void backward_wmma<bf16_t, 128>(const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, const float*,
                                         const float*, bf16_t*, bf16_t*, bf16_t*, const Dims&, double);

}  // namespace hsa::cuda::swa_attn
