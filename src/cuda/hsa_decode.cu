#include "cuda/hsa_decode.h"

#include "cuda/hsa_support.cuh"

#include <cmath>

namespace hsa::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 128, kWarps = kThreads / 32;

struct DecodeDims {
  int64_t L, HQ, H, G, D, S, K, C;
  float scale;
};

// Block = (b, t, r). Shared memory: q [G, D] f32, probabilities [G, S] f32, output accumulator [G, D] f32.
// Memory-bound: per slot it reads the chunk's K and V rows of head r once (2 * S * D elements) for all G heads.
template <class T>
__global__ void __launch_bounds__(kThreads) hsa_decode_kernel(const T* __restrict q, const T* __restrict k,
                                                              const T* __restrict v,
                                                              const int32_t* __restrict indices,
                                                              const float* __restrict weights, DecodeDims d,
                                                              T* __restrict out, float* __restrict lse,
                                                              long long* error_record, int error_code) {
  extern __shared__ float smem[];
  const int G = int(d.G), D = int(d.D), S = int(d.S);
  float* qs = smem;             // [G, D]
  float* ps = qs + G * D;       // [G, S]
  float* acc = ps + G * S;      // [G, D]
  const int64_t row = blockIdx.x, r = row % d.H, bt = row / d.H, b = bt / d.L;  // row = (b*L + t)*H + r
  const T* qrow = q + (bt * d.HQ + r * G) * D;  // the G heads of group r are contiguous
  for (int x = threadIdx.x; x < G * D; x += kThreads) {
    qs[x] = to_f32(qrow[x]);
    acc[x] = 0.0f;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  bool seen_bad = false;
  for (int64_t i = 0; i < d.K; ++i) {
    const int64_t flat = row * d.K + i;
    const int32_t c = indices[flat];  // the same for every thread: the branches below are block-uniform
    float* lse_slot = lse + bt * d.HQ * d.K + r * G * d.K + i;  // lse [B, L, HQ, K]: head r*G+g at + g*K
    if (c < 0 || c >= d.C) {  // an empty slot, or a bad index skipped as one
      if (c != -1 && !seen_bad) {
        // Report the lowest bad flat position of the call, as the CPU check does: this block's first bad slot,
        // unless an earlier row holds one too (then that row's block reports). Only on the error path.
        seen_bad = true;
        bool earlier = false;
        for (int64_t x = threadIdx.x; x < row * d.K; x += kThreads) earlier |= indices[x] < -1 || indices[x] >= d.C;
        if (!__syncthreads_or(earlier) && threadIdx.x == 0) report_input_error(error_record, error_code, flat, c, d.C);
      }
      for (int g = threadIdx.x; g < G; g += kThreads) lse_slot[int64_t(g) * d.K] = -INFINITY;
      continue;
    }
    // K/V rows of chunk c, head r: [B, C, S, H, D].
    const T* kc = k + ((b * d.C + c) * S * d.H + r) * D;
    const T* vc = v + ((b * d.C + c) * S * d.H + r) * D;
    __syncthreads();  // the previous slot's ps is consumed
    for (int gj = threadIdx.x; gj < G * S; gj += kThreads) {
      const int g = gj / S, j = gj % S;
      const T* kr = kc + int64_t(j) * d.H * D;
      const float* qg = qs + g * D;
      float s = 0;
      for (int x = 0; x < D; ++x) s += qg[x] * to_f32(kr[x]);
      ps[gj] = s * d.scale;
    }
    __syncthreads();
    const float w = weights[flat];
    for (int g = warp; g < G; g += kWarps) {  // softmax over the S keys, the weight folded in (as the forward)
      float* p = ps + g * S;
      float mx = -INFINITY;
      for (int j = lane; j < S; j += 32) mx = fmaxf(mx, p[j]);
      mx = warp_max(mx);
      float sum = 0;
      for (int j = lane; j < S; j += 32) sum += expf(p[j] - mx);
      sum = warp_sum(sum);
      const float factor = w / sum;
      for (int j = lane; j < S; j += 32) p[j] = expf(p[j] - mx) * factor;
      if (lane == 0) lse_slot[int64_t(g) * d.K] = mx + logf(sum);
    }
    __syncthreads();
    for (int gx = threadIdx.x; gx < G * D; gx += kThreads) {
      const int g = gx / D, x = gx % D;
      const float* p = ps + g * S;
      float o = 0;
      for (int j = 0; j < S; ++j) o += p[j] * to_f32(vc[int64_t(j) * d.H * D + x]);
      acc[gx] += o;
    }
  }
  __syncthreads();
  T* orow = out + (bt * d.HQ + r * G) * D;
  for (int x = threadIdx.x; x < G * D; x += kThreads) orow[x] = from_f32<T>(acc[x]);
}

template <class T>
void decode_impl(const T* q, const T* k, const T* v, const int32_t* indices, const float* weights, double scale,
                 const cpu::HsaDims& hd, T* out, float* lse, int error_code) {
  const int64_t rows = hd.batch * hd.len * hd.kv_heads;
  if (rows == 0) return;
  const DecodeDims d{hd.len, hd.q_heads, hd.kv_heads, hd.group(), hd.head_dim, hd.chunk_size, hd.topk, hd.chunks,
                     float(scale)};
  const size_t smem = size_t(2 * d.G * d.D + d.G * d.S) * sizeof(float);
  check_cuda(cudaFuncSetAttribute(hsa_decode_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "cudaFuncSetAttribute");
  hsa_decode_kernel<T><<<unsigned(rows), kThreads, smem, stream()>>>(q, k, v, indices, weights, d, out, lse,
                                                                      input_error_record(), error_code);
  check_cuda(cudaGetLastError(), "hsa_decode_kernel");
}

}  // namespace

void hsa_decode_forward(DType dtype, const void* q, const void* mem_k, const void* mem_v, const int32_t* indices,
                        const float* weights, double scale, const cpu::HsaDims& d, void* out, float* lse) {
  using B16 = __nv_bfloat16;
  static const int code = index_error_code("hsa_attention_forward", "indices");  // the op that dispatches here
  if (dtype == DType::bf16)
    return decode_impl(static_cast<const B16*>(q), static_cast<const B16*>(mem_k), static_cast<const B16*>(mem_v),
                       indices, weights, scale, d, static_cast<B16*>(out), lse, code);
  decode_impl(static_cast<const float*>(q), static_cast<const float*>(mem_k), static_cast<const float*>(mem_v),
              indices, weights, scale, d, static_cast<float*>(out), lse, code);
}

}  // namespace hsa::cuda
