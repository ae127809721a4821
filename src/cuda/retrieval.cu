#include "cuda/retrieval.h"

#include "cuda/hsa_support.cuh"
#include "cuda/retrieval_select.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace hsa::cuda {

namespace {

using namespace detail;

constexpr int kRows = 128;  // query rows per block, one thread each
constexpr int kTileC = 64;  // landmarks per shared-memory tile (scores of one tile live in registers)

struct Params {
  int64_t B, L, C, H, dr, K, S, W, q_start;
  bool stick_breaking;
  float scale;
  int dr4, ldq;  // dr rounded up to 4 (zero padded), shared row stride
  int64_t tiles;
  RetrievalDims dims;  // the same dims, for the visibility rule
};

__device__ __forceinline__ int64_t visible_chunks(int64_t pos, const Params& p) {
  return hsa::visible_chunks(pos, p.dims);
}

template <class T>
__global__ void __launch_bounds__(kRows) retrieval_fwd_kernel(const T* __restrict qr, const T* __restrict lm,
                                                              int32_t* __restrict indices, float* __restrict weights,
                                                              float* __restrict scores, Params p) {
  extern __shared__ __align__(16) float sm[];
  float* qs = sm;                            // [kRows, ldq]
  float* ls = qs + kRows * p.ldq;            // [kTileC, ldq]
  float* bs = ls + kTileC * p.ldq;           // [K, kRows]: best scores, best first
  int32_t* bc = reinterpret_cast<int32_t*>(bs + p.K * kRows);  // [K, kRows]: their chunks
  const int tid = threadIdx.x;
  // Later tiles see more chunks: they get the lower block ids and start first.
  const int64_t task = blockIdx.x, h = task % p.H, tile = p.tiles - 1 - (task / p.H) % p.tiles,
                b = task / (p.H * p.tiles);
  const int64_t t0 = tile * kRows, t = t0 + tid;
  for (int idx = tid; idx < kRows * p.dr4; idx += kRows) {
    const int64_t row = idx / p.dr4, x = idx % p.dr4;
    qs[row * p.ldq + x] = t0 + row < p.L && x < p.dr ? to_f32(qr[((b * p.L + t0 + row) * p.H + h) * p.dr + x]) : 0.0f;
  }
  const int64_t nv = t < p.L ? visible_chunks(p.q_start + t, p) : 0;
  const int64_t n_max = visible_chunks(p.q_start + min(p.L, t0 + kRows) - 1, p);
  int count = 0;
  float gate = -INFINITY;
  for (int64_t c0 = 0; c0 < n_max; c0 += kTileC) {
    __syncthreads();
    for (int idx = tid; idx < kTileC * p.dr4; idx += kRows) {
      const int64_t j = idx / p.dr4, x = idx % p.dr4;
      ls[j * p.ldq + x] = c0 + j < n_max && x < p.dr ? to_f32(lm[((b * p.C + c0 + j) * p.H + h) * p.dr + x]) : 0.0f;
    }
    __syncthreads();
    if (c0 >= nv) continue;
    float acc[kTileC];
#pragma unroll
    for (int j = 0; j < kTileC; ++j) acc[j] = 0;
    const float* qrow = qs + tid * p.ldq;
    for (int x = 0; x < p.dr4; x += 4) {
      const float4 q4 = *reinterpret_cast<const float4*>(qrow + x);
#pragma unroll
      for (int j = 0; j < kTileC; ++j) {
        const float4 l4 = *reinterpret_cast<const float4*>(ls + j * p.ldq + x);
        acc[j] = fmaf(q4.x, l4.x, acc[j]);
        acc[j] = fmaf(q4.y, l4.y, acc[j]);
        acc[j] = fmaf(q4.z, l4.z, acc[j]);
        acc[j] = fmaf(q4.w, l4.w, acc[j]);
      }
    }
    // Offer in ascending chunk order: ">=" lets a newcomer beat every kept chunk of equal score (the more recent
    // chunk wins ties); NaN fails every comparison and is never kept.
#pragma unroll
    for (int j = 0; j < kTileC; ++j) {
      const int64_t c = c0 + j;
      const float s = acc[j] * p.scale;
      if (c >= nv || !(s >= gate)) continue;
      int k = count < p.K ? count++ : int(p.K) - 1;
      for (; k > 0 && s >= bs[(k - 1) * kRows + tid]; --k) {
        bs[k * kRows + tid] = bs[(k - 1) * kRows + tid];
        bc[k * kRows + tid] = bc[(k - 1) * kRows + tid];
      }
      bs[k * kRows + tid] = s;
      bc[k * kRows + tid] = int32_t(c);
      if (count == p.K) gate = bs[(p.K - 1) * kRows + tid];
    }
  }
  if (t >= p.L) return;
  const int64_t out = ((b * p.L + t) * p.H + h) * p.K;
  int32_t* oc = indices + out;
  float *os = scores + out, *ow = weights + out;
  for (int i = 0; i < count; ++i) {
    oc[i] = bc[i * kRows + tid];
    os[i] = bs[i * kRows + tid];
  }
  retrieval_finish_row(oc, os, ow, count, p.K, p.stick_breaking);
}

__device__ __forceinline__ double sigmoid_d(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  const double e = exp(x);
  return e / (1.0 + e);
}

// One warp per query row: dsc (the gradient at the raw dot product, i.e. dscore * scale) of each filled slot, as
// the CPU computes it (in double), and dqr = sum_i dsc_i * landmarks[c_i] in slot order.
template <class T>
__global__ void retrieval_bwd_rows(const float* __restrict dweights, const T* __restrict lm,
                                   const int32_t* __restrict indices, const float* __restrict weights,
                                   const float* __restrict scores, float* __restrict dsc, T* __restrict dqr, Params p,
                                   double scale) {
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
  if (row >= p.B * p.L * p.H) return;
  const int32_t* idx = indices + row * p.K;
  const float *w = weights + row * p.K, *dw = dweights + row * p.K, *s = scores + row * p.K;
  float* g = dsc + row * p.K;
  // A slot counts when it holds a chunk in [0, C): -1 is empty, and a bad index is skipped the same way (the
  // routing reports it).
  auto chosen = [&](int64_t i) { return idx[i] >= 0 && idx[i] < p.C; };
  if (lane == 0) {
    if (p.stick_breaking) {
      double later = 0;
      for (int64_t i = p.K - 1; i >= 0; --i) {
        if (!chosen(i)) {
          g[i] = 0;
          continue;
        }
        const double sig = sigmoid_d(double(s[i])), wdw = double(w[i]) * double(dw[i]);
        g[i] = float(scale * (wdw * sigmoid_d(-double(s[i])) - sig * later));
        later += wdw;
      }
    } else {
      double dot = 0;
      for (int64_t i = 0; i < p.K; ++i)
        if (chosen(i)) dot += double(w[i]) * double(dw[i]);
      for (int64_t i = 0; i < p.K; ++i) g[i] = chosen(i) ? float(scale * double(w[i]) * (double(dw[i]) - dot)) : 0.0f;
    }
  }
  __syncwarp();
  const int64_t b = row / (p.L * p.H), h = row % p.H;
  for (int64_t x = lane; x < p.dr; x += 32) {
    float acc = 0;
    for (int64_t i = 0; i < p.K; ++i)
      if (chosen(i)) acc += g[i] * to_f32(lm[((b * p.C + idx[i]) * p.H + h) * p.dr + x]);
    dqr[row * p.dr + x] = from_f32<T>(acc);
  }
}

// dlandmarks[b, c, h] = sum over the entries of item (b, h, c) of dsc * qr[t] (entries in routing order, ascending
// (t, slot)). Block (item, split), numbered by the split plan (cuda/hsa_support.cuh), takes the item's entries [split * kLmEntries, ...), warp w the 32 of them from
// w * 32; lane j fetches entry j's row and dsc, and the warp walks the 32 with every lane on its own columns
// (x0 + lane + 32 k, k < 4: coalesced 128-column passes). The warps' sums are added in warp order; an item with
// one split writes dlandmarks directly, one with more writes f32 partials (slot e0 / kLmEntries + item + split,
// e0 = begin[item]: disjoint, as floor((e0 + n) / E) - floor(e0 / E) + 1 >= ceil(n / E)) that
// retrieval_bwd_landmarks_finish adds in split order. Fixed order everywhere: deterministic, no atomics.
constexpr int kLmWarps = 8, kLmEntries = kLmWarps * 32, kLmCols = 128;

template <class T>
__global__ void __launch_bounds__(kLmWarps * 32)
    retrieval_bwd_landmarks(const float* __restrict dsc, const T* __restrict qr, const int32_t* __restrict flat,
                            const int32_t* __restrict begin, const int32_t* __restrict block_item,
                            T* __restrict dlm, float* __restrict part, Params p) {
  __shared__ float sums[kLmWarps][kLmCols];
  const int64_t item = block_item[blockIdx.x];
  const int e0 = begin[item], n = begin[item + 1] - e0;
  const int split = int(int64_t(blockIdx.x) - plan_first_block(e0, item, 1, kLmEntries));
  const int nsplit = (n + kLmEntries - 1) / kLmEntries;
  if (split > 0 && split >= nsplit) return;  // split 0 always runs: it writes the zeros of an item nobody chose
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int lo = split * kLmEntries + warp * 32, count = max(0, min(n - lo, 32));
  int64_t row = 0;  // (b * L + t) * H + h of lane's entry
  float g = 0;
  if (lane < count) {
    const int64_t f = flat[e0 + lo + lane];
    row = f / p.K;
    g = dsc[f];
  }
  const int64_t c = item % p.C, h = (item / p.C) % p.H, b = item / (p.C * p.H);
  T* out = dlm + ((b * p.C + c) * p.H + h) * p.dr;
  float* out_part = part + (int64_t(e0 / kLmEntries) + item + split) * p.dr;
  for (int64_t x0 = 0; x0 < p.dr; x0 += kLmCols) {
    float acc[kLmCols / 32] = {};
#pragma unroll 4
    for (int j = 0; j < count; ++j) {
      const int64_t r = __shfl_sync(0xffffffffu, row, j);
      const float gj = __shfl_sync(0xffffffffu, g, j);
      const T* q = qr + r * p.dr + x0 + lane;
#pragma unroll
      for (int k = 0; k < kLmCols / 32; ++k)
        if (x0 + lane + 32 * k < p.dr) acc[k] += gj * to_f32(q[32 * k]);
    }
#pragma unroll
    for (int k = 0; k < kLmCols / 32; ++k) sums[warp][lane + 32 * k] = acc[k];
    __syncthreads();
    for (int col = threadIdx.x; col < kLmCols && x0 + col < p.dr; col += blockDim.x) {
      float total = 0;
      for (int w = 0; w < kLmWarps; ++w) total += sums[w][col];
      if (nsplit <= 1) out[x0 + col] = from_f32<T>(total);
      else out_part[x0 + col] = total;
    }
    __syncthreads();
  }
}

// Items with more than one split: dlandmarks = the sum of their splits' partials, in split order.
template <class T>
__global__ void retrieval_bwd_landmarks_finish(const int32_t* __restrict begin, const float* __restrict part,
                                               T* __restrict dlm, Params p) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.B * p.H * p.C * p.dr) return;
  const int64_t item = idx / p.dr, x = idx % p.dr;
  const int e0 = begin[item], nsplit = (begin[item + 1] - e0 + kLmEntries - 1) / kLmEntries;
  if (nsplit <= 1) return;
  const float* src = part + (int64_t(e0 / kLmEntries) + item) * p.dr + x;
  float total = 0;
  for (int s = 0; s < nsplit; ++s) total += src[int64_t(s) * p.dr];
  const int64_t c = item % p.C, h = (item / p.C) % p.H, b = item / (p.C * p.H);
  dlm[((b * p.C + c) * p.H + h) * p.dr + x] = from_f32<T>(total);
}

