// Retrieval forward for a few query rows against many chunks (cuda/retrieval.h: RetrievalKernel::split): decode
// (one token per sequence against the whole memory) and short prefill steps. The scalar and mma kernels put a
// block on a tile of 128 query rows, so one token would scan every landmark in one block (at 1M tokens, 16K
// landmarks one after the other). Here the chunks are split instead:
//   1. retrieval_split_kernel: block = (b, h, 128 consecutive chunks), all L <= 16 rows of (b, h); thread j scores
//      chunk j of the block against every row (f32 on the CUDA cores, in the scalar kernel's order of operations),
//      then one warp per row keeps the block's best K in K rounds of a warp-wide selection.
//   2. retrieval_merge_kernel: one warp per output row; each lane keeps the best K of its share of the blocks'
//      lists, then K rounds over the 32 lane lists give the row's best K, in order; slots and weights as everywhere.
// Selection by the strict order of retrieval_select.cuh, so the result is the same whatever the split.
#include "cuda/retrieval_select.cuh"

#include <algorithm>
#include <cmath>

namespace hsa::cuda::detail {

namespace {

constexpr int kSplitThreads = 128, kSplitChunks = kSplitThreads;  // one chunk per thread
constexpr int kSplitWarps = kSplitThreads / 32, kLaneChunks = kSplitChunks / 32;
constexpr int kMaxRows = int(kRetrievalSplitMaxRows);
constexpr int kMergeWarps = 4;

__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

// The best of the lanes' candidates (s, c) by the selection order; c < 0 is no candidate. A butterfly over a strict
// order: every lane ends with the same winner (c = -1 when no lane had one).
__device__ __forceinline__ void warp_best(float& s, int32_t& c) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float os = __shfl_xor_sync(0xffffffffu, s, o);
    const int32_t oc = __shfl_xor_sync(0xffffffffu, c, o);
    if (oc >= 0 && (c < 0 || retrieval_before(os, oc, s, c))) s = os, c = oc;
  }
}

// 16 bytes of a landmark row as f32, in registers (load_pack's memcpy of a bf16 array goes through the stack).
__device__ __forceinline__ void load16(const float* p, float (&v)[4]) {
  const float4 raw = *reinterpret_cast<const float4*>(p);
  v[0] = raw.x, v[1] = raw.y, v[2] = raw.z, v[3] = raw.w;
}
__device__ __forceinline__ void load16(const __nv_bfloat16* p, float (&v)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {  // bf16 is the high half of an f32: exact
    v[2 * k] = __uint_as_float(w[k] << 16);
    v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
  }
}

