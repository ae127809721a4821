#include "cuda/block_attention.h"

#include "cuda/kernel_util.cuh"

#include <fmt/format.h>

namespace hsa::cuda {

// One thread block per (block n, head h). The block's keys and values sit in shared memory as f32 rows padded to
// D + 1 values, so lanes that each take one key (one row) read distinct banks. Warps take query rows in turn. Blocks
// are a chunk plus its [CLS] row (~65 rows): simple loops, no tensor cores, and no atomics anywhere, so results are
// deterministic.
namespace {

constexpr int kWarps = 4, kThreads = 32 * kWarps;
// Shared memory a thread block may use (opt-in above 48 KiB): below the per-block limit of every GPU from sm_80 on.
constexpr size_t kMaxSharedBytes = 160 * 1024;

size_t forward_shared_floats(const BlockAttentionDims& d) {
  return size_t(2 * d.block_len * (d.head_dim + 1) + kWarps * (d.head_dim + d.block_len));
}
// Keys and values, the block's probabilities P and dS (T x T each), and per warp a query row and its dout row.
size_t backward_shared_floats(const BlockAttentionDims& d) {
  return size_t(2 * d.block_len * (d.head_dim + 1) + 2 * d.block_len * d.block_len + kWarps * 2 * d.head_dim);
}

// Offset of row t of block n, head h, in a [N, T, H, D] tensor.
__device__ __forceinline__ int64_t row_offset(const BlockAttentionDims& d, int64_t n, int64_t t, int64_t h) {
  return ((n * d.block_len + t) * d.heads + h) * d.head_dim;
}

// All T rows of head h of block n into dst [T, D + 1] as f32.
template <class T>
__device__ void load_block(const T* x, float* dst, const BlockAttentionDims& d, int64_t n, int64_t h) {
  const int64_t dim = d.head_dim, ld = dim + 1;
  for (int64_t e = threadIdx.x; e < d.block_len * dim; e += blockDim.x) {
    const int64_t t = e / dim, c = e % dim;
    dst[t * ld + c] = to_f32(x[row_offset(d, n, t, h) + c]);
  }
}

// One row of a [*, D] tensor into a warp's f32 buffer.
template <class T> __device__ void load_row(const T* x, float* dst, int64_t dim, int lane) {
  for (int64_t c = lane; c < dim; c += 32) dst[c] = to_f32(x[c]);
}

__device__ __forceinline__ float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    block_attention_forward_kernel(const T* q, const T* k, const T* v, T* out, float* lse, BlockAttentionDims d,
                                   float scale) {
  extern __shared__ float smem[];
  const int64_t len = d.block_len, dim = d.head_dim, ld = dim + 1;
  const int64_t n = blockIdx.x / d.heads, h = blockIdx.x % d.heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* ks = smem;
  float* vs = ks + len * ld;
  float* qs = vs + len * ld + warp * (dim + len);  // this warp's query row [D] and probabilities [T]
  float* ps = qs + dim;
  load_block(k, ks, d, n, h);
  load_block(v, vs, d, n, h);
  __syncthreads();
  for (int64_t i = warp; i < len; i += kWarps) {
    const int64_t row = row_offset(d, n, i, h);
    load_row(q + row, qs, dim, lane);
    __syncwarp();
    float mx = -INFINITY;
    for (int64_t j = lane; j < len; j += 32) {
      const float s = scale * dot(qs, ks + j * ld, dim);
      ps[j] = s;
      mx = fmaxf(mx, s);
    }
    mx = warp_max(mx);
    float sum = 0.f;
    for (int64_t j = lane; j < len; j += 32) {
      const float e = expf(ps[j] - mx);
      ps[j] = e;
      sum += e;
    }
    sum = warp_sum(sum);
    __syncwarp();
    const float inv = 1.f / sum;
    for (int64_t c = lane; c < dim; c += 32) {
      float acc = 0.f;
      for (int64_t j = 0; j < len; ++j) acc += ps[j] * vs[j * ld + c];
      out[row + c] = from_f32<T>(acc * inv);
    }
    if (lane == 0) lse[(n * len + i) * d.heads + h] = mx + logf(sum);
    __syncwarp();  // the next row overwrites qs and ps
  }
}

// Pass 1, one warp per query row i: P[i, j] = exp(scale q_i.k_j - lse_i), dS[i, j] = P (dout_i.v_j - dout_i.out_i),
// dq_i = scale sum_j dS[i, j] k_j. Pass 2, one warp per key row j: dv_j = sum_i P[i, j] dout_i,
// dk_j = scale sum_i dS[i, j] q_i (query and dout rows read from global memory, where they stay cached).
template <class T>
__global__ void __launch_bounds__(kThreads)
    block_attention_backward_kernel(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse,
                                    T* dq, T* dk, T* dv, BlockAttentionDims d, float scale) {
  extern __shared__ float smem[];
  const int64_t len = d.block_len, dim = d.head_dim, ld = dim + 1;
  const int64_t n = blockIdx.x / d.heads, h = blockIdx.x % d.heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* ks = smem;
  float* vs = ks + len * ld;
  float* p = vs + len * ld;  // [T, T]
  float* ds = p + len * len;  // [T, T]
  float* qs = ds + len * len + warp * 2 * dim;  // this warp's query row and dout row
  float* dos = qs + dim;
  load_block(k, ks, d, n, h);
  load_block(v, vs, d, n, h);
  __syncthreads();
  for (int64_t i = warp; i < len; i += kWarps) {
    const int64_t row = row_offset(d, n, i, h);
    load_row(q + row, qs, dim, lane);
    load_row(dout + row, dos, dim, lane);
    float delta = 0.f;
    for (int64_t c = lane; c < dim; c += 32) delta += to_f32(dout[row + c]) * to_f32(out[row + c]);
    delta = warp_sum(delta);
    __syncwarp();
    const float l = lse[(n * len + i) * d.heads + h];
    for (int64_t j = lane; j < len; j += 32) {
      const float pij = expf(scale * dot(qs, ks + j * ld, dim) - l);
      p[i * len + j] = pij;
      ds[i * len + j] = pij * (dot(dos, vs + j * ld, dim) - delta);
    }
    __syncwarp();
    for (int64_t c = lane; c < dim; c += 32) {
      float acc = 0.f;
      for (int64_t j = 0; j < len; ++j) acc += ds[i * len + j] * ks[j * ld + c];
      dq[row + c] = from_f32<T>(scale * acc);
    }
    __syncwarp();  // the next row overwrites qs and dos
  }
  __syncthreads();
  for (int64_t j = warp; j < len; j += kWarps) {
    const int64_t row_j = row_offset(d, n, j, h);
    for (int64_t c = lane; c < dim; c += 32) {
      float acc_v = 0.f, acc_k = 0.f;
      for (int64_t i = 0; i < len; ++i) {
        const int64_t row_i = row_offset(d, n, i, h);
        acc_v += p[i * len + j] * to_f32(dout[row_i + c]);
        acc_k += ds[i * len + j] * to_f32(q[row_i + c]);
      }
      dv[row_j + c] = from_f32<T>(acc_v);
      dk[row_j + c] = from_f32<T>(scale * acc_k);
    }
  }
}

unsigned grid_of(const BlockAttentionDims& d) {
  const int64_t blocks = d.blocks * d.heads;
  HSA_CHECK(blocks <= 0x7fffffff, "block_attention: {} blocks x {} heads exceed the CUDA grid", d.blocks, d.heads);
  return unsigned(blocks);
}

}  // namespace

bool block_attention_supported(const BlockAttentionDims& d) {
  return d.block_len >= 1 && d.head_dim >= 1 && sizeof(float) * backward_shared_floats(d) <= kMaxSharedBytes;
}

std::string block_attention_limits() {
  return fmt::format("the backward keeps 2 T (D + 1) + 2 T^2 + {} D f32 values of a block in at most {} KiB of shared "
                     "memory",
                     2 * kWarps, kMaxSharedBytes / 1024);
}

template <class T>
void block_attention_forward(const T* q, const T* k, const T* v, T* out, float* lse, const BlockAttentionDims& d,
                             double scale) {
  if (d.blocks * d.heads == 0 || d.head_dim == 0) return;
  HSA_CHECK(block_attention_supported(d), "block_attention_forward: T = {}, D = {} not supported ({})", d.block_len,
            d.head_dim, block_attention_limits());
  auto kernel = block_attention_forward_kernel<device_t<T>>;
  const size_t smem = sizeof(float) * forward_shared_floats(d);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<grid_of(d), kThreads, smem, stream()>>>(dev(q), dev(k), dev(v), dev(out), lse, d, float(scale));
  check_launch("block_attention_forward_kernel");
}

template <class T>
void block_attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse, T* dq,
                              T* dk, T* dv, const BlockAttentionDims& d, double scale) {
  if (d.blocks * d.heads == 0 || d.head_dim == 0) return;
  HSA_CHECK(block_attention_supported(d), "block_attention_backward: T = {}, D = {} not supported ({})", d.block_len,
            d.head_dim, block_attention_limits());
  auto kernel = block_attention_backward_kernel<device_t<T>>;
  const size_t smem = sizeof(float) * backward_shared_floats(d);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<grid_of(d), kThreads, smem, stream()>>>(dev(dout), dev(q), dev(k), dev(v), dev(out), lse, dev(dq), dev(dk),
                                                    dev(dv), d, float(scale));
  check_launch("block_attention_backward_kernel");
}

template void block_attention_forward<float>(const float*, const float*, const float*, float*, float*,
                                             const BlockAttentionDims&, double);
template void block_attention_forward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, float*,
                                            const BlockAttentionDims&, double);
template void block_attention_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                              const float*, float*, float*, float*, const BlockAttentionDims&,
                                              double);
template void block_attention_backward<bf16>(const bf16*, const bf16*, const bf16*, const bf16*, const bf16*,
                                             const float*, bf16*, bf16*, bf16*, const BlockAttentionDims&, double);

}  // namespace hsa::cuda