Params make_params(const RetrievalDims& d, double scale) {
  Params p{d.batch, d.seq_len, d.chunks, d.heads, d.dim, d.topk, d.chunk_size, d.window, d.q_start,
           d.stick_breaking, float(scale)};
  p.dims = d;
  p.dr4 = int((d.dim + 3) / 4 * 4);
  p.ldq = p.dr4 + 4;
  p.tiles = ceil_div(d.seq_len, kRows);
  return p;
}

size_t fwd_smem(const Params& p) { return (size_t(kRows + kTileC) * p.ldq + size_t(2) * p.K * kRows) * 4; }

template <class T>
void forward_impl(const T* qr, const T* lm, int32_t* indices, float* weights, float* scores,
                  const RetrievalDims& d, double scale) {
  const Params p = make_params(d, scale);
  const int64_t blocks = p.B * p.H * p.tiles;
  if (blocks == 0) return;
  const size_t smem = fwd_smem(p);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(retrieval_fwd_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  retrieval_fwd_kernel<T><<<unsigned(blocks), kRows, smem, stream()>>>(qr, lm, indices, weights, scores, p);
  check_launch("retrieval_fwd_kernel");
}

template <class T>
void backward_impl(const float* dweights, const T* qr, const T* lm, const int32_t* indices, const float* weights,
                   const float* scores, T* dqr, T* dlm, const RetrievalDims& d, double scale,
                   const Routing* given) {
  const Params p = make_params(d, scale);
  // The highest bad flat position is reported, as the CPU backward does.
  static const int code = index_error_code("retrieval_backward", "fwd.indices");
  Routing own;
  const Routing& rt = given_or_built(given, &own, indices, d.batch, d.seq_len, d.heads, d.topk, d.chunks, code,
                                     /*report_last=*/true);
  const int64_t rows = p.B * p.L * p.H, items = p.B * p.H * p.C;
  DeviceBuffer<std::byte> dsc(int64_t(size_t(std::max<int64_t>(rows * p.K, 1)) * 4));
  if (rows > 0) {
    retrieval_bwd_rows<T><<<unsigned(ceil_div(rows * 32, 256)), 256, 0, stream()>>>(
        dweights, lm, indices, weights, scores, dsc.as<float>(), dqr, p, scale);
    check_launch("retrieval_bwd_rows");
  }
  if (items > 0) {
    // Block numbers from the split plan (every item gets its split 0, a hot one several); the partial slot of a
    // block is its block number (e0 / kLmEntries + item + split), so the plan's block count bounds the partials.
    const SplitPlan plan = plan_splits(rt, 1, kLmEntries);
    DeviceBuffer<std::byte> part(int64_t(size_t(plan.blocks * p.dr) * 4));
    retrieval_bwd_landmarks<T><<<unsigned(plan.blocks), kLmWarps * 32, 0, stream()>>>(
        dsc.as<float>(), qr, rt.flat, rt.begin, plan.block_item, dlm, part.as<float>(), p);
    check_launch("retrieval_bwd_landmarks");
    // Items with one split return at once (their block wrote dlandmarks).
    retrieval_bwd_landmarks_finish<T><<<unsigned(ceil_div(items * p.dr, 256)), 256, 0, stream()>>>(
        rt.begin, part.as<float>(), dlm, p);
    check_launch("retrieval_bwd_landmarks_finish");
  }
}

}  // namespace

