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

// Shared-memory row pitch of a K/V row of T: one 4-byte bank past a multiple of 128 bytes, so the threads that
// score different keys of the same column hit different banks.
template <class T> __host__ __device__ constexpr int64_t kv_pitch(int64_t D) { return D + 4 / int64_t(sizeof(T)); }

// Block = (row (b, t, r), slot i). Stages the chunk's K and V rows of head r in shared memory with coalesced
// loads, scores the G query heads against its S keys, and writes the slot's weighted output [G, D] (f32) to
// part[row, i] and its lse; an empty slot writes zeros (and lse -inf), a bad index is recorded.
// Shared memory: K, V [S, pitch] T; q [G, D] f32; probabilities [G, S] f32.
template <class T>
__global__ void __launch_bounds__(kThreads) hsa_decode_slot_kernel(const T* __restrict q, const T* __restrict k,
                                                                   const T* __restrict v,
                                                                   const int32_t* __restrict indices,
                                                                   const float* __restrict weights, DecodeDims d,
                                                                   float* __restrict part, float* __restrict lse,
                                                                   long long* error_record, int error_code) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int G = int(d.G), D = int(d.D), S = int(d.S), P = int(kv_pitch<T>(d.D));
  T* ks = reinterpret_cast<T*>(smem);
  T* vs = ks + S * P;
  float* qs = reinterpret_cast<float*>(smem + ((2 * S * P * sizeof(T) + 15) / 16) * 16);
  float* ps = qs + G * D;
  const int64_t row = blockIdx.x, i = blockIdx.y, r = row % d.H, bt = row / d.H, b = bt / d.L;
  const int64_t flat = row * d.K + i;
  float* out = part + flat * G * D;
  float* lse_slot = lse + (bt * d.HQ + r * G) * d.K + i;  // lse [B, L, HQ, K]: head r*G+g at + g*K
  const int32_t c = indices[flat];
  if (c < 0 || c >= d.C) {  // an empty slot, or a bad index skipped as one (c is block-uniform)
    if (c != -1) {
      // Report the lowest bad flat position of the call, as the CPU check does: this slot, unless an earlier
      // position is bad too (its block reports). Scans at most 16 tokens' slots, and only on the error path.
      bool earlier = false;
      for (int64_t x = threadIdx.x; x < flat; x += kThreads) earlier |= indices[x] < -1 || indices[x] >= d.C;
      if (!__syncthreads_or(earlier) && threadIdx.x == 0) report_input_error(error_record, error_code, flat, c, d.C);
    }
    for (int x = threadIdx.x; x < G * D; x += kThreads) out[x] = 0.0f;
    for (int g = threadIdx.x; g < G; g += kThreads) lse_slot[int64_t(g) * d.K] = -INFINITY;
    return;
  }
  const T* qrow = q + (bt * d.HQ + r * G) * D;  // the G heads of group r are contiguous
  for (int x = threadIdx.x; x < G * D; x += kThreads) qs[x] = to_f32(qrow[x]);
  const int64_t chunk = ((b * d.C + c) * S * d.H + r) * D;  // K/V [B, C, S, H, D]: row j at + j*H*D
  for (int x = threadIdx.x; x < S * D; x += kThreads) {
    const int j = x / D, col = x % D;
    ks[j * P + col] = k[chunk + int64_t(j) * d.H * D + col];
    vs[j * P + col] = v[chunk + int64_t(j) * d.H * D + col];
  }
  __syncthreads();
  for (int gj = threadIdx.x; gj < G * S; gj += kThreads) {
    const int g = gj / S, j = gj % S;
    const float* qg = qs + g * D;
    const T* kr = ks + j * P;
    float s = 0;
    for (int x = 0; x < D; ++x) s += qg[x] * to_f32(kr[x]);
    ps[gj] = s * d.scale;
  }
  __syncthreads();
  const float w = weights[flat];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
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
    for (int j = 0; j < S; ++j) o += p[j] * to_f32(vs[j * P + x]);
    out[gx] = o;
  }
}

// out[row] = sum of the row's K slot outputs, in slot order (deterministic).
template <class T>
__global__ void hsa_decode_sum_kernel(const float* __restrict part, int64_t K, int64_t GD, T* __restrict out) {
  const int64_t row = blockIdx.x;
  for (int64_t x = threadIdx.x; x < GD; x += blockDim.x) {
    float acc = 0;
    for (int64_t i = 0; i < K; ++i) acc += part[(row * K + i) * GD + x];
    out[row * GD + x] = from_f32<T>(acc);
  }
}

template <class T>
void decode_impl(const T* q, const T* k, const T* v, const int32_t* indices, const float* weights, double scale,
                 const HsaDims& hd, T* out, float* lse, int error_code) {
  const int64_t rows = hd.batch * hd.len * hd.kv_heads;
  if (rows == 0) return;
  const DecodeDims d{hd.len, hd.q_heads, hd.kv_heads, hd.group(), hd.head_dim, hd.chunk_size, hd.topk, hd.chunks,
                     float(scale)};
  const size_t kv_bytes = (size_t(2 * d.S * kv_pitch<T>(d.D)) * sizeof(T) + 15) / 16 * 16;
  const size_t smem = kv_bytes + size_t(d.G * d.D + d.G * d.S) * sizeof(float);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_decode_slot_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      int(smem)));
  DeviceBuffer<std::byte> part(int64_t(size_t(rows * d.K * d.G * d.D) * sizeof(float)));
  hsa_decode_slot_kernel<T><<<dim3(unsigned(rows), unsigned(d.K)), kThreads, smem, stream()>>>(
      q, k, v, indices, weights, d, part.as<float>(), lse, input_error_record(), error_code);
  check_launch("hsa_decode_slot_kernel");
  hsa_decode_sum_kernel<T><<<unsigned(rows), 256, 0, stream()>>>(part.as<float>(), d.K, d.G * d.D, out);
  check_launch("hsa_decode_sum_kernel");
}

}  // namespace

void hsa_decode_forward(DType dtype, const void* q, const void* mem_k, const void* mem_v, const int32_t* indices,
                        const float* weights, double scale, const HsaDims& d, void* out, float* lse) {
  using B16 = __nv_bfloat16;
  static const int code = index_error_code("hsa_attention_forward", "indices");  // the op that dispatches here
  if (dtype == DType::bf16)
    return decode_impl(static_cast<const B16*>(q), static_cast<const B16*>(mem_k), static_cast<const B16*>(mem_v),
                       indices, weights, scale, d, static_cast<B16*>(out), lse, code);
  decode_impl(static_cast<const float*>(q), static_cast<const float*>(mem_k), static_cast<const float*>(mem_v),
              indices, weights, scale, d, static_cast<float*>(out), lse, code);
}

}  // namespace hsa::cuda
