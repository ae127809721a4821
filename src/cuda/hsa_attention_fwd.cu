// Generic chunk-attention forward (hsa_fwd_kernel): the f32 path, and the bf16 fallback for shapes the register
// kernel (hsa_attention_fwd_mma.cu) does not take. Products through shared memory (cuda/tile_mm.cuh).
#include "cuda/hsa_attention_kernels.cuh"

#include <algorithm>
#include <cmath>

namespace hsa::cuda::hsa_attn {

namespace {

template <class T>
struct FwdArgs {
  const T *q, *k, *v;
  const int32_t *flat, *begin;
  const int32_t* block_item;  // the split plan: unit = entries, per_block = ept * tiles_per_block
  const float* weights;
  T* part;  // [entries, G, D]
  float* lse;
  Dims d;
  int tiles_per_block;
  unsigned o_k, o_v, o_p, o_q, o_sc, o_o;  // byte offsets into the dynamic shared memory
};

// Block = (item = (b, r, c), split), from the split plan: tiles [split * tiles_per_block, ...) of the item's
// entries; splitting keeps a popular chunk (chunk 0 is visible to every token) from serialising the tail.
template <class T>
__global__ void __launch_bounds__(kThreads) hsa_fwd_kernel(FwdArgs<T> a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int64_t item = a.block_item[blockIdx.x];
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int tiles = (e_end - e_begin + d.ept - 1) / d.ept;
  const int64_t split =
      int64_t(blockIdx.x) - plan_first_block(e_begin, item, 1, int64_t(d.ept) * a.tiles_per_block);
  if (split * a.tiles_per_block >= tiles) return;  // past the item's last split
  const int tile0 = int(split) * a.tiles_per_block, tile1 = min(tiles, tile0 + a.tiles_per_block);
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  T* Ks = reinterpret_cast<T*>(smem + a.o_k);
  T* Vs = reinterpret_cast<T*>(smem + a.o_v);
  T* Ps = reinterpret_cast<T*>(smem + a.o_p);
  T* Qs = reinterpret_cast<T*>(smem + a.o_q);
  float* Sc = reinterpret_cast<float*>(smem + a.o_sc);
  float* Os = reinterpret_cast<float*>(smem + a.o_o);  // aliases Qs and Sc (dead by then)
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * d.D;
  load_rows(a.k + chunk_off, d.H * d.D, Ks, d.ldd, int(d.S), int(d.D));
  load_rows(a.v + chunk_off, d.H * d.D, Vs, d.ldd, int(d.S), int(d.D));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int tile = tile0; tile < tile1; ++tile) {
    const int e0 = e_begin + tile * d.ept, m = min(d.ept, e_end - e0) * int(d.G);
    gather_tile(a.q, a.flat, e0, m, b, r, d, Qs);
    __syncthreads();
    tile_mm_any<false, true>(Sc, d.lfs, Qs, d.ldd, Ks, d.ldd, d.rows, int(d.S), int(d.D), false);  // Q K^T
    __syncthreads();
    for (int row = warp; row < d.rows; row += kWarps) {
      T* prow = Ps + row * d.lds;
      if (row >= m) {
        for (int j = lane; j < d.S; j += 32) prow[j] = from_f32<T>(0.0f);
        continue;
      }
      const int64_t f = a.flat[e0 + row / d.G], g = row % d.G, i = f % d.K, t = (f / (d.H * d.K)) % d.L;
      float s[2], mx = -INFINITY;
      for (int u = 0; u < 2; ++u) {
        const int j = lane + 32 * u;
        s[u] = j < d.S ? Sc[row * d.lfs + j] * d.scale : -INFINITY;
        mx = fmaxf(mx, s[u]);
      }
      mx = warp_max(mx);
      float sum = 0;
      for (int u = 0; u < 2; ++u) {
        s[u] = lane + 32 * u < d.S ? expf(s[u] - mx) : 0.0f;
        sum += s[u];
      }
      sum = warp_sum(sum);
      // The retrieval weight folds into the normalisation: P V is then w_i * o_i.
      const float factor = a.weights[f] / sum;
      for (int u = 0; u < 2; ++u)
        if (lane + 32 * u < d.S) prow[lane + 32 * u] = from_f32<T>(s[u] * factor);
      if (lane == 0) a.lse[((b * d.L + t) * d.HQ + r * d.G + g) * d.K + i] = mx + logf(sum);
    }
    __syncthreads();
    tile_mm_any<false, false>(Os, d.lfd, Ps, d.lds, Vs, d.ldd, d.rows, int(d.D), int(d.S), false);  // (w P) V
    __syncthreads();
    // Row `row` of the tile is entry e0 + row / G, head row % G: scratch row e0 * G + row.
    T* dst = a.part + int64_t(e0) * d.G * d.D;
    for (int idx = threadIdx.x; idx < m * d.D; idx += kThreads)
      dst[idx] = from_f32<T>(Os[(idx / d.D) * d.lfd + idx % d.D]);
    __syncthreads();
  }
}

template <class T>
size_t fwd_layout(const Dims& d, FwdArgs<T>* a) {
  Carver cv;
  const size_t kv = size_t(d.S) * d.ldd * sizeof(T), q = size_t(d.rows) * d.ldd * sizeof(T),
               sc = size_t(d.rows) * d.lfs * 4, o = size_t(d.rows) * d.lfd * 4;
  unsigned o_k = cv.take(kv), o_v = cv.take(kv), o_p = cv.take(size_t(d.rows) * d.lds * sizeof(T));
  unsigned o_q = cv.take(q), o_sc = cv.take(sc);
  unsigned o_o = o_q;
  if (o_q + o > cv.used) cv.used = unsigned(o_q + (o + 127) / 128 * 128);
  if (a) {
    *a = FwdArgs<T>{};
    a->d = d;
    a->o_k = o_k, a->o_v = o_v, a->o_p = o_p, a->o_q = o_q, a->o_sc = o_sc, a->o_o = o_o;
  }
  return cv.used;
}

}  // namespace

template <class T> size_t fwd_smem_bytes(const Dims& d) { return fwd_layout<T>(d, nullptr); }

template <class T>
void forward_generic(const T* q, const T* mem_k, const T* mem_v, const float* weights, const Dims& d,
                     const Routing& rt, T* part, float* lse) {
  FwdArgs<T> a;
  const size_t smem = fwd_layout<T>(d, &a);
  a.tiles_per_block = std::max(1, 512 / d.rows);
  const SplitPlan plan = plan_splits(rt, 1, int64_t(d.ept) * a.tiles_per_block);
  a.q = q, a.k = mem_k, a.v = mem_v, a.flat = rt.flat, a.begin = rt.begin, a.block_item = plan.block_item;
  a.weights = weights, a.part = part, a.lse = lse;
  if (plan.blocks > 0) {
    HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_fwd_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    hsa_fwd_kernel<T><<<unsigned(plan.blocks), kThreads, smem, stream()>>>(a);
    check_launch("hsa_fwd_kernel");
  }
}

template size_t fwd_smem_bytes<float>(const Dims&);
template size_t fwd_smem_bytes<__nv_bfloat16>(const Dims&);
template void forward_generic<float>(const float*, const float*, const float*, const float*, const Dims&,
                                     const Routing&, float*, float*);
template void forward_generic<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                             const float*, const Dims&, const Routing&, __nv_bfloat16*, float*);

}  // namespace hsa::cuda::hsa_attn