namespace {

bool split_fits(const RetrievalDims& d) {
  return d.seq_len <= kRetrievalSplitMaxRows && int64_t(retrieval_split_smem(d)) <= max_smem_optin();
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// HSA_RETRIEVAL_KERNEL, read once: automatic (unset), scalar, mma or gated.
RetrievalKernel env_kernel() {
  static const RetrievalKernel kernel = [] {
    const char* env = std::getenv("HSA_RETRIEVAL_KERNEL");
    const std::string value = env ? env : "";
    HSA_CHECK(value.empty() || value == "automatic" || value == "scalar" || value == "mma" || value == "gated",
              "HSA_RETRIEVAL_KERNEL is '{}', expected 'automatic', 'scalar', 'mma' or 'gated' (or unset)", value);
    return value == "scalar" ? RetrievalKernel::scalar
           : value == "mma"  ? RetrievalKernel::mma
           : value == "gated" ? RetrievalKernel::gated
                              : RetrievalKernel::automatic;
  }();
  return kernel;
}

bool scalar_forced() { return env_kernel() == RetrievalKernel::scalar; }

bool tensor_core_applies(RetrievalKernel kernel, DType dtype, const void* qr, const void* landmarks,
                         const RetrievalDims& d) {
  const size_t smem = kernel == RetrievalKernel::gated ? retrieval_gated_smem(d) : retrieval_mma_smem(d);
  return dtype == DType::bf16 && smem > 0 && int64_t(smem) <= max_smem_optin() && aligned16(qr) &&
         aligned16(landmarks);
}

}  // namespace

const char* retrieval_kernel_name(RetrievalKernel kernel) {
  switch (kernel) {
    case RetrievalKernel::automatic: return "automatic";
    case RetrievalKernel::scalar: return "scalar";
    case RetrievalKernel::mma: return "mma";
    case RetrievalKernel::split: return "split";
    case RetrievalKernel::gated: return "gated";
  }
  return "?";
}

RetrievalKernel retrieval_kernel_for(DType dtype, const void* qr, const void* landmarks,
                                     const RetrievalDims& d) {
  if (scalar_forced()) return RetrievalKernel::scalar;
  if (split_fits(d)) return RetrievalKernel::split;
  const RetrievalKernel tensor_core = retrieval_tensor_core_kernel();
  if (tensor_core_applies(tensor_core, dtype, qr, landmarks, d)) return tensor_core;
  // gated needs more shared memory per K than mma: a K that only mma fits still runs on the tensor cores.
  if (tensor_core == RetrievalKernel::gated && tensor_core_applies(RetrievalKernel::mma, dtype, qr, landmarks, d))
    return RetrievalKernel::mma;
  return RetrievalKernel::scalar;
}

RetrievalKernel retrieval_tensor_core_kernel() {
  const RetrievalKernel env = env_kernel();
  if (env == RetrievalKernel::mma || env == RetrievalKernel::gated) return env;
  return kRetrievalPreferGated ? RetrievalKernel::gated : RetrievalKernel::mma;
}

void retrieval_check_supported(const char* op, DType dtype, const RetrievalDims& d) {
  HSA_CHECK(dtype == DType::f32 || dtype == DType::bf16, "{}: the cuda kernels take f32 or bf16, got {}", op,
            dtype_name(dtype));
  if (!scalar_forced() && split_fits(d)) return;  // what automatic runs for these few rows
  // The scalar kernel is the fallback of every other shape, and its shared memory grows fastest with dr and K.
  const size_t smem = fwd_smem(make_params(d, 1));
  HSA_CHECK(int64_t(smem) <= max_smem_optin(),
            "{}: dr = {} and K = {} need {} bytes of shared memory per block, the device has {}", op, d.dim, d.topk,
            smem, max_smem_optin());
}

void retrieval_forward(DType dtype, const void* qr, const void* landmarks, int32_t* indices, float* weights,
                       float* scores, const RetrievalDims& d, double scale, RetrievalKernel kernel) {
  if (kernel == RetrievalKernel::automatic) kernel = retrieval_kernel_for(dtype, qr, landmarks, d);
  const bool bf16 = dtype == DType::bf16;
  const auto* qb = static_cast<const __nv_bfloat16*>(qr);
  const auto* lb = static_cast<const __nv_bfloat16*>(landmarks);
  const auto* qf = static_cast<const float*>(qr);
  const auto* lf = static_cast<const float*>(landmarks);
  switch (kernel) {
    case RetrievalKernel::mma:
    case RetrievalKernel::gated:
      HSA_CHECK(tensor_core_applies(kernel, dtype, qr, landmarks, d),
                "retrieval_forward: the {} kernel takes bf16 with dr a multiple of 8 up to 128, 16-byte aligned "
                "qr and landmarks and K up to its shared memory; got {}, dr = {}, K = {}",
                retrieval_kernel_name(kernel), dtype_name(dtype), d.dim, d.topk);
      if (kernel == RetrievalKernel::mma) retrieval_mma_forward(qb, lb, indices, weights, scores, d, float(scale));
      else retrieval_gated_forward(qb, lb, indices, weights, scores, d, float(scale));
      return;
    case RetrievalKernel::split:
      HSA_CHECK(split_fits(d),
                "retrieval_forward: the split kernel takes at most {} query rows and dr, K within its shared "
                "memory; got L = {}, dr = {}, K = {}",
                kRetrievalSplitMaxRows, d.seq_len, d.dim, d.topk);
      if (bf16) retrieval_split_forward(qb, lb, indices, weights, scores, d, float(scale));
      else retrieval_split_forward(qf, lf, indices, weights, scores, d, float(scale));
      return;
    default:
      if (bf16) forward_impl(qb, lb, indices, weights, scores, d, scale);
      else forward_impl(qf, lf, indices, weights, scores, d, scale);
  }
}

void retrieval_backward(DType dtype, const float* dweights, const void* qr, const void* landmarks,
                        const int32_t* indices, const float* weights, const float* scores, void* dqr,
                        void* dlandmarks, const RetrievalDims& d, double scale, const detail::Routing* routing) {
  if (dtype == DType::bf16)
    return backward_impl(dweights, static_cast<const __nv_bfloat16*>(qr),
                         static_cast<const __nv_bfloat16*>(landmarks), indices, weights, scores,
                         static_cast<__nv_bfloat16*>(dqr), static_cast<__nv_bfloat16*>(dlandmarks), d, scale,
                         routing);
  backward_impl(dweights, static_cast<const float*>(qr), static_cast<const float*>(landmarks), indices, weights,
                scores, static_cast<float*>(dqr), static_cast<float*>(dlandmarks), d, scale, routing);
}

}  // namespace hsa::cuda