// Partial lists part_s, part_c [B, L, H, splits, K]: block split's best K of row (b, t, h), in order, -1 after the
// last. Grid: B * H * splits blocks, split fastest.
template <class T>
__global__ void __launch_bounds__(kSplitThreads)
    retrieval_split_kernel(const T* __restrict__ qr, const T* __restrict__ lm, float* __restrict__ part_s,
                           int32_t* __restrict__ part_c, RetrievalDims d, float scale, int64_t splits,
                           bool packed) {
  extern __shared__ __align__(16) float sm[];
  const int L = int(d.seq_len), dr = int(d.dim), K = int(d.topk);
  float* qs = sm;                                            // [L][dr] queries in f32
  float* sc = qs + L * dr;                                   // [L][kSplitChunks] scores, NaN: not a candidate
  int* nvs = reinterpret_cast<int*>(sc + L * kSplitChunks);  // [L] visible chunks of each row
  const int64_t bh = blockIdx.x / splits, split = blockIdx.x % splits, b = bh / d.heads, h = bh % d.heads;
  const int64_t stride = d.heads * d.dim;  // between the rows of one head, in qr and in landmarks
  const T* q_base = qr + (b * d.seq_len * d.heads + h) * d.dim;
  const T* l_base = lm + (b * d.chunks * d.heads + h) * d.dim;
  for (int i = threadIdx.x; i < L * dr; i += kSplitThreads) qs[i] = to_f32(q_base[(i / dr) * stride + i % dr]);
  for (int t = threadIdx.x; t < L; t += kSplitThreads) nvs[t] = int(hsa::visible_chunks(d.q_start + t, d));
  __syncthreads();

  const int64_t c_first = split * kSplitChunks, c = c_first + threadIdx.x;
  float acc[kMaxRows] = {};
  if (c < nvs[L - 1]) {  // the last row sees the most
    const T* row = l_base + c * stride;
    if (packed) {
      constexpr int V = kPack<T>;
#pragma unroll 2
      for (int x = 0; x < dr; x += V) {
        float v[V];
        load16(row + x, v);
#pragma unroll
        for (int k = 0; k < V; ++k)
#pragma unroll
          for (int t = 0; t < kMaxRows; ++t)
            if (t < L) acc[t] = fmaf(qs[t * dr + x + k], v[k], acc[t]);
      }
    } else {
      for (int x = 0; x < dr; ++x) {
        const float v = to_f32(row[x]);
#pragma unroll
        for (int t = 0; t < kMaxRows; ++t)
          if (t < L) acc[t] = fmaf(qs[t * dr + x], v, acc[t]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kMaxRows; ++t)
    if (t < L) sc[t * kSplitChunks + threadIdx.x] = c < nvs[t] ? acc[t] * scale : quiet_nan();
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t = warp; t < L; t += kSplitWarps) {
    float s[kLaneChunks];  // chunk c_first + lane + 32 i
#pragma unroll
    for (int i = 0; i < kLaneChunks; ++i) s[i] = sc[t * kSplitChunks + lane + 32 * i];
    const int64_t list = (((b * d.seq_len + t) * d.heads + h) * splits + split) * K;
    float last_s = 0;
    int32_t last_c = -1;  // the previous round's winner (-1: none yet)
    int r = 0;
    for (; r < K; ++r) {
      float bs = 0;
      int32_t bc = -1;
#pragma unroll
      for (int i = 0; i < kLaneChunks; ++i) {
        const auto ci = int32_t(c_first + lane + 32 * i);
        if (s[i] == s[i] && (last_c < 0 || retrieval_before(last_s, last_c, s[i], ci)) &&
            (bc < 0 || retrieval_before(s[i], ci, bs, bc)))
          bs = s[i], bc = ci;
      }
      warp_best(bs, bc);
      if (bc < 0) break;
      if (lane == 0) part_s[list + r] = bs, part_c[list + r] = bc;
      last_s = bs, last_c = bc;
    }
    if (lane == 0)
      for (; r < K; ++r) part_c[list + r] = -1;
  }
}

// One warp per output row (b, t, h) = row of [B, L, H]: lane l keeps the best K of the candidates l, l + 32, ... of
// the row's splits * K (any order: insertion by the selection order) in its list (shared memory, entries 32 apart);
// then K rounds: each lane offers its list's head, the warp takes the best, its lane moves on.
__global__ void __launch_bounds__(kMergeWarps * 32)
    retrieval_merge_kernel(const float* __restrict__ part_s, const int32_t* __restrict__ part_c,
                           int32_t* __restrict__ indices, float* __restrict__ weights, float* __restrict__ scores,
                           RetrievalDims d, int64_t splits) {
  extern __shared__ __align__(16) float msm[];
  const int K = int(d.topk), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kMergeWarps + warp;
  if (row >= d.batch * d.seq_len * d.heads) return;  // the whole warp; no block barrier follows
  float* ls = msm + warp * K * 32 + lane;                                              // [K][32] of this warp
  int32_t* lc = reinterpret_cast<int32_t*>(msm + kMergeWarps * K * 32) + warp * K * 32 + lane;
  const int64_t n_cand = splits * K;
  const float* ps = part_s + row * n_cand;
  const int32_t* pc = part_c + row * n_cand;
  int cnt = 0;
#pragma unroll 8  // independent loads in flight (L2 latency): 1024 candidates per row at 1M tokens
  for (int64_t j = lane; j < n_cand; j += 32) {
    const int32_t c = pc[j];
    const float s = ps[j];
    if (c < 0 || (cnt == K && !retrieval_before(s, c, ls[(K - 1) * 32], lc[(K - 1) * 32]))) continue;
    int i = cnt < K ? cnt++ : K - 1;
    for (; i > 0 && retrieval_before(s, c, ls[(i - 1) * 32], lc[(i - 1) * 32]); --i) {
      ls[i * 32] = ls[(i - 1) * 32];
      lc[i * 32] = lc[(i - 1) * 32];
    }
    ls[i * 32] = s;
    lc[i * 32] = c;
  }

  const int64_t out = row * d.topk;
  int32_t* oc = indices + out;
  float *os = scores + out, *ow = weights + out;
  int head = 0, n = 0;
  for (; n < K; ++n) {
    float bs = head < cnt ? ls[head * 32] : 0.0f;
    int32_t bc = head < cnt ? lc[head * 32] : -1;
    warp_best(bs, bc);
    if (bc < 0) break;
    if (head < cnt && lc[head * 32] == bc) ++head;  // chunk ids are distinct: one lane held the winner
    if (lane == 0) oc[n] = bc, os[n] = bs;
  }
  if (lane == 0) retrieval_finish_row(oc, os, ow, n, d.topk, d.stick_breaking);
}

}  // namespace

size_t retrieval_split_smem(const RetrievalDims& d) {
  const size_t split = size_t(d.seq_len) * size_t(d.dim + kSplitChunks + 1) * 4;
  const size_t merge = size_t(kMergeWarps) * 32 * size_t(d.topk) * 8;
  return std::max(split, merge);
}

template <class T>
void retrieval_split_forward(const T* qr, const T* lm, int32_t* indices, float* weights, float* scores,
                             const RetrievalDims& d, float scale) {
  const int64_t rows = d.batch * d.seq_len * d.heads;
  if (rows == 0) return;
  const int64_t n_max = hsa::visible_chunks(d.q_start + d.seq_len - 1, d);
  const int64_t splits = ceil_div(n_max, kSplitChunks), n_cand = rows * splits * d.topk;
  DeviceBuffer<std::byte> part(int64_t(size_t(std::max<int64_t>(n_cand, 1)) * 8));
  float* part_s = part.as<float>();
  int32_t* part_c = reinterpret_cast<int32_t*>(part_s + n_cand);
  if (splits > 0) {
    const size_t smem = size_t(d.seq_len) * size_t(d.dim + kSplitChunks + 1) * 4;
    HSA_CUDA_CHECK(
        cudaFuncSetAttribute(retrieval_split_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const bool packed = d.dim % kPack<T> == 0 && packs_aligned<kPack<T>>(lm);
    retrieval_split_kernel<T><<<unsigned(d.batch * d.heads * splits), kSplitThreads, smem, stream()>>>(
        qr, lm, part_s, part_c, d, scale, splits, packed);
    check_launch("retrieval_split_kernel");
  }
  retrieval_merge_partials(part_s, part_c, splits, indices, weights, scores, d);
}

void retrieval_merge_partials(const float* part_s, const int32_t* part_c, int64_t splits, int32_t* indices,
                              float* weights, float* scores, const RetrievalDims& d) {
  const int64_t rows = d.batch * d.seq_len * d.heads;
  if (rows == 0) return;
  const size_t smem = size_t(kMergeWarps) * 32 * size_t(d.topk) * 8;
  HSA_CUDA_CHECK(
      cudaFuncSetAttribute(retrieval_merge_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  retrieval_merge_kernel<<<unsigned(ceil_div(rows, kMergeWarps)), kMergeWarps * 32, smem, stream()>>>(
      part_s, part_c, indices, weights, scores, d, splits);
  check_launch("retrieval_merge_kernel");
}

template void retrieval_split_forward<float>(const float*, const float*, int32_t*, float*, float*,
                                             const RetrievalDims&, float);
template void retrieval_split_forward<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, int32_t*, float*,
                                                     float*, const RetrievalDims&, float);

}  // namespace hsa::cuda::detail
